package cli_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tda-dev/tda/agent/agenttest"
	"github.com/tda-dev/tda/agent/cli"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestMain installs the plugins the tests' configs use in the plugin directory: the commands
// run here without the plugins built into tda, and load a config with its plugins as an
// installed tda does (the audit trail and the maintenance windows come from them).
func TestMain(m *testing.M) {
	agenttest.MainWithPlugins(m, "file", "detect", "jsonl", "console", "snapshot")
}

// TestValidateGolden runs `tda validate` on every config under testdata/validate and compares
// its exit code and output with the .golden file next to it.
func TestValidateGolden(t *testing.T) {
	bins := agenttest.Build(t, "file", "detect", "jsonl", "console")
	configs, _ := filepath.Glob("testdata/validate/*.hcl")
	if len(configs) == 0 {
		t.Fatal("no test configs")
	}
	for _, path := range configs {
		name := strings.TrimSuffix(filepath.Base(path), ".hcl")
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := cli.Main([]string{"validate", "-config", path, "-plugin-dir", bins.PluginDir}, &stdout, &stderr)
			got := "exit " + itoa(code) + "\n--- stdout\n" + stdout.String() + "--- stderr\n" + stderr.String()
			got = strings.ReplaceAll(got, bins.PluginDir, "PLUGIN_DIR")
			golden := strings.TrimSuffix(path, ".hcl") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			// The plugin directory is a temporary path whose length varies from run to run,
			// and diagnostics are wrapped to the terminal's width: where a detail that names
			// it breaks its lines varies too. Everything else must match exactly.
			if got != string(want) && !(strings.Contains(got, "PLUGIN_DIR") && oneSpaced(got) == oneSpaced(string(want))) {
				t.Errorf("output differs from %s:\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
}

// oneSpaced collapses every run of white space in s to one space.
func oneSpaced(s string) string { return strings.Join(strings.Fields(s), " ") }

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	s := ""
	for n > 0 {
		s = string(rune('0'+n%10)) + s
		n /= 10
	}
	return s
}

func TestValidateMissingConfigFile(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := cli.Main([]string{"validate", "-config", "/nonexistent/tda.hcl"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "The config file /nonexistent/tda.hcl does not exist") ||
		strings.Contains(stderr.String(), "Pass the config file with -config") {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
}

// A plugin block whose label is not the plugin's own name: the warning points at the block and
// says which name to write.
func TestValidatePluginBlockNameMismatch(t *testing.T) {
	bins := agenttest.Build(t, "file", "jsonl")
	cfg := filepath.Join(t.TempDir(), "tda.hcl")
	src := `plugin "jsonnl" { path = "` + filepath.Join(bins.PluginDir, "tda-plugin-jsonl") + `" }
source "file" "hosts" { paths = ["/var/log/app/*.log"] }
sink "jsonl" "audit" { path = "./alerts.jsonl" }
pipeline "p" {
  from = [source.file.hosts]
  to   = [sink.jsonl.audit]
}
`
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cli.Main([]string{"validate", "-config", cfg, "-plugin-dir", bins.PluginDir}, &stdout, &stderr)
	got := oneSpaced(stderr.String())
	for _, want := range []string{"Warning: Unusable plugin", "at " + cfg + ":1,1-", `write plugin "jsonl"`,
		`tda-plugin-jsonl offers a sink of type "jsonl" but cannot be used`} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, stderr.String())
		}
	}
	if strings.Contains(got, "sinks: [") || strings.Contains(got, "is plugin [") {
		t.Errorf("a Go slice in the output:\n%s", stderr.String())
	}
}
