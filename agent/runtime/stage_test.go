package runtime_test

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/runtime"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
)

// While no checkpoint can be committed, a stateful stage still holds at most its bound of
// input for replay: the processor's snapshot replaces what it held, and a crashed processor
// is rebuilt from that snapshot with nothing lost or counted twice.
func TestReplayBufferIsBoundedWithoutCommits(t *testing.T) {
	const hold = 8 << 10
	out := &collector{}
	src := `
agent {
  data_dir            = "DATADIR"
  checkpoint_interval = "10ms"
}
source "gen" "numbers" {
  count = 5000
  batch = 50
  every = "1ms"
}
processor "counter" "c" { every = 100 }
sink "collect" "out" {}
pipeline "main" {
  from    = [source.gen.numbers]
  through = [processor.counter.c]
  to      = [sink.collect.out]
}
`
	comps := map[string]sdk.Component{"source.gen": genComponent(), "processor.counter": counterComponent(),
		"sink.collect": collectorComponent("collect", out)}
	l := crashableLauncher(comps)
	h := newHarness(t, src, comps)
	rt, store := h.startWith(l, func(o *runtime.Options) { o.ReplayHoldBytes = hold })
	runtime.FailCheckpointWrites(rt, func() error { return enospc(store.Path()) })

	var peak atomic.Int64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
			if n := int64(runtime.HeldForReplay(rt, "main")); n > peak.Load() {
				peak.Store(n)
			}
		}
	}()
	for _, at := range []int{1200, 3100} {
		waitFor(t, "progress", 20*time.Second, func() bool { return len(out.lines(sdk.KindLog)) >= at })
		l.kill("processor.counter.c")
	}
	waitFor(t, "every line", 30*time.Second, func() bool { return len(out.lines(sdk.KindLog)) == 5000 })
	close(done)
	<-sampled
	runtime.FailCheckpointWrites(rt, nil)
	stop(t, rt, store)

	// The bound holds to within the batch that crossed it (and, while the killed plugin
	// cannot be snapshotted, the one after it).
	var events []sdk.Event
	for i := 0; i < 50; i++ {
		events = append(events, sdk.Event{Kind: sdk.KindLog, Origin: "gen", Time: time.Unix(4999, 0).UTC(), Line: []byte("4999")})
	}
	batch := host.NewBatch(events).Size()
	if p := peak.Load(); p > int64(hold+2*batch) {
		t.Errorf("the stage held %d bytes for replay; bound %d plus two batches of %d", p, hold, batch)
	}
	if peak.Load() == 0 {
		t.Error("the stage never held input: the test did not exercise the bound")
	}
	for _, e := range out.snapshot() {
		if e.Kind == sdk.KindLog && e.Field("n") != strconv.Itoa(atoiMust(string(e.Line))+1) {
			t.Fatalf("line %s numbered %s: the rebuilt processor lost or repeated input", e.Line, e.Field("n"))
		}
	}
	if got := len(out.lines(sdk.KindAlert)); got != 50 {
		t.Fatalf("%d alerts, want 50", got)
	}
}
