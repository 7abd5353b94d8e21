package runtime_test

import (
	"context"
	"strconv"
	"sync"
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
