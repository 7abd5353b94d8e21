package runtime_test

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/deadletter"
	"github.com/tda-dev/tda/agent/runtime"
	"github.com/tda-dev/tda/sdk"
)

// deliveryConfig runs COUNT lines (BATCH a batch) through the alerter into sink.pager.primary,
// whose host-level settings are SINKSETTINGS, with sink.mail.backup as its fallback.
const deliveryConfig = `
agent {
  data_dir            = "DATADIR"
  checkpoint_interval = "50ms"
}
source "gen" "numbers" {
  count = COUNT
  batch = BATCH
}
processor "alerter" "a" {}
sink "pager" "primary" {
  fallback       = sink.mail.backup
  fallback_after = "1h"
  retry {
    initial = "5ms"
    max     = "20ms"
  }
  batch { max_events = 1 }
  SINKSETTINGS
}
sink "mail" "backup" {}
pipeline "main" {
  from    = [source.gen.numbers]
  through = [processor.alerter.a]
  to      = [sink.pager.primary]
}
`

func deliveryHarness(t *testing.T, count, batch int, settings string, primary, backup *collector) *harness {
	src := strings.NewReplacer("COUNT", fmt.Sprint(count), "BATCH", fmt.Sprint(batch), "SINKSETTINGS", settings).Replace(deliveryConfig)
	comps := map[string]sdk.Component{"source.gen": genComponent(), "processor.alerter": alerterComponent(),
		"sink.pager": collectorComponent("pager", primary, sdk.KindAlert).WithQueue(sdk.QueueDurable),
		"sink.mail":  collectorComponent("mail", backup, sdk.KindAlert)}
	return newHarness(t, src, comps)
}

func component(rt *runtime.Runtime, addr string) runtime.ComponentHealth {
	for _, c := range rt.Health().Components() {
		if c.Address == addr {
			return c
		}
	}
	return runtime.ComponentHealth{}
}

func letters(t *testing.T, rt *runtime.Runtime) []deadletter.Letter {
	t.Helper()
	ls, err := rt.DeadLetters().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// A sink that panics on one alert fails that batch: the plugin is never restarted for it,
// the batch becomes a dead letter after max_attempts, every other alert is delivered, and
// the state says what to do.
func TestPanicInWriteIsAFailedBatchThenADeadLetter(t *testing.T) {
	var calls atomic.Int32
	primary := &collector{fail: func(b sdk.Batch) error {
		for _, e := range b.Events {
			if e.Alert.Fingerprint == "fp-2" {
				calls.Add(1)
				panic("index out of range")
			}
		}
		return nil
	}}
	h := deliveryHarness(t, 5, 1, "max_attempts = 3\n  queue = \"memory\"", primary, &collector{})
	l := &crashable{InProcessLauncher: runtime.InProcessLauncher{Components: h.comps},
		launches: map[string]int{}, current: map[string]*crashPlugin{}}
	rt, store := h.start(l)
	waitFor(t, "the other alerts", 10*time.Second, func() bool { return len(primary.lines(sdk.KindAlert)) == 4 })
	waitFor(t, "a dead letter", 10*time.Second, func() bool { return len(letters(t, rt)) == 1 })
	ls := letters(t, rt)
	var st runtime.ComponentHealth
	waitFor(t, "the state to name the dead letter", 10*time.Second, func() bool {
		st = component(rt, "sink.pager.primary")
		return strings.Contains(st.Reason, "tda deadletter")
	})
	stop(t, rt, store)
	if got := calls.Load(); got != 3 {
		t.Fatalf("the poison batch was tried %d times, want max_attempts = 3", got)
	}
	if n := l.launches["sink.pager.primary"]; n != 1 {
		t.Fatalf("sink launched %d times: a recovered panic restarted the plugin", n)
	}
	if got := primary.lines(sdk.KindAlert); strings.Join(got, ",") != "fp-0,fp-1,fp-3,fp-4" {
		t.Fatalf("delivered %v", got)
	}
	l0 := ls[0]
	if l0.Reason != deadletter.ReasonCrashBudget || l0.Attempts != 3 || l0.Events != 1 ||
		!strings.Contains(l0.Error, "panicked") || l0.Instance != "sink.pager.primary" {
		t.Fatalf("letter %+v", l0)
	}
	if st.Healthy || st.DeadLetters != 1 || !strings.Contains(st.Reason, "tda deadletter") {
		t.Fatalf("state %+v", st)
	}
}

// A revoked webhook refuses every batch: each goes to the fallback and to the dead letters,
// the state names the plugin's reason, where the alerts went and how to replay them; once
// the webhook works, replaying a letter delivers it and removes it.
func TestPermanentRefusalGoesToFallbackAndDeadLetters(t *testing.T) {
	var revoked atomic.Bool
	revoked.Store(true)
	primary := &collector{fail: func(sdk.Batch) error {
		if revoked.Load() {
			return sdk.Permanent(errors.New("webhook revoked (404 no_service)"))
		}
		return nil
	}}
	backup := &collector{}
	h := deliveryHarness(t, 3, 1, "", primary, backup)
	rt, store := h.start(nil)
	waitFor(t, "the fallback", 10*time.Second, func() bool { return len(backup.lines(sdk.KindAlert)) == 3 })
	waitFor(t, "dead letters", 10*time.Second, func() bool { return len(letters(t, rt)) == 3 })
	st := component(rt, "sink.pager.primary")
	for _, want := range []string{"webhook revoked (404 no_service)", "sink.mail.backup", "tda deadletter replay"} {
		if !strings.Contains(st.Reason, want) {
			t.Fatalf("state %q lacks %q", st.Reason, want)
		}
	}
	if st.Healthy {
		t.Fatal("healthy while every page is refused")
	}
	ls := letters(t, rt)
	if ls[0].Reason != deadletter.ReasonRefused || ls[0].Kinds[0] != sdk.KindAlert {
		t.Fatalf("letter %+v", ls[0])
	}
	letter, events, err := rt.DeadLetters().Show(context.Background(), ls[0].ID)
	if err != nil || len(events) != 1 || !strings.Contains(string(events[0]), "fp-0") || letter.ID != ls[0].ID {
		t.Fatalf("show: %v %s", err, events)
	}
	revoked.Store(false)
	if err := rt.DeadLetters().Replay(context.Background(), ls[0].ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replayed alert", 10*time.Second, func() bool { return len(primary.lines(sdk.KindAlert)) == 1 })
	if err := rt.DeadLetters().Drop(context.Background(), ls[1].ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := rt.DeadLetters().Show(context.Background(), ls[1].ID); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("show a dropped letter: %v", err)
	}
	if err := rt.DeadLetters().Replay(context.Background(), 999); !errors.Is(err, deadletter.ErrNotFound) {
		t.Fatalf("replay of no letter: %v", err)
	}
	// Delivering again, but one letter still waits: the state says so.
	waitFor(t, "the state after the replay", 10*time.Second, func() bool {
		st = component(rt, "sink.pager.primary")
		return !st.Healthy && st.DeadLetters == 1 && strings.Contains(st.Reason, "1 batches were set aside")
	})
	stop(t, rt, store)
	if got := primary.lines(sdk.KindAlert); len(got) != 1 || got[0] != "fp-0" {
		t.Fatalf("primary got %v", got)
	}
}

// hanging is a sink that does not answer for the batches hang says, until its context ends.
type hanging struct {
	collector
	hang func(sdk.Batch) bool
}

func (h *hanging) Write(ctx context.Context, b sdk.Batch) error {
	if h.hang(b) {
		<-ctx.Done()
		return ctx.Err()
	}
	return h.collector.Write(ctx, b)
}

// A sink call past call_timeout is a hung plugin: it is killed and restarted, the state and
// the log say so, and after max_attempts hangs the batch is set aside.
func TestHungSinkIsRestartedAndTheBatchSetAside(t *testing.T) {
	sink := &hanging{hang: func(b sdk.Batch) bool { return b.Events[0].Alert.Fingerprint == "fp-1" }}
	h := deliveryHarness(t, 3, 1, "call_timeout = \"100ms\"\n  max_attempts = 2", &collector{}, &collector{})
	h.comps["sink.pager"] = sdk.SinkComponent("pager", &sdk.Spec{}, func(*sdk.Config, sdk.Resources) (sdk.Sink, error) {
		return sink, nil
	}).WithAccepts(sdk.KindAlert)
	l := &crashable{InProcessLauncher: runtime.InProcessLauncher{Components: h.comps},
		launches: map[string]int{}, current: map[string]*crashPlugin{}}
	rt, store := h.start(l)
	waitFor(t, "a dead letter", 20*time.Second, func() bool { return len(letters(t, rt)) == 1 })
	waitFor(t, "the other alerts", 10*time.Second, func() bool { return len(sink.lines(sdk.KindAlert)) == 2 })
	ls := letters(t, rt)
	st := component(rt, "sink.pager.primary")
	stop(t, rt, store)
	if ls[0].Reason != deadletter.ReasonDeadline || ls[0].Attempts != 2 || !strings.Contains(ls[0].Error, "call_timeout") {
		t.Fatalf("letter %+v", ls[0])
	}
	if n := l.launches["sink.pager.primary"]; n != 3 {
		t.Fatalf("sink launched %d times, want 1 + 2 restarts after hangs", n)
	}
	if st.Restarts != 2 || st.Healthy {
		t.Fatalf("state %+v", st)
	}
}

// A plugin that crashes on the same batch restarts with growing delays and the batch is set
// aside after max_attempts: a crash loop ends.
func TestCrashLoopOnOneBatchEnds(t *testing.T) {
	h := deliveryHarness(t, 2, 1, "max_attempts = 3", &collector{}, &collector{})
	var l *crashable
	primary := &collector{fail: func(b sdk.Batch) error {
		if b.Events[0].Alert.Fingerprint == "fp-0" {
			l.kill("sink.pager.primary") // the plugin dies on this input
			return errUnavailable
		}
		return nil
	}}
	h.comps["sink.pager"] = collectorComponent("pager", primary, sdk.KindAlert)
	l = &crashable{InProcessLauncher: runtime.InProcessLauncher{Components: h.comps},
		launches: map[string]int{}, current: map[string]*crashPlugin{}}
	rt, store := h.start(l)
	waitFor(t, "the next alert", 20*time.Second, func() bool { return len(primary.lines(sdk.KindAlert)) == 1 })
	ls := letters(t, rt)
	stop(t, rt, store)
	if len(ls) != 1 || ls[0].Reason != deadletter.ReasonCrashBudget || ls[0].Attempts != 3 {
		t.Fatalf("letters %+v", ls)
	}
	if n := l.launches["sink.pager.primary"]; n != 4 {
		t.Fatalf("sink launched %d times, want 1 + 3 restarts", n)
	}
}

// A spilling sink keeps within max_size in memory and max_disk_size on disk: past both the
// pipeline waits (back-pressure); once the sink works, everything arrives once, in order.
func TestSpillIsBoundedByDiskThenHoldsThePipeline(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	primary := &collector{fail: func(sdk.Batch) error {
		if down.Load() {
			return errors.New("503 service unavailable")
		}
		return nil
	}}
	settings := `queue = "memory"
  buffer {
    max_size      = "1KiB"
    when_full     = "spill"
    max_disk_size = "8KiB"
  }`
	h := deliveryHarness(t, 400, 1, settings, primary, &collector{})
	rt, store := h.start(nil)
	waitFor(t, "a spill", 10*time.Second, func() bool { return component(rt, "sink.pager.primary").Spilled > 0 })
	// The pipeline is held once the disk bound is reached: the queue stops growing.
	var queued int
	waitFor(t, "the queue to stop growing", 10*time.Second, func() bool {
		before := component(rt, "sink.pager.primary").Queued
		time.Sleep(200 * time.Millisecond)
		queued = component(rt, "sink.pager.primary").Queued
		return queued == before
	})
	if queued >= 400 {
		t.Fatalf("%d events queued: the bounds held nothing back", queued)
	}
	down.Store(false)
	waitFor(t, "every alert", 20*time.Second, func() bool { return len(primary.lines(sdk.KindAlert)) >= 400 })
	stop(t, rt, store)
	got := primary.lines(sdk.KindAlert)
	if len(got) != 400 {
		t.Fatalf("%d alerts delivered, want 400", len(got))
	}
	for i, fp := range got {
		if fp != fmt.Sprintf("fp-%d", i) {
			t.Fatalf("alert %d is %s", i, fp)
		}
	}
}

// when_full = "drop" loses what does not fit, and counts and reports it.
func TestDropIsCountedAndReported(t *testing.T) {
	primary := &collector{fail: func(sdk.Batch) error { return errors.New("503 service unavailable") }}
	settings := `queue = "memory"
  buffer {
    max_size  = "1KiB"
    when_full = "drop"
  }`
	h := deliveryHarness(t, 200, 1, settings, primary, &collector{})
	rt, store := h.start(nil)
	waitFor(t, "drops", 10*time.Second, func() bool { return component(rt, "sink.pager.primary").Dropped > 0 })
	// The source is never held back: every line is read and accepted.
	waitFor(t, "the source to finish", 10*time.Second, func() bool {
		c := component(rt, "sink.pager.primary")
		return c.Dropped+c.Queued == 200
	})
	st := component(rt, "sink.pager.primary")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_ = rt.Stop(ctx) // the sink never recovers: its memory queue is abandoned
	_ = store.Close()
	if st.Healthy || !strings.Contains(st.Reason, "dropped") {
		t.Fatalf("state %+v", st)
	}
}

// A delivery killed in flight goes out again after the restart as the same delivery: the
// same entries under the same id, so an idempotent receiver can tell the repeat.
func TestInFlightDeliveryKeepsItsIDAcrossRestarts(t *testing.T) {
	for _, settings := range []string{"", "queue = \"memory\"\n  buffer { when_full = \"spill\" }"} {
		name := "durable queue"
		if settings != "" {
			name = "memory queue spilling"
		}
		t.Run(name, func(t *testing.T) { inFlightKeepsItsID(t, settings) })
	}
}

func inFlightKeepsItsID(t *testing.T, settings string) {
	var mu sync.Mutex
	var firstID uint64
	var firstFPs []string
	primary := &collector{fail: func(b sdk.Batch) error {
		mu.Lock()
		defer mu.Unlock()
		if firstID == 0 {
			firstID = b.ID
			for _, e := range b.Events {
				firstFPs = append(firstFPs, e.Alert.Fingerprint)
			}
		}
		return errors.New("connection reset") // as if the agent died before the answer
	}}
	h := deliveryHarness(t, 30, 3, settings, primary, &collector{})
	rt, store := h.start(nil)
	waitFor(t, "every alert queued", 10*time.Second, func() bool {
		return component(rt, "sink.pager.primary").Queued == 30
	})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	_ = rt.Stop(ctx)
	cancel()
	_ = store.Close()

	second := &collector{}
	h2 := deliveryHarness(t, 30, 3, settings, second, &collector{})
	h2.dir = h.dir
	rt, store = h2.start(nil)
	waitFor(t, "every alert", 10*time.Second, func() bool { return len(second.lines(sdk.KindAlert)) == 30 })
	stop(t, rt, store)
	second.mu.Lock()
	first := second.batches[0]
	second.mu.Unlock()
	var fps []string
	for _, e := range first.Events {
		fps = append(fps, e.Alert.Fingerprint)
	}
	if first.ID != firstID || strings.Join(fps, ",") != strings.Join(firstFPs, ",") {
		t.Fatalf("after the restart the delivery in flight went out as id %d %v; it was id %d %v",
			first.ID, fps, firstID, firstFPs)
	}
	if got := second.lines(sdk.KindAlert); len(got) != 30 || got[29] != "fp-29" {
		t.Fatalf("delivered %v", got)
	}
}

// An outage of the destination while 100,000 alerts arrive: what does not fit in the
// sink's memory buffer is on disk, not lost and not in memory; once the destination is back
// every alert arrives once, in order. The test reports the peak heap and checks the memory
// buffer never held more than max_size (plus one batch).
func TestOutageOf100000AlertsKeepsMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes 100,000 alerts")
	}
	tests := []struct{ name, settings string }{
		{"memory queue spilling", `queue = "memory"
  buffer {
    max_size      = "1MiB"
    when_full     = "spill"
    max_disk_size = "1GiB"
  }`},
		{"durable queue", `queue = "durable"
  buffer {
    max_size      = "1MiB"
    max_disk_size = "1GiB"
  }`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { outage(t, tc.settings) })
	}
}

func outage(t *testing.T, settings string) {
	const total = 100000
	var down atomic.Bool
	down.Store(true)
	counting := &countingSink{down: &down}
	h := deliveryHarness(t, total, 200, settings, &collector{}, &collector{})
	h.src = strings.Replace(h.src, "batch { max_events = 1 }", "", 1)
	h.comps["sink.pager"] = sdk.SinkComponent("pager", &sdk.Spec{}, func(*sdk.Config, sdk.Resources) (sdk.Sink, error) {
		return counting, nil
	}).WithAccepts(sdk.KindAlert)
	rt, store := h.start(nil)
	var peakHeap, peakBuffer uint64
	sample := func() {
		var ms goruntime.MemStats
		goruntime.ReadMemStats(&ms)
		peakHeap = max(peakHeap, ms.HeapInuse)
		peakBuffer = max(peakBuffer, uint64(gauge(t, rt, "tda_sink_buffer_bytes", "sink.pager.primary")))
	}
	waitFor(t, "every alert buffered during the outage", 120*time.Second, func() bool {
		sample()
		return component(rt, "sink.pager.primary").Queued == total
	})
	spilled := component(rt, "sink.pager.primary").Spilled
	down.Store(false)
	waitFor(t, "every alert delivered", 120*time.Second, func() bool {
		sample()
		return counting.count() == total
	})
	stop(t, rt, store)
	t.Logf("100,000 alerts through an outage: %d on disk only at the peak; peak heap in use %.1f MiB; peak memory buffer %.1f KiB (max_size 1 MiB)",
		spilled, float64(peakHeap)/(1<<20), float64(peakBuffer)/(1<<10))
	if spilled < total/2 {
		t.Fatalf("only %d of %d alerts on disk: the memory buffer held the rest", spilled, total)
	}
	if limit := uint64(1<<20 + 64<<10); peakBuffer > limit {
		t.Fatalf("the memory buffer held %d bytes, more than max_size and one batch", peakBuffer)
	}
	if err := counting.inOrder(total); err != nil {
		t.Fatal(err)
	}
}

// countingSink keeps only how many alerts it received and whether they came in order.
type countingSink struct {
	down *atomic.Bool
	mu   sync.Mutex
	n    int
	bad  error
}

func (c *countingSink) Write(_ context.Context, b sdk.Batch) error {
	if c.down.Load() {
		return errors.New("503 service unavailable")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range b.Events {
		if want := fmt.Sprintf("fp-%d", c.n); e.Alert.Fingerprint != want && c.bad == nil {
			c.bad = fmt.Errorf("alert %d is %s", c.n, e.Alert.Fingerprint)
		}
		c.n++
	}
	return nil
}

func (c *countingSink) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func (c *countingSink) inOrder(total int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bad != nil {
		return c.bad
	}
	if c.n != total {
		return fmt.Errorf("%d alerts, want %d", c.n, total)
	}
	return nil
}

// gauge reads a gauge of the runtime's registry for one instance.
func gauge(t *testing.T, rt *runtime.Runtime, name, instance string) float64 {
	t.Helper()
	families, err := rt.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "instance" && l.GetValue() == instance {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}

// poisoned panics on the line poison says, while poison is set.
type poisoned struct {
	alerter
	poison *atomic.Value
}

func (p poisoned) Process(ctx context.Context, events []sdk.Event, wm sdk.Watermark) ([]sdk.Event, error) {
	for _, e := range events {
		if v, _ := p.poison.Load().(string); v != "" && string(e.Line) == v {
			panic("nil map write")
		}
	}
	return p.alerter.Process(ctx, events, wm)
}

// A processor that panics on one batch sets it aside after max_attempts; the pipeline goes
// on; replaying the letter once the processor is fixed runs it through the pipeline.
func TestPoisonBatchInAProcessorBecomesADeadLetter(t *testing.T) {
	poison := &atomic.Value{}
	poison.Store("3")
	out := &collector{}
	h := deliveryHarness(t, 6, 1, "", out, &collector{})
	h.src = strings.Replace(h.src, `processor "alerter" "a" {}`, `processor "alerter" "a" { max_attempts = 2 }`, 1)
	h.comps["processor.alerter"] = sdk.ProcessorComponent("alerter", &sdk.Spec{}, func(*sdk.Config, sdk.Resources) (sdk.Processor, error) {
		return poisoned{poison: poison}, nil
	})
	rt, store := h.start(nil)
	waitFor(t, "the other alerts", 10*time.Second, func() bool { return len(out.lines(sdk.KindAlert)) == 5 })
	ls := letters(t, rt)
	if len(ls) != 1 || ls[0].Instance != "processor.alerter.a" || ls[0].Pipeline != "main" || ls[0].Attempts != 2 {
		t.Fatalf("letters %+v", ls)
	}
	if st := component(rt, "processor.alerter.a"); st.Healthy || !strings.Contains(st.Reason, "tda deadletter replay") {
		t.Fatalf("state %+v", st)
	}
	poison.Store("")
	if err := rt.DeadLetters().Replay(context.Background(), ls[0].ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replayed alert", 10*time.Second, func() bool { return len(out.lines(sdk.KindAlert)) == 6 })
	waitFor(t, "the processor's state to clear", 10*time.Second, func() bool {
		return component(rt, "processor.alerter.a").Healthy
	})
	stop(t, rt, store)
}

// stuck does not answer for the line stuck names, until its call's deadline.
type stuck struct {
	alerter
	line string
}

func (s stuck) Process(ctx context.Context, events []sdk.Event, wm sdk.Watermark) ([]sdk.Event, error) {
	for _, e := range events {
		if string(e.Line) == s.line {
			<-ctx.Done()
			return nil, ctx.Err()
		}
	}
	return s.alerter.Process(ctx, events, wm)
}

// A processor call past call_timeout restarts the plugin; after max_attempts the batch is a
// dead letter with reason "deadline" and the pipeline goes on.
func TestHungProcessorIsRestartedAndTheBatchSetAside(t *testing.T) {
	out := &collector{}
	h := deliveryHarness(t, 4, 1, "", out, &collector{})
	h.src = strings.Replace(h.src, `processor "alerter" "a" {}`, `processor "alerter" "a" {
  call_timeout = "100ms"
  max_attempts = 2
}`, 1)
	h.comps["processor.alerter"] = sdk.ProcessorComponent("alerter", &sdk.Spec{}, func(*sdk.Config, sdk.Resources) (sdk.Processor, error) {
		return stuck{line: "1"}, nil
	})
	l := &crashable{InProcessLauncher: runtime.InProcessLauncher{Components: h.comps},
		launches: map[string]int{}, current: map[string]*crashPlugin{}}
	rt, store := h.start(l)
	waitFor(t, "the other alerts", 20*time.Second, func() bool { return len(out.lines(sdk.KindAlert)) == 3 })
	ls := letters(t, rt)
	st := component(rt, "processor.alerter.a")
	stop(t, rt, store)
	if len(ls) != 1 || ls[0].Reason != deadletter.ReasonDeadline || ls[0].Attempts != 2 || ls[0].Pipeline != "main" {
		t.Fatalf("letters %+v", ls)
	}
	if n := l.launches["processor.alerter.a"]; n != 3 {
		t.Fatalf("processor launched %d times, want 1 + 2 restarts after hangs", n)
	}
	if st.Healthy || !strings.Contains(st.Reason, "tda deadletter replay") {
		t.Fatalf("state %+v", st)
	}
}

// stuckSink is a sink inside the agent that ignores its context on the batches hang says: the
// call never returns until release is closed. It counts its instances and their Closes.
type stuckSink struct {
	collector
	hang    func(sdk.Batch) bool
	release chan struct{}
	closed  *atomic.Int32
}

func (s *stuckSink) Write(ctx context.Context, b sdk.Batch) error {
	if s.hang(b) {
		<-s.release
		return errors.New("released")
	}
	return s.collector.Write(ctx, b)
}

func (s *stuckSink) Close(context.Context) error {
	s.closed.Add(1)
	return nil
}

// A sink inside the agent that ignores its context cannot be killed: its call is abandoned
// at call_timeout, a new instance takes over, the batch is set aside after max_attempts as
// with a plugin process, and each abandoned instance is closed once its call returns.
func TestStuckSinkInsideTheAgentIsAbandonedAndReplaced(t *testing.T) {
	release := make(chan struct{})
	var closed atomic.Int32
	var mu sync.Mutex
	var instances []*stuckSink
	h := deliveryHarness(t, 3, 1, "call_timeout = \"100ms\"\n  max_attempts = 2", &collector{}, &collector{})
	h.comps["sink.pager"] = sdk.SinkComponent("pager", &sdk.Spec{}, func(*sdk.Config, sdk.Resources) (sdk.Sink, error) {
		s := &stuckSink{hang: func(b sdk.Batch) bool { return b.Events[0].Alert.Fingerprint == "fp-1" }, release: release, closed: &closed}
		mu.Lock()
		instances = append(instances, s)
		mu.Unlock()
		return s, nil
	}).WithAccepts(sdk.KindAlert)
	rt, store := h.start(&runtime.InProcessLauncher{Components: h.comps})
	waitFor(t, "a dead letter", 20*time.Second, func() bool { return len(letters(t, rt)) == 1 })
	delivered := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, s := range instances {
			n += len(s.lines(sdk.KindAlert))
		}
		return n
	}
	waitFor(t, "the other alerts", 10*time.Second, func() bool { return delivered() == 2 })
	ls := letters(t, rt)
	st := component(rt, "sink.pager.primary")
	if ls[0].Reason != deadletter.ReasonDeadline || ls[0].Attempts != 2 {
		t.Fatalf("letter %+v", ls[0])
	}
	mu.Lock()
	n := len(instances)
	mu.Unlock()
	if n != 3 {
		t.Fatalf("%d instances, want 1 + 2 after the hangs", n)
	}
	if st.Restarts != 2 || st.Healthy || !strings.Contains(ls[0].Error, "call_timeout") {
		t.Fatalf("state %+v, letter %+v", st, ls[0])
	}
	if got := closed.Load(); got != 0 {
		t.Fatalf("%d stuck instances closed while their calls still ran", got)
	}
	close(release)
	waitFor(t, "the abandoned instances closed", 10*time.Second, func() bool { return closed.Load() == 2 })
	stop(t, rt, store)
}
