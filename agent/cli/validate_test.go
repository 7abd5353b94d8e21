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

func TestMain(m *testing.M) { agenttest.Main(m) }

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
