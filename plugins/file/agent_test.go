package file_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/agenttest"
	"github.com/tda-dev/tda/sdk"
)

func TestMain(m *testing.M) { agenttest.Main(m) }

// agentLine is a fixed-width numbered line.
func agentLine(b []byte, i int) []byte {
	return fmt.Appendf(b, "line %08d xxxxxxxxxxxxxxxxxx\n", i)
}

// TestKilledAgentDuringWrite kills the whole agent (plugins included) with SIGKILL ten times
// at random moments while 500,000 lines are written, rotating by rename every 100,000 lines,
// each time once the run has delivered something, and restarts it each time: every line reaches the jsonl sink at least once, and the only
// duplicates are lines read again after a kill (the output is a series of ascending runs
// without gaps, one per start).
func TestKilledAgentDuringWrite(t *testing.T) {
	t.Parallel()
	bins := agenttest.Build(t, "file", "jsonl")
	a := agenttest.New(t, bins, `
agent {
  data_dir            = "DIR/data"
  checkpoint_interval = "100ms"
}
source "file" "in" {
  paths       = ["DIR/in/*.log"]
  rotate_wait = "1s"
}
sink "jsonl" "out" {
  path = "DIR/out.jsonl"
}
pipeline "p" {
  from = [source.file.in]
  to   = [sink.jsonl.out]
}
`)
	if err := os.MkdirAll(a.Path("in"), 0o755); err != nil {
		t.Fatal(err)
	}
	const total, every, rate = 500_000, 100_000, 50_000
	path := a.Path("in", "app.log")
	done := make(chan error, 1)
	var written atomic.Int64
	go func() {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			done <- err
			return
		}
		const tick = 10 * time.Millisecond
		next := time.Now()
		var buf []byte
		for i := 0; i < total; {
			buf = buf[:0]
			for j := 0; j < rate/100 && i < total; j++ {
				buf = agentLine(buf, i)
				i++
				if i%every == 0 {
					break
				}
			}
			if _, err := f.Write(buf); err != nil {
				done <- err
				return
			}
			written.Store(int64(i))
			if i%every == 0 && i < total {
				_ = f.Close()
				if err := os.Rename(path, fmt.Sprintf("%s.%d", path, i/every)); err != nil {
					done <- err
					return
				}
				if f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err != nil {
					done <- err
					return
				}
			}
			next = next.Add(tick)
			time.Sleep(time.Until(next))
		}
		done <- f.Close()
	}()
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	t.Logf("seed %d", seed)
	out := a.Path("out.jsonl")
	delivered := 0
	for k := 0; k < 10; k++ {
		began := time.Now()
		a.Start()
		started := time.Since(began)
		// Each kill comes while the agent delivers: on a busy machine a run can take longer
		// to deliver its first batch than the random delay below, and ten kills before any
		// delivery would test a single run.
		if delivered < total {
			agenttest.WaitFor(t, fmt.Sprintf("run %d to deliver past line %d", k+1, delivered), 60*time.Second, func() bool {
				return agenttest.CountLines(out) > delivered
			})
		}
		time.Sleep(time.Duration(rng.Int64N(int64(500 * time.Millisecond))))
		if os.Getenv("TDA_TEST_LOGS") != "" {
			t.Logf("run %d logs:\n%s", k+1, a.Logs())
		}
		a.Kill()
		delivered = agenttest.CountLines(out)
		t.Logf("kill %d with %d lines written and %d delivered (start took %v)", k+1, written.Load(),
			delivered, started.Round(time.Millisecond))
	}
	if err := <-done; err != nil {
		t.Fatalf("writer: %v", err)
	}
	a.Start()
	// Catching up is a matter of progress, not of a fixed time: the wait fails only when no
	// line arrives for a minute, and says so rather than reporting the lines not yet read as
	// lost.
	for n, last, at := agenttest.CountLines(out), -1, time.Now(); n < total; n = agenttest.CountLines(out) {
		if n != last {
			last, at = n, time.Now()
		} else if time.Since(at) > time.Minute {
			t.Fatalf("no line delivered for a minute with %d of %d delivered\n%s", n, total, a.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Let the last batches settle, then stop cleanly.
	time.Sleep(500 * time.Millisecond)
	if code, _ := a.Stop(); code != 0 {
		t.Fatalf("exit %d:\n%s", code, a.Logs())
	}
	counts := make([]int, total)
	var order []int
	for _, e := range agenttest.ReadJSONL(t, out) {
		if e.Kind != sdk.KindLog {
			continue
		}
		var n int
		if _, err := fmt.Sscanf(string(e.Line), "line %08d", &n); err != nil || n >= total {
			t.Fatalf("unexpected line %q", e.Line)
		}
		counts[n]++
		order = append(order, n)
	}
	var spans []string
	from := 0
	for i := 1; i <= len(order); i++ {
		if i == len(order) || order[i] != order[i-1]+1 {
			spans = append(spans, fmt.Sprintf("%d-%d", order[from], order[i-1]))
			from = i
		}
	}
	for i, c := range counts {
		if c == 0 {
			t.Fatalf("line %d lost; the output holds the runs %v\n%s", i, spans, a.Logs())
		}
	}
	runs := 1
	for i := 1; i < len(order); i++ {
		if order[i] == order[i-1]+1 {
			continue
		}
		if order[i] > order[i-1] {
			t.Fatalf("gap after line %d: next is %d", order[i-1], order[i])
		}
		runs++
	}
	if runs > 11 {
		t.Fatalf("%d restarts of the sequence, want at most 11 (one per start)", runs)
	}
	t.Logf("%d lines delivered for %d written: %d read again after 10 kills, in %d runs",
		len(order), total, len(order)-total, runs)
}
