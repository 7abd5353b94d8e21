package runtime_test

import (
	"context"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/runtime"
	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/sdk"
)

// gated is a sink that accepts `after` lines, then holds every write until the gate opens
// (or the write's context ends), as a memory-queue sink stuck on a full disk does.
type gated struct {
	after   int
	gate    chan struct{}
	once    sync.Once
	blocked atomic.Bool

	mu    sync.Mutex
	lines []string
}

func newGated(after int) *gated { return &gated{after: after, gate: make(chan struct{})} }

func (g *gated) Write(ctx context.Context, b sdk.Batch) error {
	g.mu.Lock()
	n := len(g.lines)
	g.mu.Unlock()
	if n >= g.after {
		g.blocked.Store(true)
		select {
		case <-g.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, e := range b.Events {
		if e.Kind == sdk.KindLog {
			g.lines = append(g.lines, string(e.Line))
		}
	}
	return nil
}

func (g *gated) open() { g.once.Do(func() { close(g.gate) }) }

func (g *gated) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.lines)
}

func gatedComponent(g *gated) sdk.Component {
	return sdk.SinkComponent("gated", &sdk.Spec{}, func(*sdk.Config, sdk.Resources) (sdk.Sink, error) { return g, nil })
}

// committedNext reads the committed "next" of a source through the running agent's store
// (0 when none is committed).
func committedNext(t *testing.T, store *state.Store, source string) int {
	t.Helper()
	var v []byte
	if err := store.View(func(tx *state.Tx) error {
		var err error
		v, err = tx.Get([]string{"checkpoints", source}, []byte("next"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(string(v))
	return n
}

// watchInvariant samples, until stop is closed, that the committed checkpoint never passes
// what the sink accepted: the checkpoint is read first, so a commit between the two reads
// can only make the check stricter.
func watchInvariant(t *testing.T, store *state.Store, source string, accepted func() int) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			var v []byte
			_ = store.View(func(tx *state.Tx) error {
				v, _ = tx.Get([]string{"checkpoints", source}, []byte("next"))
				return nil
			})
			cp, _ := strconv.Atoi(string(v))
			if got := accepted(); cp > got {
				t.Errorf("checkpoint of %s committed at %d while its sink accepted %d lines", source, cp, got)
				return
			}
		}
	}()
	return func() { close(done); <-finished }
}

// Ctrl-C while the periodic commit waits on a stuck memory-queue sink: the stop gives up
// after its deadline, and no checkpoint passes the lines the sink accepted.
func TestStopNeverCommitsPastBatchesNoSinkAccepted(t *testing.T) {
	g := newGated(50)
	src := `
agent {
  data_dir             = "DATADIR"
  checkpoint_interval  = "20ms"
  max_inflight_batches = 5
}
source "gen" "numbers" {
  count = 1000
  batch = 10
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
	stopWatch := watchInvariant(t, store, "source.gen.numbers", g.count)
	waitFor(t, "the sink to hold its writes", 10*time.Second, g.blocked.Load)
	// Let the commit loop issue a barrier and wait on the stuck sink.
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := rt.Stop(ctx)
	stopWatch()
	if err == nil || !strings.Contains(err.Error(), "final checkpoint") {
		t.Errorf("stop with a stuck sink: want a final checkpoint error, got %v", err)
	}
	got := committedNext(t, store, "source.gen.numbers")
	_ = store.Close()
	if got > g.count() {
		t.Fatalf("checkpoint committed at line %d; the sink accepted only %d", got, g.count())
	}
	if g.count() < 50 || g.count() >= 1000 {
		t.Fatalf("the sink accepted %d lines; the test wants it stuck after 50", g.count())
	}
}

// twoGroups is two unconnected pipelines: "stuck" feeds a gated sink, "fine" a collector.
const twoGroups = `
agent {
  data_dir            = "DATADIR"
  checkpoint_interval = "20ms"
}
source "gen" "a" {
  count = 400
  batch = 10
}
source "gen" "b" {
  count = 400
  batch = 10
}
sink "gated" "stuck" {}
sink "collect" "fine" {}
pipeline "stuck" {
  from = [source.gen.a]
  to   = [sink.gated.stuck]
}
pipeline "fine" {
  from = [source.gen.b]
  to   = [sink.collect.fine]
}
`

// One pipeline's stuck sink never holds back the checkpoints of an unconnected pipeline.
func TestStuckSinkHoldsBackOnlyItsOwnGroup(t *testing.T) {
	g, fine := newGated(30), &collector{}
	comps := map[string]sdk.Component{"source.gen": genComponent(), "sink.gated": gatedComponent(g),
		"sink.collect": collectorComponent("collect", fine)}
	h := newHarness(t, twoGroups, comps)
	rt, store := h.startWith(nil, func(o *runtime.Options) { o.CheckpointStallAfter = 100 * time.Millisecond })
	stopWatch := watchInvariant(t, store, "source.gen.a", g.count)
	waitFor(t, "the stuck sink", 10*time.Second, g.blocked.Load)
	waitFor(t, "the other group's checkpoint to reach its end", 10*time.Second, func() bool {
		return committedNext(t, store, "source.gen.b") == 400
	})
	if got := committedNext(t, store, "source.gen.a"); got > 30 {
		t.Fatalf("the stuck group committed line %d past its sink's 30", got)
	}
	waitFor(t, "the state to say the stuck group's checkpoints are held back", 10*time.Second, func() bool {
		c := healthOf(rt, runtime.CheckpointAddress("stuck"))
		return !c.Healthy && strings.Contains(c.Reason, "held back") && strings.Contains(c.Reason, "stuck")
	})
	if c := healthOf(rt, runtime.CheckpointAddress("fine")); c.Address != "" && !c.Healthy {
		t.Fatalf("the fine group is reported held back: %+v", c)
	}
	g.open()
	waitFor(t, "the stuck group to catch up", 10*time.Second, func() bool {
		return committedNext(t, store, "source.gen.a") == 400
	})
	waitFor(t, "the held-back report to clear", 10*time.Second, func() bool {
		return healthOf(rt, runtime.CheckpointAddress("stuck")).Healthy
	})
	stopWatch()
	stop(t, rt, store)
	if g.count() != 400 || len(fine.lines(sdk.KindLog)) != 400 {
		t.Fatalf("lines: stuck %d, fine %d; want 400 each", g.count(), len(fine.lines(sdk.KindLog)))
	}
}

// Stopping with one group's sink stuck commits the other group's last checkpoint in full,
// and nothing of the stuck group past what its sink accepted.
func TestShutdownWithAGroupInFlight(t *testing.T) {
	g, fine := newGated(30), &collector{}
	comps := map[string]sdk.Component{"source.gen": genComponent(), "sink.gated": gatedComponent(g),
		"sink.collect": collectorComponent("collect", fine)}
	h := newHarness(t, strings.Replace(twoGroups, `checkpoint_interval = "20ms"`, `checkpoint_interval = "1h"`, 1), comps)
	rt, store := h.start(nil)
	waitFor(t, "the stuck sink", 10*time.Second, g.blocked.Load)
	waitFor(t, "the fine pipeline's lines", 10*time.Second, func() bool { return len(fine.lines(sdk.KindLog)) == 400 })
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := rt.Stop(ctx)
	if err == nil || !strings.Contains(err.Error(), "group stuck") || strings.Contains(err.Error(), "group fine") {
		t.Errorf("want a final checkpoint error for group stuck only, got %v", err)
	}
	a, b := committedNext(t, store, "source.gen.a"), committedNext(t, store, "source.gen.b")
	_ = store.Close()
	if b != 400 {
		t.Errorf("the fine group's final checkpoint is %d, want 400", b)
	}
	if a > g.count() {
		t.Errorf("the stuck group committed %d past the %d lines its sink accepted", a, g.count())
	}
}

// enospc is the error a full disk gives a write to the store's file.
func enospc(path string) error {
	return &fs.PathError{Op: "write", Path: path, Err: syscall.ENOSPC}
}

// A checkpoint write that fails (full disk) makes the state degraded with what to do,
// commits nothing, keeps what it holds bounded, and the next write after space returns
// commits everything.
func TestCommitErrorDegradesTheStateAndLosesNothing(t *testing.T) {
	out := &collector{}
	src := `
agent {
  data_dir            = "DATADIR"
  checkpoint_interval = "10ms"
}
source "gen" "numbers" {
  count = 2000
  batch = 10
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
	h := newHarness(t, src, comps)
	rt, store := h.start(nil)
	waitFor(t, "a first commit", 10*time.Second, func() bool { return committedNext(t, store, "source.gen.numbers") > 0 })
	var failing atomic.Bool
	failing.Store(true)
	runtime.FailCheckpointWrites(rt, func() error {
		if failing.Load() {
			return enospc(store.Path())
		}
		return nil
	})
	var reason string
	waitFor(t, "the state to say the store cannot write", 10*time.Second, func() bool {
		for _, c := range rt.Health().Components() {
			if c.Address == runtime.StoreAddress && !c.Healthy {
				reason = c.Reason
				return true
			}
		}
		return false
	})
	for _, want := range []string{"cannot write " + store.Path(), "no space left on device", "free space", "re-reads"} {
		if !strings.Contains(reason, want) {
			t.Errorf("reason %q does not say %q", reason, want)
		}
	}
	if d := rt.Health().Degraded(); len(d) == 0 {
		t.Error("the system is not degraded while checkpoints cannot be written")
	}
	frozen := committedNext(t, store, "source.gen.numbers")
	waitFor(t, "lines flowing on", 10*time.Second, func() bool { return len(out.lines(sdk.KindLog)) >= frozen+500 })
	if got := committedNext(t, store, "source.gen.numbers"); got != frozen {
		t.Fatalf("the checkpoint moved from %d to %d while writes failed", frozen, got)
	}
	if n := runtime.Uncommitted(rt, "source.gen.numbers"); n > 2 {
		t.Errorf("the source holds %d uncommitted entries for one key; want at most 2", n)
	}
	failing.Store(false)
	waitFor(t, "everything committed once space returns", 10*time.Second, func() bool {
		return committedNext(t, store, "source.gen.numbers") == 2000
	})
	waitFor(t, "the state back to normal", 10*time.Second, func() bool { return len(rt.Health().Degraded()) == 0 })
	stop(t, rt, store)
	if got := len(out.lines(sdk.KindLog)); got != 2000 {
		t.Fatalf("%d lines delivered, want 2000", got)
	}
}

func crashableLauncher(comps map[string]sdk.Component) *crashable {
	return &crashable{InProcessLauncher: runtime.InProcessLauncher{Components: comps},
		launches: map[string]int{}, current: map[string]*crashPlugin{}}
}

func healthOf(rt *runtime.Runtime, addr string) runtime.ComponentHealth {
	for _, c := range rt.Health().Components() {
		if c.Address == addr {
			return c
		}
	}
	return runtime.ComponentHealth{}
}

// A sink plugin killed while idle shows in the health at once, not when data next arrives;
// data then restarts it and the health is normal again.
func TestKilledIdleSinkShowsAtOnce(t *testing.T) {
	out := &collector{}
	src := `
agent { data_dir = "DATADIR" }
source "gen" "numbers" {
  count = 20
  batch = 5
}
sink "collect" "out" {}
pipeline "main" {
  from = [source.gen.numbers]
  to   = [sink.collect.out]
}
`
	comps := map[string]sdk.Component{"source.gen": genComponent(), "sink.collect": collectorComponent("collect", out)}
	l := crashableLauncher(comps)
	h := newHarness(t, src, comps)
	rt, store := h.startWith(l, func(o *runtime.Options) { o.ExitPollInterval = 10 * time.Millisecond })
	waitFor(t, "every line", 10*time.Second, func() bool { return len(out.lines(sdk.KindLog)) == 20 })
	l.kill("sink.collect.out")
	waitFor(t, "the exit in the health", 5*time.Second, func() bool {
		c := healthOf(rt, "sink.collect.out")
		return !c.Healthy && strings.Contains(c.Reason, "exited")
	})
	if err := rt.Inject(context.Background(), "main", []sdk.Event{{Kind: sdk.KindLog, Line: []byte("after")}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the injected line", 10*time.Second, func() bool { return len(out.lines(sdk.KindLog)) == 21 })
	if c := healthOf(rt, "sink.collect.out"); !c.Healthy || c.Restarts != 1 {
		t.Fatalf("after the restart: %+v", c)
	}
	stop(t, rt, store)
}

// A sink that fails, crashes and fails again after its restart stays failing in the health:
// the restart does not paper over the sink's own failure.
func TestRestartThatStillFailsStaysFailing(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	out := &collector{fail: func(sdk.Batch) error {
		if failing.Load() {
			return fmt.Errorf("disk full")
		}
		return nil
	}}
	src := `
agent { data_dir = "DATADIR" }
source "gen" "numbers" {
  count = 20
  batch = 5
}
sink "collect" "out" {
  retry {
    initial = "5ms"
    max     = "10ms"
  }
}
pipeline "main" {
  from = [source.gen.numbers]
  to   = [sink.collect.out]
}
`
	comps := map[string]sdk.Component{"source.gen": genComponent(), "sink.collect": collectorComponent("collect", out)}
	l := crashableLauncher(comps)
	h := newHarness(t, src, comps)
	rt, store := h.start(l)
	calls := func() int { out.mu.Lock(); defer out.mu.Unlock(); return len(out.calls) }
	waitFor(t, "a failed write", 10*time.Second, func() bool { return calls() > 0 })
	l.kill("sink.collect.out")
	waitFor(t, "the restart", 10*time.Second, func() bool { return healthOf(rt, "sink.collect.out").Restarts == 1 })
	after := calls()
	waitFor(t, "writes failing after the restart", 10*time.Second, func() bool { return calls() > after+2 })
	if c := healthOf(rt, "sink.collect.out"); c.Healthy || !strings.Contains(c.Reason, "disk full") {
		t.Fatalf("a restarted sink whose writes still fail shows %+v", c)
	}
	failing.Store(false)
	waitFor(t, "every line", 10*time.Second, func() bool { return len(out.lines(sdk.KindLog)) == 20 })
	waitFor(t, "healthy once it delivers", 10*time.Second, func() bool { return healthOf(rt, "sink.collect.out").Healthy })
	stop(t, rt, store)
}

// A sink plugin that crashes with a batch in hand: no checkpoint covers that batch until the
// restarted plugin accepted it, and every line arrives.
func TestSinkCrashMidGroupKeepsTheInvariant(t *testing.T) {
	out := &collector{}
	src := `
agent {
  data_dir            = "DATADIR"
  checkpoint_interval = "5ms"
}
source "gen" "numbers" {
  count = 3000
  batch = 10
  every = "1ms"
}
sink "collect" "out" {}
pipeline "main" {
  from = [source.gen.numbers]
  to   = [sink.collect.out]
}
`
	comps := map[string]sdk.Component{"source.gen": genComponent(), "sink.collect": collectorComponent("collect", out)}
	l := crashableLauncher(comps)
	h := newHarness(t, src, comps)
	rt, store := h.start(l)
	stopWatch := watchInvariant(t, store, "source.gen.numbers", func() int { return len(out.lines(sdk.KindLog)) })
	for _, at := range []int{500, 1500, 2500} {
		waitFor(t, "progress", 20*time.Second, func() bool { return len(out.lines(sdk.KindLog)) >= at })
		l.kill("sink.collect.out")
	}
	waitFor(t, "every line committed", 30*time.Second, func() bool {
		return committedNext(t, store, "source.gen.numbers") == 3000
	})
	stopWatch()
	stop(t, rt, store)
	if got := len(out.lines(sdk.KindLog)); got != 3000 {
		t.Fatalf("%d lines, want 3000", got)
	}
}

// A commit cancelled while it waits for a sink commits nothing; the next commit covers the
// batches the cancelled one waited for, once the sink accepted them, and no more pending
// checkpoints pile up meanwhile.
func TestCancelledCommitIsCoveredByTheNext(t *testing.T) {
	g := newGated(40)
	src := `
agent {
  data_dir            = "DATADIR"
  checkpoint_interval = "1h"
}
source "gen" "numbers" {
  count = 300
  batch = 10
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
	for i := 0; i < 5; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		err := rt.Commit(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "deadline") {
			t.Fatalf("commit %d with a stuck sink: %v", i, err)
		}
		if got := committedNext(t, store, "source.gen.numbers"); got > g.count() {
			t.Fatalf("a cancelled commit wrote %d past the %d lines accepted", got, g.count())
		}
	}
	if n := runtime.OpenEpochs(rt, "main"); n > 2 {
		t.Errorf("%d epochs wait after five cancelled commits; want the pending one and the open one", n)
	}
	g.open()
	waitFor(t, "every line", 10*time.Second, func() bool { return g.count() == 300 })
	if err := rt.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := committedNext(t, store, "source.gen.numbers"); got != 300 {
		t.Fatalf("checkpoint %d after the sink caught up, want 300", got)
	}
	stop(t, rt, store)
}
