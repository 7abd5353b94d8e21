package cli_test

import (
	"encoding/json"
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
	if code == 0 || !strings.Contains(errOut, "Error: Plugin does not match its pin") ||
		!strings.Contains(errOut, "agent.hcl:3,27-93") || !strings.Contains(errOut, "nothing of it was run") {
		t.Fatalf("a wrong pin should refuse to start (exit %d):\n%s", code, errOut)
	}
}

// tda plugins -config names the binary behind every block in use; -plugin-dir adds a
// directory to the default one; an executable not named tda-plugin-* is named as ignored, in
// tda plugins and as a validate warning.
func TestPluginsListsWhatAConfigUses(t *testing.T) {
	bins := agenttest.Build(t, "file", "jsonl")
	extra := t.TempDir()
	agenttest.BuildPlugin(t, bins, "examples/plugin-hello", "./cmd/tda-plugin-hello", "hello")
	hello, err := os.ReadFile(filepath.Join(bins.PluginDir, "tda-plugin-hello"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(extra, "tda-plugin-hello"), hello, 0o755); err != nil {
		t.Fatal(err)
	}
	// The default directory of this test is its own: the stray file must not reach the
	// plugin directory the package's other tests share.
	base := t.TempDir()
	for _, name := range []string{"tda-plugin-file", "tda-plugin-jsonl"} {
		b, err := os.ReadFile(filepath.Join(bins.PluginDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(base, name), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(base, "hello"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tda.hcl")
	src := `agent { plugin_dir = "` + base + `" }
source "file" "in" { paths = ["` + dir + `/in.log"] }
sink "jsonl" "out" { path = "` + dir + `/out.jsonl" }
pipeline "p" {
  from = [source.file.in]
  to   = [sink.jsonl.out]
}
`
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := agenttest.RunCLI(t, bins, dir, "plugins", "-config", cfg, "-plugin-dir", extra)
	for _, want := range []string{
		"Plugins in " + base, "Plugins in " + extra, "processor redact",
		"hello\n  ignored:  not named tda-plugin-*",
		"Used by " + cfg, "source.file.in  " + filepath.Join(base, "tda-plugin-file"),
		"sink.jsonl.out  " + filepath.Join(base, "tda-plugin-jsonl"),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in tda plugins:\n%s%s", want, out, errOut)
		}
	}
	if code != 0 {
		t.Errorf("exit %d", code)
	}
	code, out, errOut = agenttest.RunCLI(t, bins, dir, "plugins", "-config", cfg, "-plugin-dir", extra, "-json")
	var listing struct {
		Dirs []struct {
			Dir     string
			Plugins []struct{ Name string }
			Ignored []string
		}
		Used []struct {
			Address, Binary string
			Pinned          bool
		}
	}
	if err := json.Unmarshal([]byte(out), &listing); err != nil || code != 0 {
		t.Fatalf("plugins -json: %d %v\n%s%s", code, err, out, errOut)
	}
	if len(listing.Dirs) != 2 || listing.Dirs[1].Dir != extra || len(listing.Dirs[1].Plugins) != 1 ||
		listing.Dirs[1].Plugins[0].Name != "hello" || len(listing.Dirs[0].Ignored) != 1 || len(listing.Used) != 2 ||
		listing.Used[1].Address != "sink.jsonl.out" || listing.Used[1].Binary != filepath.Join(base, "tda-plugin-jsonl") {
		t.Fatalf("plugins -json: %+v", listing)
	}
	_, _, errOut = agenttest.RunCLI(t, bins, dir, "validate", "-config", cfg)
	if !strings.Contains(errOut, "Executable ignored in plugin_dir") {
		t.Errorf("validate does not warn about the stray executable:\n%s", errOut)
	}
}
