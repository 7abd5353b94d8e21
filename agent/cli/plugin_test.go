package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/agenttest"
	"github.com/tda-dev/tda/sdk/host"
)

// A third-party plugin built in its own module against the SDK alone runs in the agent like
// a bundled one, and is listed by tda plugins.
func TestThirdPartyPluginRunsInTheAgent(t *testing.T) {
	bins := agenttest.Build(t, "file", "jsonl")
	agenttest.BuildPlugin(t, bins, "examples/plugin-hello", "./cmd/tda-plugin-hello", "hello")
	code, out, errOut := agenttest.RunCLI(t, bins, t.TempDir(), "plugins", "-dir", bins.PluginDir)
	if code != 0 || !strings.Contains(out, "processor redact") || !strings.Contains(out, "sink      stats") {
		t.Fatalf("tda plugins: exit %d\n%s%s", code, out, errOut)
	}
	a := agenttest.New(t, bins, `
agent { data_dir = "DIR/data" }
source "file" "in" { paths = ["DIR/in.log"] }
processor "redact" "pii" {}
sink "jsonl" "out" { path = "DIR/out.jsonl" }
sink "stats" "count" {}
pipeline "p" {
  from    = [source.file.in]
  through = [processor.redact.pii]
  to      = [sink.jsonl.out, sink.stats.count]
}
`)
	if err := os.WriteFile(a.Path("in.log"), []byte("reset for alice@example.com\nok\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a.Start()
	agenttest.WaitFor(t, "output", 30*time.Second, func() bool { return agenttest.CountLines(a.Path("out.jsonl")) == 2 })
	if code, _ := a.Stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	events := agenttest.ReadJSONL(t, a.Path("out.jsonl"))
	if got := string(events[0].Line); got != "reset for [redacted]" {
		t.Fatalf("line %q was not redacted", got)
	}
	if !strings.Contains(a.Logs(), "tda.sink.stats.count") || !strings.Contains(a.Logs(), "events seen") {
		t.Fatalf("the plugin's log did not reach the agent's log under its instance name:\n%s", a.Logs())
	}
}

// A plugin pinned by checksum runs only when the binary matches the pin.
func TestPinnedPluginChecksum(t *testing.T) {
	bins := agenttest.Build(t, "file", "jsonl")
	sum, err := host.FileSHA256(filepath.Join(bins.PluginDir, "tda-plugin-jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	config := func(pin string) string {
		return `
agent { data_dir = "DIR/data" }
plugin "jsonl" { sha256 = "` + pin + `" }
source "file" "in" { paths = ["DIR/in.log"] }
sink "jsonl" "out" { path = "DIR/out.jsonl" }
pipeline "p" {
  from = [source.file.in]
  to   = [sink.jsonl.out]
}
`
	}
	a := agenttest.New(t, bins, config(sum))
	if err := os.WriteFile(a.Path("in.log"), []byte("one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a.Start()
	agenttest.WaitFor(t, "output", 30*time.Second, func() bool { return agenttest.CountLines(a.Path("out.jsonl")) == 1 })
	a.Stop()

	wrong := strings.Repeat("0", 64)
	a.SetConfig(config(wrong))
	code, _, errOut := agenttest.RunCLI(t, bins, a.Dir, "run", "-config", a.Config, "-plugin-dir", bins.PluginDir)
	if code == 0 || !strings.Contains(errOut, "does not match its sha256 pin") {
		t.Fatalf("a wrong pin should refuse to start (exit %d):\n%s", code, errOut)
	}
}
