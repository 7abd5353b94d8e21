package control

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tda-dev/tda/agent/agenttest"
	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/loader"
)

func TestMain(m *testing.M) { agenttest.Main(m) }

// loadWithPlugins loads src with the plugins its blocks need, as tda run does: the audit
// trail and the maintenance windows come from them, and the snapshot plugin built for the
// test serves the snapshot blocks' actions in a process of its own.
func loadWithPlugins(t *testing.T, src string) (*config.Config, string) {
	t.Helper()
	bins := agenttest.Build(t, "detect", "file", "jsonl", "console", "snapshot")
	dir := t.TempDir()
	src = strings.ReplaceAll(src, "DATA", filepath.Join(dir, "data"))
	src = strings.ReplaceAll(src, "ALERTS", filepath.Join(dir, "alerts.jsonl"))
	if err := os.WriteFile(filepath.Join(dir, "test.hcl"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	// The config is read as "test.hcl", as the tests' messages name it.
	t.Chdir(dir)
	l, diags := loader.Load(context.Background(), "test.hcl", loader.Options{PluginDir: bins.PluginDir})
	if diags.HasErrors() {
		t.Fatalf("config: %v", diags)
	}
	t.Cleanup(func() { _ = l.Registry.Close() })
	return l.Config, dir
}
