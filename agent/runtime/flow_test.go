package runtime_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/agent/runtime"
	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/sdk"
)

// A pipeline whose sink does not accept holds at most max_inflight_bytes of its source's
// batches (plus about one batch), however many batches max_inflight_batches allows.
func TestInflightBytesBoundAPipeline(t *testing.T) {
	tests := []struct {
		name       string
		maxBatches int
		maxBytes   string
		bytes      int
	}{
		{"bytes bind before batches", 1000, "64KiB", 64 << 10},
		{"batches bind before bytes", 4, "32MiB", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGated(0)
			src := `
agent {
  data_dir             = "DATADIR"
  max_inflight_batches = ` + strconv.Itoa(tt.maxBatches) + `
  max_inflight_bytes   = "` + tt.maxBytes + `"
}
source "gen" "numbers" {
  count = 1000000
  batch = 100
}
sink "gated" "out" {}
pipeline "main" {
  from = [source.gen.numbers]
  to   = [sink.gated.out]
}
`
			comps := map[string]sdk.Component{"source.gen": genComponent(), "sink.gated": gatedComponent(g)}
			h := newHarness(t, src, comps)
			rt, store := h.start(nil)
			waitFor(t, "the sink to hold", 10*time.Second, g.blocked.Load)
			// The source stops once the budget is spent: the figures settle.
			var batches, bytes int
			waitFor(t, "the in-flight figures to settle", 10*time.Second, func() bool {
				b1, y1 := runtime.Inflight(rt, "main")
				time.Sleep(50 * time.Millisecond)
				b2, y2 := runtime.Inflight(rt, "main")
				batches, bytes = b2, y2
				return b1 == b2 && y1 == y2 && b2 > 0
			})
			perBatch := bytes / batches
			if tt.bytes > 0 {
				if bytes < tt.bytes || bytes > tt.bytes+2*perBatch {
					t.Errorf("%d bytes in flight (%d batches of %d); want from %d to two batches more", bytes, batches, perBatch, tt.bytes)
				}
			} else if batches != tt.maxBatches {
				t.Errorf("%d batches in flight, want %d", batches, tt.maxBatches)
			}
			g.open()
			stop(t, rt, store)
		})
	}
}

// A source feeding two pipelines: while one pipeline's sink queues what it cannot deliver
// yet (a durable queue accepts at once), the other pipeline gets every batch; the source's
// checkpoint is the point both pipelines' sinks accepted.
func TestSourceFeedsTheHealthyPipelineWhileTheOtherIsSlow(t *testing.T) {
	fast := &collector{}
	slow := &collector{fail: func(sdk.Batch) error { return errors.New("outage") }}
	src := `
agent {
  data_dir             = "DATADIR"
  checkpoint_interval  = "10ms"
  max_inflight_batches = 2
}
source "gen" "numbers" {
  count = 500
  batch = 10
}
sink "collect" "fast" {}
sink "collect" "slow" {
  queue = "durable"
  retry {
    initial = "20ms"
    max     = "20ms"
  }
}
pipeline "capture" {
  from = [source.gen.numbers]
  to   = [sink.collect.slow]
}
pipeline "detect" {
  from = [source.gen.numbers]
  to   = [sink.collect.fast]
}
`
	comps := map[string]sdk.Component{"source.gen": genComponent(), "sink.collect": collectorComponent("collect", nil)}
	launcher := &perInstanceLauncher{InProcessLauncher: runtime.InProcessLauncher{Components: comps},
		sinks: map[string]*collector{"sink.collect.fast": fast, "sink.collect.slow": slow}}
	h := newHarness(t, src, comps)
	rt, store := h.start(launcher)
	waitFor(t, "every line in the healthy pipeline", 10*time.Second, func() bool { return len(fast.lines(sdk.KindLog)) == 500 })
	waitFor(t, "the checkpoint", 10*time.Second, func() bool { return committedNext(t, store, "source.gen.numbers") == 500 })
	if got := len(slow.lines(sdk.KindLog)); got != 0 {
		t.Fatalf("the failing sink delivered %d lines", got)
	}
	stop(t, rt, store)
}

// hanger is a processor that hangs on the line "poison" until its call is cancelled, as a
// plugin stuck in a loop does.
type hanger struct{ n int }

func (h *hanger) Process(ctx context.Context, events []sdk.Event, _ sdk.Watermark) ([]sdk.Event, error) {
	for _, e := range events {
		if string(e.Line) == "poison" {
			<-ctx.Done()
			return nil, ctx.Err()
		}
	}
	h.n += len(events)
	return events, nil
}

// A processor call past its deadline is a hung plugin: it is restarted, and a batch that
// hangs it three times is set aside while the rest flows on.
func TestHungProcessorCallIsRestartedAndThePoisonSetAside(t *testing.T) {
	out := &collector{}
	src := `
agent { data_dir = "DATADIR" }
source "gen" "numbers" {
  count = 30
  batch = 10
}
processor "hang" "h" {}
sink "collect" "out" {}
pipeline "main" {
  from    = [source.gen.numbers]
  through = [processor.hang.h]
  to      = [sink.collect.out]
}
`
	comps := map[string]sdk.Component{"source.gen": genComponent(), "sink.collect": collectorComponent("collect", out),
		"processor.hang": sdk.ProcessorComponent("hang", &sdk.Spec{}, func(*sdk.Config, sdk.Resources) (sdk.Processor, error) {
			return &hanger{}, nil
		})}
	l := crashableLauncher(comps)
	h := newHarness(t, src, comps)
	cfg := h.config()
	store, err := state.Open(cfg.Agent.DataDir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := runtime.New(runtime.Options{Config: cfg, Launcher: l, Store: store, Live: true,
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: testWriter{t}})})
	if err != nil {
		t.Fatal(err)
	}
	runtime.SetCallTimeout(rt, "processor.hang.h", 50*time.Millisecond)
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the generated lines", 10*time.Second, func() bool { return len(out.lines(sdk.KindLog)) == 30 })
	if err := rt.Inject(context.Background(), "main", []sdk.Event{{Kind: sdk.KindLog, Line: []byte("poison")}}); err != nil {
		t.Fatal(err)
	}
	if err := rt.Inject(context.Background(), "main", []sdk.Event{{Kind: sdk.KindLog, Line: []byte("after")}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the line after the poison", 10*time.Second, func() bool {
		lines := out.lines(sdk.KindLog)
		return len(lines) == 31 && lines[30] == "after"
	})
	l.mu.Lock()
	launches := l.launches["processor.hang.h"]
	l.mu.Unlock()
	if launches != 1+3 {
		t.Errorf("the hung processor was launched %d times, want 4 (one restart per hung call)", launches)
	}
	if strings.Contains(strings.Join(out.lines(sdk.KindLog), ","), "poison") {
		t.Error("the poison line reached the sink")
	}
	if c := healthOf(rt, "processor.hang.h"); c.Healthy || !strings.Contains(c.Reason, "dropped 1 batch") {
		t.Errorf("the health does not show the dropped batch, even after a later batch went through: %+v", c)
	}
	stop(t, rt, store)
}

// Two sources share a pipeline whose byte budget one of them keeps full: the other is not
// starved, since every batch accepted makes room for either.
func TestSharedPipelineBudgetStarvesNoSource(t *testing.T) {
	g := newGated(0)
	src := `
agent {
  data_dir           = "DATADIR"
  max_inflight_bytes = "64KiB"
}
source "gen" "big" {
  count = 20000
  batch = 100
}
source "gen" "small" {
  count = 200
  batch = 10
  every = "1ms"
}
sink "gated" "out" {}
pipeline "main" {
  from = [source.gen.big, source.gen.small]
  to   = [sink.gated.out]
}
`
	comps := map[string]sdk.Component{"source.gen": genComponent(), "sink.gated": gatedComponent(g)}
	h := newHarness(t, src, comps)
	rt, store := h.start(nil)
	waitFor(t, "the budget to fill", 10*time.Second, func() bool {
		_, bytes := runtime.Inflight(rt, "main")
		return bytes >= 64<<10
	})
	g.open()
	waitFor(t, "every line of both sources", 20*time.Second, func() bool { return g.count() == 20200 })
	stop(t, rt, store)
}

// A source feeding two pipelines, one of whose sinks holds its writes: the source's
// checkpoint never passes what that sink accepted, even though the other pipeline received
// more; the full pipeline holds the source back (max_inflight_batches), and once the sink
// accepts again both pipelines get everything and the checkpoint reaches the end.
func TestSharedSourceCheckpointIsWhatEveryPipelineAccepted(t *testing.T) {
	g, fast := newGated(30), &collector{}
	src := `
agent {
  data_dir             = "DATADIR"
  checkpoint_interval  = "10ms"
  max_inflight_batches = 5
}
source "gen" "numbers" {
  count = 500
  batch = 10
}
sink "gated" "capture" {}
sink "collect" "detect" {}
pipeline "capture" {
  from = [source.gen.numbers]
  to   = [sink.gated.capture]
}
pipeline "detect" {
  from = [source.gen.numbers]
  to   = [sink.collect.detect]
}
`
	comps := map[string]sdk.Component{"source.gen": genComponent(), "sink.gated": gatedComponent(g),
		"sink.collect": collectorComponent("collect", fast)}
	h := newHarness(t, src, comps)
	rt, store := h.start(nil)
	stopWatch := watchInvariant(t, store, "source.gen.numbers", g.count)
	waitFor(t, "the capture sink to hold", 10*time.Second, g.blocked.Load)
	waitFor(t, "the source to be held back", 10*time.Second, func() bool {
		b, _ := runtime.Inflight(rt, "capture")
		return b == 5
	})
	if got := len(fast.lines(sdk.KindLog)); got <= g.count() || got >= 500 {
		t.Fatalf("detect received %d lines while capture accepted %d: want more than capture, and the source held back", got, g.count())
	}
	g.open()
	waitFor(t, "the checkpoint to reach the end", 10*time.Second, func() bool {
		return committedNext(t, store, "source.gen.numbers") == 500
	})
	stopWatch()
	stop(t, rt, store)
	if g.count() != 500 || len(fast.lines(sdk.KindLog)) != 500 {
		t.Fatalf("capture %d, detect %d lines; want 500 each", g.count(), len(fast.lines(sdk.KindLog)))
	}
}
