package runtime_test

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/agenttest"
	"github.com/tda-dev/tda/sdk"
)

// By default the plugins built into tda run inside the agent's own process: no plugin
// process starts, except for a block with isolate = true. Lines pass through a processor
// inside the agent (whose output is its input, in the memory the source reuses once handed
// back) and reach the sink whole, each once, while the source reads on.
func TestBundledPluginsRunInsideTheAgent(t *testing.T) {
	bins := agenttest.Build(t).BuiltinOnly(t)
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
sink "logfile" "raw" {
  dir     = "DIR/raw"
  isolate = true
}
pipeline "p" {
  from    = [source.file.in]
  through = [processor.override.flags]
  to      = [sink.jsonl.out, sink.logfile.raw]
}
`)
	if err := os.MkdirAll(a.Path("in"), 0o755); err != nil {
		t.Fatal(err)
	}
	input := a.Path("in", "app.log")
	appendLines(t, input, 0, 1000)
	a.Start()
	pids := a.PluginPids()
	if len(pids) != 1 {
		t.Fatalf("want one plugin process (the isolated sink's), got %v", pids)
	}
	for _, addr := range []string{"source.file.in", "processor.override.flags", "sink.jsonl.out"} {
		if pid := pidOf(t, a, addr); pid != 0 {
			t.Fatalf("%s runs in process %d, want inside the agent", addr, pid)
		}
	}
	if pid := pidOf(t, a, "sink.logfile.raw"); pid == 0 {
		t.Fatal("the isolated sink has no process of its own")
	}
	// tda plugins -config says where each block runs.
	code, stdout, stderr := agenttest.RunCLI(t, bins, a.Dir, "plugins", "-config", a.Config, "-json")
	if code != 0 {
		t.Fatalf("tda plugins exited %d: %s", code, stderr)
	}
	var listed struct {
		Used []struct {
			Address string `json:"address"`
			InAgent bool   `json:"in_agent"`
			Shared  bool   `json:"shared"`
		} `json:"used"`
	}
	if err := json.Unmarshal([]byte(stdout), &listed); err != nil {
		t.Fatal(err)
	}
	where := map[string]bool{}
	for _, u := range listed.Used {
		where[u.Address] = u.InAgent && !u.Shared
	}
	want := map[string]bool{"source.file.in": true, "processor.override.flags": true, "sink.jsonl.out": true, "sink.logfile.raw": false}
	if !reflect.DeepEqual(where, want) {
		t.Fatalf("tda plugins -config says inside the agent: %v, want %v", where, want)
	}

	const total = 200000
	for i := 1000; i < total; i += 20000 {
		appendLines(t, input, i, min(i+20000, total))
	}
	out := a.Path("out.jsonl")
	agenttest.WaitFor(t, "every line", 90*time.Second, func() bool { return agenttest.CountLines(out) >= total })
	if code, took := a.Stop(); code != 0 || took > 10*time.Second {
		t.Fatalf("stop: exit %d after %v\n%s", code, took, a.Logs())
	}
	seen := make([]bool, total)
	for _, e := range agenttest.ReadJSONL(t, out) {
		if e.Kind != sdk.KindLog {
			continue
		}
		var n int
		if _, err := fmt.Sscanf(string(e.Line), "line %08d", &n); err != nil || n < 0 || n >= total {
			t.Fatalf("unexpected line %q", e.Line)
		}
		if string(e.Line) != numbered(n) {
			t.Fatalf("line %d arrived as %q", n, e.Line)
		}
		if seen[n] {
			t.Fatalf("line %d delivered twice", n)
		}
		seen[n] = true
	}
	for n, ok := range seen {
		if !ok {
			t.Fatalf("line %d never arrived", n)
		}
	}
	if strings.Contains(a.Logs(), "panic") {
		t.Fatalf("the agent logged a panic:\n%s", a.Logs())
	}
}
