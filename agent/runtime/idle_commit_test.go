package runtime_test

import (
	"encoding/binary"
	"os"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/runtime"
	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/sdk"
)

// counterValue reads a counter of the runtime's registry.
func counterValue(t *testing.T, rt *runtime.Runtime, name string) float64 {
	t.Helper()
	families, err := rt.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}

// storedCount is the counter processor's state as the store holds it (0 before the first
// write).
func storedCount(t *testing.T, store *state.Store) uint64 {
	t.Helper()
	var b []byte
	if err := store.View(func(tx *state.Tx) error {
		var err error
		b, err = tx.Get([]string{"processors", "main"}, []byte("processor.counter.c"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		return 0
	}
	if len(b) != 8 {
		t.Fatalf("stored state %x", b)
	}
	return binary.BigEndian.Uint64(b)
}

// idleWritesNothing waits for five checkpoints of an idle runtime and checks that the store's
// file was not written meanwhile (each transaction rewrites its meta page).
func idleWritesNothing(t *testing.T, rt *runtime.Runtime, store *state.Store) {
	t.Helper()
	skipped := counterValue(t, rt, "tda_checkpoint_commits_unchanged_total")
	before, err := os.Stat(store.Path())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "idle checkpoints", 20*time.Second, func() bool {
		return counterValue(t, rt, "tda_checkpoint_commits_unchanged_total") >= skipped+5
	})
	after, err := os.Stat(store.Path())
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(before.ModTime()) {
		t.Fatalf("the store was written while idle (modified %v, then %v)", before.ModTime(), after.ModTime())
	}
}

// An idle pipeline's checkpoints write nothing (the snapshot is the one stored, no source
// moved), while every change still reaches the store: the stored state is the processor's
// after the last line, during the run and after the stop.
func TestIdleCheckpointsWriteNothingAndChangesAreStored(t *testing.T) {
	out := &collector{}
	src := `
agent {
  data_dir            = "DATADIR"
  checkpoint_interval = "10ms"
}
source "gen" "numbers" {
  count  = 300
  batch  = 50
  every  = "5ms"
  follow = false
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
	h := newHarness(t, src, comps)
	rt, store := h.start(nil)
	waitFor(t, "every line", 20*time.Second, func() bool { return len(out.lines(sdk.KindLog)) == 300 })
	waitFor(t, "the last line's state stored", 20*time.Second, func() bool { return storedCount(t, store) == 300 })
	writes := func() float64 {
		return counterValue(t, rt, "tda_checkpoint_commits_total") - counterValue(t, rt, "tda_checkpoint_commits_unchanged_total")
	}
	// The commit is counted just after its write.
	waitFor(t, "the write counted", 20*time.Second, func() bool { return writes() >= 1 })
	idleWritesNothing(t, rt, store)
	stop(t, rt, store)

	// A new run restores the stored state and counts on from it (this test source sends
	// its lines again); once idle, its checkpoints find the store unchanged.
	rt, store = h.start(nil)
	waitFor(t, "the lines sent again", 20*time.Second, func() bool { return len(out.lines(sdk.KindLog)) == 600 })
	waitFor(t, "the restart's lines stored", 20*time.Second, func() bool { return storedCount(t, store) == 600 })
	idleWritesNothing(t, rt, store)
	if n := storedCount(t, store); n != 600 {
		t.Fatalf("stored count %d after the restart, want 600 (300 restored, 300 counted on)", n)
	}
	stop(t, rt, store)
}
