package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/runtime"
	"github.com/tda-dev/tda/sdk"
)

// alerter turns every line into an alert whose fingerprint is the line.
type alerter struct{}

func (alerter) Process(_ context.Context, events []sdk.Event, _ sdk.Watermark) ([]sdk.Event, error) {
	var out []sdk.Event
	for _, e := range events {
		if e.Kind == sdk.KindLog {
			out = append(out, sdk.Event{Kind: sdk.KindAlert, Time: e.Time, Origin: e.Origin, Alert: &sdk.Alert{
				Rule: "line", Severity: sdk.SeverityHigh, State: sdk.StateFiring, Fingerprint: "fp-" + string(e.Line)}})
		}
	}
	return out, nil
}

func alerterComponent() sdk.Component {
	return sdk.ProcessorComponent("alerter", &sdk.Spec{}, func(*sdk.Config, sdk.Resources) (sdk.Processor, error) {
		return alerter{}, nil
	})
}

const sinkConfig = `
agent {
  data_dir            = "DATADIR"
  checkpoint_interval = "50ms"
}
source "gen" "numbers" {
  count = COUNT
  batch = 1
  every = "EVERY"
}
processor "alerter" "a" {}
sink "pager" "primary" {
  queue          = "durable"
  fallback       = sink.mail.backup
  fallback_after = "FALLBACK"
  retry {
    initial = "20ms"
    max     = "100ms"
  }
}
sink "mail" "backup" {}
pipeline "main" {
  from    = [source.gen.numbers]
  through = [processor.alerter.a]
  to      = [sink.pager.primary]
}
`

func sinkHarness(t *testing.T, count int, every, fallback string, primary, backup *collector) *harness {
	src := sinkConfig
	for k, v := range map[string]string{"COUNT": strconv.Itoa(count), "EVERY": every, "FALLBACK": fallback} {
		src = replaceAll(src, k, v)
	}
	comps := map[string]sdk.Component{"source.gen": genComponent(), "processor.alerter": alerterComponent(),
		"sink.pager": collectorComponent("pager", primary, sdk.KindAlert).WithQueue(sdk.QueueDurable),
		"sink.mail":  collectorComponent("mail", backup, sdk.KindAlert)}
	return newHarness(t, src, comps)
}

func replaceAll(s, old, new string) string {
	for {
		i := indexOf(s, old)
		if i < 0 {
			return s
		}
		s = s[:i] + new + s[i+len(old):]
	}
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestOutageThenRecoveryDeliversOnceInOrderWithFallback(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	primary := &collector{fail: func(sdk.Batch) error {
		if down.Load() {
			return errors.New("503 service unavailable")
		}
		return nil
	}}
	backup := &collector{}
	h := sinkHarness(t, 40, "5ms", "300ms", primary, backup)
	rt, store := h.start(nil)
	waitFor(t, "fallback to receive every alert", 10*time.Second, func() bool {
		return len(backup.lines(sdk.KindAlert)) == 40
	})
	if got := len(primary.lines(sdk.KindAlert)); got != 0 {
		t.Fatalf("primary delivered %d while down", got)
	}
	down.Store(false)
	waitFor(t, "primary to catch up", 10*time.Second, func() bool {
		return len(primary.lines(sdk.KindAlert)) == 40
	})
	stop(t, rt, store)
	got := primary.lines(sdk.KindAlert)
	for i, fp := range got {
		if fp != fmt.Sprintf("fp-%d", i) {
			t.Fatalf("primary alert %d is %s: not in order", i, fp)
		}
	}
	if n := len(backup.lines(sdk.KindAlert)); n != 40 {
		t.Fatalf("fallback got %d alerts, want each once", n)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	var calls atomic.Int32
	primary := &collector{fail: func(sdk.Batch) error {
		if calls.Add(1) == 1 {
			return sdk.Retry(errors.New("rate_limited"), 700*time.Millisecond)
		}
		return nil
	}}
	h := sinkHarness(t, 1, "0s", "60s", primary, &collector{})
	rt, store := h.start(nil)
	waitFor(t, "delivery", 10*time.Second, func() bool { return len(primary.lines(sdk.KindAlert)) == 1 })
	stop(t, rt, store)
	primary.mu.Lock()
	defer primary.mu.Unlock()
	if len(primary.calls) != 2 {
		t.Fatalf("%d calls", len(primary.calls))
	}
	if gap := primary.calls[1].Sub(primary.calls[0]); gap < 700*time.Millisecond {
		t.Fatalf("retried after %v, before Retry-After", gap)
	}
}

func TestPermanentErrorGoesToFallbackAtOnce(t *testing.T) {
	primary := &collector{fail: func(b sdk.Batch) error {
		return sdk.Permanent(errors.New("channel_is_archived"))
	}}
	backup := &collector{}
	h := sinkHarness(t, 3, "0s", "60s", primary, backup)
	rt, store := h.start(nil)
	waitFor(t, "fallback", 5*time.Second, func() bool { return len(backup.lines(sdk.KindAlert)) == 3 })
	stop(t, rt, store)
	if len(primary.lines(sdk.KindAlert)) != 0 {
		t.Fatal("primary accepted a batch it rejected")
	}
}

func TestDurableQueueSurvivesRestartAndDedups(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	first := &collector{fail: func(sdk.Batch) error {
		if down.Load() {
			return errors.New("connection refused")
		}
		return nil
	}}
	h := sinkHarness(t, 10, "0s", "1h", first, &collector{})
	rt, store := h.start(nil)
	// Everything is queued durably (the source's checkpoint advances) while the sink is down.
	waitFor(t, "checkpoint", 10*time.Second, func() bool {
		_ = rt.Commit(context.Background())
		return rt.Health().Components() != nil && queuedOf(rt, "sink.pager.primary") == 10
	})
	stop(t, rt, store)

	second := &collector{}
	h2 := sinkHarness(t, 10, "0s", "1h", second, &collector{})
	h2.dir = h.dir
	rt, store = h2.start(nil)
	waitFor(t, "queued alerts delivered after restart", 10*time.Second, func() bool {
		return len(second.lines(sdk.KindAlert)) == 10
	})
	stop(t, rt, store)

	// A third run replays the same alerts (simulating a source re-read): none is sent again.
	third := &collector{}
	h3 := sinkHarness(t, 10, "0s", "1h", third, &collector{})
	h3.dir = h.dir
	rt, store = h3.start(nil)
	time.Sleep(300 * time.Millisecond)
	stop(t, rt, store)
	if n := len(third.lines(sdk.KindAlert)); n != 0 {
		t.Fatalf("%d alerts delivered twice", n)
	}
}

func queuedOf(rt *runtime.Runtime, addr string) int {
	for _, c := range rt.Health().Components() {
		if c.Address == addr {
			return c.Queued
		}
	}
	return -1
}

func TestGroupIntervalGathersOneBatch(t *testing.T) {
	var mu sync.Mutex
	primary := &collector{}
	src := `
agent { data_dir = "DATADIR" }
source "gen" "numbers" {
  count = 20
  batch = 1
  every = "10ms"
}
processor "alerter" "a" {}
sink "pager" "primary" {
  queue          = "durable"
  group_interval = "2s"
}
pipeline "main" {
  from    = [source.gen.numbers]
  through = [processor.alerter.a]
  to      = [sink.pager.primary]
}
`
	comps := map[string]sdk.Component{"source.gen": genComponent(), "processor.alerter": alerterComponent(),
		"sink.pager": collectorComponent("pager", primary, sdk.KindAlert)}
	h := newHarness(t, src, comps)
	rt, store := h.start(nil)
	waitFor(t, "delivery", 10*time.Second, func() bool { return len(primary.lines(sdk.KindAlert)) == 20 })
	stop(t, rt, store)
	mu.Lock()
	defer mu.Unlock()
	if n := len(primary.batches); n != 1 {
		t.Fatalf("%d writes (%d, %d), want the 20 alerts of 200ms in one", n, len(primary.batches[0].Events), len(primary.batches[1].Events))
	}
}
