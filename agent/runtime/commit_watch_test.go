package runtime_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
)

// watchedGen is the gen source that also watches its commits (sdk.CommitWatcher) and checks,
// at each notification, that the committed position never passes what the sink accepted.
type watchedGen struct {
	gen
	accepted func() int

	mu        sync.Mutex
	calls     []int // the committed "next" of each notification
	violation string
}

func (w *watchedGen) Committed(_ context.Context, cps map[string][]byte) {
	v, ok := cps["next"]
	if !ok {
		return
	}
	n, _ := strconv.Atoi(string(v))
	w.mu.Lock()
	defer w.mu.Unlock()
	if got := w.accepted(); n > got && w.violation == "" {
		w.violation = "committed " + string(v) + " while the sink accepted " + strconv.Itoa(got)
	}
	if k := len(w.calls); k > 0 && n < w.calls[k-1] && w.violation == "" {
		w.violation = "commit went back from " + strconv.Itoa(w.calls[k-1]) + " to " + string(v)
	}
	w.calls = append(w.calls, n)
}

func (w *watchedGen) seen() (calls []int, violation string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]int(nil), w.calls...), w.violation
}

func (w *watchedGen) last() int {
	calls, _ := w.seen()
	if len(calls) == 0 {
		return -1
	}
	return calls[len(calls)-1]
}

const watchedConfig = `
agent {
  data_dir            = "DATADIR"
  checkpoint_interval = "20ms"
}
source "gen" "numbers" {
  count = 400
  batch = 10
}
sink "gated" "out" {}
pipeline "main" {
  from = [source.gen.numbers]
  to   = [sink.gated.out]
}
`

// A source that watches its commits hears of a checkpoint only once the sink accepted the
// batches it covers and it is stored, in order; a stuck sink holds the notifications back;
// after a restart of the agent the first notification repeats what the store holds.
func TestCommitWatcherHearsOnlyWhatIsCommitted(t *testing.T) {
	g := newGated(100)
	w := &watchedGen{gen: gen{count: 400, batch: 10}, accepted: g.count}
	comp := sdk.SourceComponent("gen", genSpec, func(*sdk.Config, sdk.Resources) (sdk.Source, error) { return w, nil })
	comps := map[string]sdk.Component{"source.gen": comp, "sink.gated": gatedComponent(g)}
	h := newHarness(t, watchedConfig, comps)
	rt, store := h.start(nil)
	waitFor(t, "the sink to hold its writes", 10*time.Second, g.blocked.Load)
	// Commits go on for a while with the sink stuck: none may pass its 100 lines.
	time.Sleep(200 * time.Millisecond)
	if n := w.last(); n > 100 {
		t.Fatalf("notified of %d committed with the sink stuck at 100", n)
	}
	if got := committedNext(t, store, "source.gen.numbers"); w.last() > got {
		t.Fatalf("notified of %d before the store held it (%d)", w.last(), got)
	}
	g.open()
	waitFor(t, "the notification of the last batch", 10*time.Second, func() bool { return w.last() == 400 })
	stop(t, rt, store)
	if _, v := w.seen(); v != "" {
		t.Fatal(v)
	}

	// Restarted on the same store, with nothing new to read: the first notification says
	// what is committed.
	w2 := &watchedGen{gen: gen{count: 400, batch: 10}, accepted: g.count}
	comps["source.gen"] = sdk.SourceComponent("gen", genSpec, func(*sdk.Config, sdk.Resources) (sdk.Source, error) { return w2, nil })
	rt, store = h.start(nil)
	waitFor(t, "the restarted source's first notification", 10*time.Second, func() bool { return w2.last() == 400 })
	stop(t, rt, store)
	if calls, v := w2.seen(); v != "" || calls[0] != 400 {
		t.Fatalf("after the restart: notifications %v, %s", calls, v)
	}
}

// restartingGen emits 50 lines, waits to hear them committed, then fails, as a source that
// lost its connection does; the agent reads it again.
type restartingGen struct {
	runs   atomic.Int32
	failed atomic.Bool

	mu    sync.Mutex
	calls [][2]int // run (1 before the failure, 2 after), committed "next"
}

func (g *restartingGen) Committed(_ context.Context, cps map[string][]byte) {
	n, _ := strconv.Atoi(string(cps["next"]))
	run := 1
	if g.failed.Load() {
		run = 2
	}
	g.mu.Lock()
	g.calls = append(g.calls, [2]int{run, n})
	g.mu.Unlock()
}

func (g *restartingGen) heard(run, next int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.calls {
		if c[0] == run && c[1] == next {
			return true
		}
	}
	return false
}

func (g *restartingGen) Run(ctx context.Context, out sdk.Output) error {
	if g.runs.Add(1) > 1 {
		<-ctx.Done()
		return nil
	}
	for next := 0; next < 50; next += 10 {
		var events []sdk.Event
		for i := next; i < next+10; i++ {
			events = append(events, sdk.Event{Kind: sdk.KindLog, Origin: "gen", Time: time.Unix(int64(i), 0).UTC(), Line: []byte(strconv.Itoa(i))})
		}
		if err := out.Emit(ctx, events, sdk.Checkpoint{Key: "next", Value: []byte(strconv.Itoa(next + 10))}); err != nil {
			return nil
		}
	}
	for !g.heard(1, 50) {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(5 * time.Millisecond):
		}
	}
	g.failed.Store(true)
	return errors.New("lost the connection to its server")
}

// A source read again after it failed hears, first thing, every entry committed so far: a
// commit it missed while it was restarting is not lost to it.
func TestCommitWatcherHearsTheCommittedAfterARestart(t *testing.T) {
	g := &restartingGen{}
	sink := &collector{}
	comps := map[string]sdk.Component{
		"source.gen":   sdk.SourceComponent("gen", genSpec, func(*sdk.Config, sdk.Resources) (sdk.Source, error) { return g, nil }),
		"sink.collect": collectorComponent("collect", sink),
	}
	h := newHarness(t, strings.NewReplacer("gated", "collect").Replace(watchedConfig), comps)
	rt, store := h.start(nil)
	waitFor(t, "the source to be read again and told what is committed", 15*time.Second, func() bool { return g.heard(2, 50) })
	stop(t, rt, store)
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.calls {
		if c[0] == 2 {
			if c[1] != 50 {
				t.Fatalf("the first notification of the second run says %d, want 50 (calls %v)", c[1], g.calls)
			}
			break
		}
	}
}
