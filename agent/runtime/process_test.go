package runtime_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/agenttest"
	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/sdk"
)

func TestMain(m *testing.M) { agenttest.Main(m) }

// lineWidth is the fixed width of generated lines, so a byte offset names a line.
const lineWidth = 32

func numbered(i int) string {
	s := fmt.Sprintf("line %08d ", i)
	return s + strings.Repeat("x", lineWidth-1-len(s))
}

func appendLines(t *testing.T, path string, from, to int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b bytes.Buffer
	for i := from; i < to; i++ {
		b.WriteString(numbered(i))
		b.WriteByte('\n')
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
}

// lineCounts reads the jsonl output and counts each numbered line.
func lineCounts(t *testing.T, path string) (map[int]int, []int) {
	t.Helper()
	counts := map[int]int{}
	var order []int
	for _, e := range agenttest.ReadJSONL(t, path) {
		if e.Kind != sdk.KindLog {
			continue
		}
		var n int
		if _, err := fmt.Sscanf(string(e.Line), "line %08d", &n); err != nil {
			t.Fatalf("unexpected line %q", e.Line)
		}
		counts[n]++
		order = append(order, n)
	}
	return counts, order
}

func killPlugin(t *testing.T, a *agenttest.Agent, binary string) int {
	t.Helper()
	for pid, name := range a.PluginPids() {
		if name == binary {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			return pid
		}
	}
	t.Fatalf("no %s process among %v", binary, a.PluginPids())
	return 0
}

// Each plugin instance is its own child process; killing any of them mid-stream loses and
// repeats nothing: the source resumes after the last batch the agent received, the
// processor is restored and replayed, the sink's retried batch is written once.
func TestKilledPluginsLoseAndRepeatNothing(t *testing.T) {
	bins := agenttest.Build(t, "file", "detect", "jsonl")
	a := agenttest.New(t, bins, `
agent {
  data_dir            = "DIR/data"
  checkpoint_interval = "200ms"
}
source "file" "in" {
  paths = ["DIR/in/*.log"]
}
processor "override" "flags" {}
sink "jsonl" "out" {
  path = "DIR/out.jsonl"
}
pipeline "p" {
  from    = [source.file.in]
  through = [processor.override.flags]
  to      = [sink.jsonl.out]
}
`)
	if err := os.MkdirAll(a.Path("in"), 0o755); err != nil {
		t.Fatal(err)
	}
	input := a.Path("in", "app.log")
	appendLines(t, input, 0, 1000)
	a.Start()
	pids := a.PluginPids()
	if len(pids) != 3 {
		t.Fatalf("want 3 plugin processes (one per instance), got %v", pids)
	}

	const total = 60000
	written := make(chan struct{})
	go func() {
		defer close(written)
		for i := 1000; i < total; i += 500 {
			appendLines(t, input, i, i+500)
			time.Sleep(25 * time.Millisecond) // 20,000 lines/s
		}
	}()
	out := a.Path("out.jsonl")
	for _, step := range []struct {
		after  int
		binary string
	}{{10000, "tda-plugin-file"}, {25000, "tda-plugin-detect"}, {40000, "tda-plugin-jsonl"}} {
		agenttest.WaitFor(t, fmt.Sprintf("%d lines", step.after), 60*time.Second, func() bool {
			return agenttest.CountLines(out) >= step.after
		})
		killPlugin(t, a, step.binary)
	}
	<-written
	agenttest.WaitFor(t, "every line", 60*time.Second, func() bool { return agenttest.CountLines(out) >= total })
	time.Sleep(500 * time.Millisecond)
	if code, took := a.Stop(); code != 0 || took > 10*time.Second {
		t.Fatalf("stop: exit %d after %v\n%s", code, took, a.Logs())
	}
	counts, _ := lineCounts(t, out)
	for i := 0; i < total; i++ {
		if counts[i] != 1 {
			t.Fatalf("line %d delivered %d times", i, counts[i])
		}
	}
	if len(counts) != total {
		t.Fatalf("%d distinct lines, want %d", len(counts), total)
	}
	logs := a.Logs()
	if n := strings.Count(logs, "plugin restarted"); n < 3 {
		t.Fatalf("the agent logged %d restarts, want 3:\n%s", n, logs)
	}
}

// committedLine reads the file source's committed offset from the state store and turns it
// into a line number.
func committedLine(t *testing.T, dataDir, source string) int {
	t.Helper()
	store, err := state.Open(dataDir, state.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	offset := int64(-1)
	_ = store.View(func(tx *state.Tx) error {
		return tx.ForEach([]string{"checkpoints", source}, func(k, v []byte) error {
			var e struct {
				Offset int64 `json:"offset"`
			}
			if json.Unmarshal(v, &e) == nil && strings.HasPrefix(string(k), "file:") {
				offset = e.Offset
			}
			return nil
		})
	})
	if offset < 0 {
		return 0
	}
	if offset%lineWidth != 0 {
		t.Fatalf("committed offset %d is not at a line boundary", offset)
	}
	return int(offset / lineWidth)
}

// kill -9 of the whole agent (plugins included) at random points, then restart: every line
// arrives at least once, and the only duplicates are the lines after the last committed
// checkpoint, which the restarted agent reads again.
func TestKilledAgentResumesFromTheLastCommit(t *testing.T) {
	bins := agenttest.Build(t, "file", "jsonl")
	a := agenttest.New(t, bins, `
agent {
  data_dir            = "DIR/data"
  checkpoint_interval = "100ms"
}
source "file" "in" {
  paths = ["DIR/in/*.log"]
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
	const total = 200000
	appendLines(t, a.Path("in", "app.log"), 0, total)
	out := a.Path("out.jsonl")
	var commits []int
	for _, at := range []int{30000, 80000, 150000} {
		a.Start()
		agenttest.WaitFor(t, "progress", 60*time.Second, func() bool { return agenttest.CountLines(out) >= at })
		a.Kill()
		delivered := agenttest.CountLines(out)
		committed := committedLine(t, a.Path("data"), "source.file.in")
		if committed > delivered {
			t.Fatalf("committed line %d beyond the %d delivered", committed, delivered)
		}
		commits = append(commits, committed)
		t.Logf("killed after %d lines delivered; committed %d", delivered, committed)
	}
	a.Start()
	agenttest.WaitFor(t, "every line", 120*time.Second, func() bool {
		counts, _ := lineCounts(t, out)
		return len(counts) == total
	})
	if code, _ := a.Stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	counts, order := lineCounts(t, out)
	for i := 0; i < total; i++ {
		if counts[i] < 1 {
			t.Fatalf("line %d lost", i)
		}
	}
	// The output is ascending runs: each restart continues at the committed line. A restart
	// shows as a step back to exactly that line (or no step, when the jsonl sink's repair
	// removed the unacknowledged tail up to it); a step forward would be a gap.
	next := 0
	for i := 1; i < len(order); i++ {
		if order[i] == order[i-1]+1 {
			continue
		}
		if order[i] > order[i-1] {
			t.Fatalf("gap after line %d: next is %d", order[i-1], order[i])
		}
		for next < len(commits) && commits[next] != order[i] {
			next++
		}
		if next == len(commits) {
			t.Fatalf("a restart began at line %d, which was never the committed checkpoint (%v)", order[i], commits)
		}
		next++
	}
	t.Logf("%d lines written for %d distinct: %d duplicates over 3 kills, all after a committed checkpoint",
		len(order), total, len(order)-total)
}

// A processor killed while the agent holds large batches for its replay (batches whose memory
// the agent reuses once they are let go) is restored and replayed from them: every line
// arrives exactly once. The first kill comes while the pipeline is idle with every batch since
// the start held (checkpoints are an hour apart, and the input stays under the hold bound), so
// the rebuild must replay them; the second comes mid-stream, where the hold bound snapshots,
// commits at most once a second and lets go of batches as it goes.
func TestKilledProcessorReplaysLargeBatches(t *testing.T) {
	bins := agenttest.Build(t, "file", "detect", "jsonl")
	a := agenttest.New(t, bins, `
agent {
  data_dir            = "DIR/data"
  checkpoint_interval = "1h"
}
source "file" "in" {
  paths = ["DIR/in/*.log"]
}
processor "override" "flags" {}
sink "jsonl" "out" {
  path = "DIR/out.jsonl"
}
pipeline "p" {
  from    = [source.file.in]
  through = [processor.override.flags]
  to      = [sink.jsonl.out]
}
`)
	if err := os.MkdirAll(a.Path("in"), 0o755); err != nil {
		t.Fatal(err)
	}
	// held is under the stage's hold bound (runtime.DefaultReplayHoldBytes, 4 MiB): 20,000
	// lines of 32 bytes with their per-event overhead take about 1.1 MB.
	const held, total = 20000, 300000
	input := a.Path("in", "app.log")
	appendLines(t, input, 0, held)
	out := a.Path("out.jsonl")
	a.Start()
	agenttest.WaitFor(t, "the held lines", 60*time.Second, func() bool { return agenttest.CountLines(out) >= held })
	killPlugin(t, a, "tda-plugin-detect")
	appendLines(t, input, held, total)
	agenttest.WaitFor(t, "180000 lines", 60*time.Second, func() bool { return agenttest.CountLines(out) >= 180000 })
	killPlugin(t, a, "tda-plugin-detect")
	agenttest.WaitFor(t, "every line", 120*time.Second, func() bool { return agenttest.CountLines(out) >= total })
	time.Sleep(300 * time.Millisecond)
	if code, _ := a.Stop(); code != 0 {
		t.Fatalf("exit %d\n%s", code, a.Logs())
	}
	counts, _ := lineCounts(t, out)
	for i := 0; i < total; i++ {
		if counts[i] != 1 {
			t.Fatalf("line %d delivered %d times\n%s", i, counts[i], a.Logs())
		}
	}
	logs := a.Logs()
	for _, failure := range []string{"replaying a batch into the restarted processor failed", "restoring the processor's state failed"} {
		if strings.Contains(logs, failure) {
			t.Fatalf("the rebuild failed:\n%s", logs)
		}
	}
	replayed := rebuildReplays(logs)
	if len(replayed) < 2 || replayed[0] == 0 {
		t.Fatalf("rebuilds replayed %v batches, want two rebuilds or more, the first replaying the held batches:\n%s", replayed, logs)
	}
}

// rebuildReplays returns the replayed_batches of each "processor state rebuilt" line of an
// agent's log, in order.
func rebuildReplays(logs string) []int {
	var out []int
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, "processor state rebuilt") {
			continue
		}
		_, rest, ok := strings.Cut(line, "replayed_batches=")
		n := -1
		if ok {
			fmt.Sscanf(rest, "%d", &n)
		}
		out = append(out, n)
	}
	return out
}

// A sink plugin killed while idle shows in `tda state` at once, with a reason, before any
// data arrives; the next line restarts it and the state is normal again.
func TestKilledIdleSinkPluginShowsInTheStateAtOnce(t *testing.T) {
	bins := agenttest.Build(t, "file", "jsonl")
	a := agenttest.New(t, bins, `
agent { data_dir = "DIR/data" }
source "file" "in" {
  paths = ["DIR/in/*.log"]
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
	input := a.Path("in", "app.log")
	appendLines(t, input, 0, 10)
	a.Start()
	out := a.Path("out.jsonl")
	agenttest.WaitFor(t, "the first lines", 30*time.Second, func() bool { return agenttest.CountLines(out) == 10 })
	state := func() string {
		// tda state exits 2 when the state is not normal.
		code, stdout, stderr := agenttest.RunCLI(t, bins, a.Dir, "state", "-json", "-config", a.Config)
		if code != 0 && code != 2 {
			t.Fatalf("tda state: exit %d: %s", code, stderr)
		}
		return stdout
	}
	var seen string
	defer func() {
		if t.Failed() {
			t.Logf("last state:\n%s\nlogs:\n%s", seen, a.Logs())
		}
	}()
	// The lines in the file are not the end of the call that wrote them: the plugin answers
	// the Write after writing. Killed before its answer, the sink is not idle, and the agent
	// restarts it at once to retry the batch. The sink is idle once the state counts nothing
	// queued for it: the agent dequeues a batch when the sink has accepted it.
	agenttest.WaitFor(t, "the sink to accept the first lines", 30*time.Second, func() bool {
		seen = state()
		var st struct {
			Components []struct {
				Address string `json:"address"`
				Queued  int    `json:"queued"`
			} `json:"components"`
		}
		if err := json.Unmarshal([]byte(seen), &st); err != nil {
			t.Fatalf("tda state -json: %v\n%s", err, seen)
		}
		for _, c := range st.Components {
			if c.Address == "sink.jsonl.out" {
				return c.Queued == 0
			}
		}
		return false
	})
	killPlugin(t, a, "tda-plugin-jsonl")
	agenttest.WaitFor(t, "the exit in the state", 10*time.Second, func() bool {
		seen = state()
		return strings.Contains(seen, `"status": "degraded"`) && strings.Contains(seen, "sink.jsonl.out") && strings.Contains(seen, "exited")
	})
	appendLines(t, input, 10, 20)
	agenttest.WaitFor(t, "the lines after the restart", 90*time.Second, func() bool { return agenttest.CountLines(out) == 20 })
	var last string
	deadline := time.Now().Add(10 * time.Second)
	for last = state(); !strings.Contains(last, `"status": "normal"`); last = state() {
		if time.Now().After(deadline) {
			t.Fatalf("the state is still degraded after the restart:\n%s", last)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := a.Stop(); code != 0 {
		t.Fatalf("exit %d\n%s", code, a.Logs())
	}
}
