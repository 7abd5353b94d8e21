package loader

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMissingPluginDir: a config without blocks for plugins loads without a plugin
// directory (an operator's command reading the agent block); one with such a block says the
// plugins cannot be found.
func TestMissingPluginDir(t *testing.T) {
	tests := []struct {
		name, src string
		want      string // "" for no error
	}{
		{"the agent block alone", `agent { data_dir = "./data" }`, ""},
		{"a sink", `agent { data_dir = "./data" }
sink "jsonl" "audit" { path = "./a.jsonl" }`, "Cannot load plugins"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "tda.hcl")
			if err := os.WriteFile(path, []byte(tc.src), 0o600); err != nil {
				t.Fatal(err)
			}
			l, diags := Load(context.Background(), path, Options{PluginDir: filepath.Join(dir, "no-such-dir")})
			if tc.want == "" {
				if diags.HasErrors() || l.Registry == nil {
					t.Fatalf("diagnostics %v, registry %v", diags, l.Registry)
				}
				return
			}
			var summaries []string
			for _, d := range diags {
				summaries = append(summaries, d.Summary)
			}
			if !diags.HasErrors() || !strings.Contains(strings.Join(summaries, "; "), tc.want) {
				t.Fatalf("diagnostics %q, want %q", summaries, tc.want)
			}
		})
	}
}
