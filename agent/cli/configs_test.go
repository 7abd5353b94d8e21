package cli_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tda-dev/tda/agent/agenttest"
	"github.com/tda-dev/tda/agent/cli"
)

// bundledPlugins lists every plugin directory with a command.
func bundledPlugins(t *testing.T) []string {
	dirs, err := filepath.Glob(filepath.Join(agenttest.RepoRoot(), "plugins", "*", "cmd"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no bundled plugins found: %v", err)
	}
	var names []string
	for _, d := range dirs {
		names = append(names, filepath.Base(filepath.Dir(d)))
	}
	return names
}

// Every shipped config validates with the bundled plugins.
func TestShippedConfigsValidate(t *testing.T) {
	bins := agenttest.Build(t, bundledPlugins(t)...)
	configs, _ := filepath.Glob(filepath.Join(agenttest.RepoRoot(), "configs", "*.hcl"))
	if len(configs) == 0 {
		t.Fatal("no configs")
	}
	for _, path := range configs {
		t.Run(filepath.Base(path), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := cli.Main([]string{"validate", "-config", path, "-plugin-dir", bins.PluginDir}, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d:\n%s", code, stderr.String())
			}
		})
	}
}

// configs/agent.hcl carries the shipped detection blocks of configs/detect.hcl unchanged.
func TestDefaultConfigHasTheShippedRules(t *testing.T) {
	root := agenttest.RepoRoot()
	agent, err := os.ReadFile(filepath.Join(root, "configs", "agent.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	detect, err := os.ReadFile(filepath.Join(root, "configs", "detect.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := string(detect)[strings.Index(string(detect), `processor "override"`):]
	if !strings.Contains(string(agent), strings.TrimSpace(blocks)) {
		t.Fatal("configs/agent.hcl and configs/detect.hcl disagree on the detection blocks")
	}
}
