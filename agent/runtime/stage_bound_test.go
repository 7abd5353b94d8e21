package runtime_test

import (
	"bytes"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/runtime"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
)

// bigState is the counter with a state of pad bytes besides its count: a processor whose
// snapshot is larger than the replay hold. It counts its snapshots.
type bigState struct {
	counter
	pad       int
	snapshots *atomic.Int64
}

func (b *bigState) Snapshot() ([]byte, error) {
	b.snapshots.Add(1)
	s, _ := b.counter.Snapshot()
	return append(s, bytes.Repeat([]byte{'x'}, b.pad)...), nil
}

func (b *bigState) Restore(s []byte) error {
	if len(s) != 8+b.pad {
		return errors.New("bad state")
	}
	return b.counter.Restore(s[:8])
}

func bigStateComponent(pad int, snapshots *atomic.Int64) sdk.Component {
	spec := &sdk.Spec{Fields: []sdk.Field{{Name: "every", Type: sdk.TypeInt, Default: 100}}}
	return sdk.ProcessorComponent("big", spec, func(c *sdk.Config, _ sdk.Resources) (sdk.Processor, error) {
		return &bigState{counter: counter{every: c.Int("every")}, pad: pad, snapshots: snapshots}, nil
	})
}

// A processor whose snapshot is larger than the replay hold is snapshotted once twice its
// snapshot's size of input is held, not at every batch past the hold; a crash still
// rebuilds it with nothing lost or counted twice.
func TestReplayHoldGrowsWithTheSnapshot(t *testing.T) {
	const hold, pad = 4 << 10, 32 << 10
	var snapshots atomic.Int64
	out := &collector{}
	src := `
agent {
  data_dir            = "DATADIR"
  checkpoint_interval = "1h"
}
source "gen" "numbers" {
  count = 6000
  batch = 50
  every = "1ms"
}
processor "big" "c" { every = 100 }
sink "collect" "out" {}
pipeline "main" {
  from    = [source.gen.numbers]
  through = [processor.big.c]
  to      = [sink.collect.out]
}
`
	comps := map[string]sdk.Component{"source.gen": genComponent(), "processor.big": bigStateComponent(pad, &snapshots),
		"sink.collect": collectorComponent("collect", out)}
	l := crashableLauncher(comps)
	h := newHarness(t, src, comps)
	rt, store := h.startWith(l, func(o *runtime.Options) { o.ReplayHoldBytes = hold })
	// Only the hold's snapshots let go of input: no checkpoint is committed, and the only
	// checkpoints are those the hold asks for (at most one a second).
	runtime.FailCheckpointWrites(rt, func() error { return enospc(store.Path()) })
	var peak atomic.Int64
	done, sampled := make(chan struct{}), make(chan struct{})
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
	waitFor(t, "progress", 30*time.Second, func() bool { return len(out.lines(sdk.KindLog)) >= 3000 })
	l.kill("processor.big.c")
	waitFor(t, "every line", 30*time.Second, func() bool { return len(out.lines(sdk.KindLog)) == 6000 })
	close(done)
	<-sampled
	runtime.FailCheckpointWrites(rt, nil)
	stop(t, rt, store)

	var events []sdk.Event
	for range 50 {
		events = append(events, sdk.Event{Kind: sdk.KindLog, Origin: "gen", Time: time.Unix(5999, 0).UTC(), Line: []byte("5999")})
	}
	batch := host.NewBatch(events).Size()
	snap := 8 + pad
	if p := peak.Load(); p > int64(2*snap+2*batch) || p <= int64(hold+2*batch) {
		t.Errorf("the stage held at most %d bytes; want more than the hold (%d) and at most twice the snapshot (%d) plus two batches of %d",
			p, hold, 2*snap, batch)
	}
	// Each time the bound is reached: the hold's snapshot, and the checkpoint it may ask for
	// takes one. One per twice the snapshot's size of input, not one per hold (about 100).
	input := 6000 / 50 * batch
	if n, want := snapshots.Load(), int64(2*(input/(2*snap)+1)+4); n > want {
		t.Errorf("%d snapshots of %d bytes for %d bytes of input; want at most %d", n, snap, input, want)
	}
	for _, e := range out.snapshot() {
		if e.Kind == sdk.KindLog && e.Field("n") != strconv.Itoa(atoiMust(string(e.Line))+1) {
			t.Fatalf("line %s numbered %s: the rebuilt processor lost or repeated input", e.Line, e.Field("n"))
		}
	}
}
