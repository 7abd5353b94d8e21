package loader_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tda-dev/tda/agent/agenttest"
)

func TestMain(m *testing.M) { agenttest.Main(m) }

// buildEnvPlugin builds agent/pluginhost/testdata/envplugin as variant into out: a plugin
// that notes every start of it in <its path>.ran.
func buildEnvPlugin(t *testing.T, variant, out string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-ldflags", "-X main.variant="+variant, "-o", out,
		"./agent/pluginhost/testdata/envplugin")
	cmd.Dir = agenttest.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the test plugin: %v\n%s", err, b)
	}
}

// A pinned plugin replaced by another binary never runs under tda validate, tda run or tda
// plugins: the pin is checked first, and its failure is a config error at the pin, with no
// fallback to a binary of the same name.
func TestReplacedPinnedPluginNeverRuns(t *testing.T) {
	bins := agenttest.Build(t, "file")
	build := t.TempDir()
	genuine, impostor := filepath.Join(build, "genuine"), filepath.Join(build, "impostor")
	buildEnvPlugin(t, "genuine", genuine)
	buildEnvPlugin(t, "impostor", impostor)
	b, err := os.ReadFile(genuine)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	pin := hex.EncodeToString(sum[:])

	cases := []struct {
		name, block string
		want        []string // in the diagnostics of validate and run
	}{
		{"wrong pin", `plugin "notify" {
  sha256 = "` + pin + `"
}`, []string{"Error: Plugin does not match its pin", "tda.hcl:7,12-78", "nothing of it was run"}},
		{"pinned path missing", `plugin "notify" {
  path   = "MISSING"
  sha256 = "` + pin + `"
}`, []string{"Error: Pinned plugin not found", "tda.hcl:7,12-", "no other binary is used"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			work := t.TempDir()
			plugins := filepath.Join(work, "plugins")
			if err := os.Mkdir(plugins, 0o755); err != nil {
				t.Fatal(err)
			}
			copyExecutable(t, filepath.Join(bins.PluginDir, "tda-plugin-file"), filepath.Join(plugins, "tda-plugin-file"))
			installed := filepath.Join(plugins, "tda-plugin-notify")
			copyExecutable(t, impostor, installed)
			missing := filepath.Join(work, "elsewhere", "tda-plugin-notify")
			logs := filepath.Join(work, "logs")
			if err := os.Mkdir(logs, 0o755); err != nil {
				t.Fatal(err)
			}
			cfg := `agent {
  data_dir   = "` + filepath.Join(work, "data") + `"
  plugin_dir = "` + plugins + `"
}

` + strings.ReplaceAll(c.block, "MISSING", missing) + `
source "file" "logs" { paths = ["` + filepath.Join(logs, "*.log") + `"] }
sink "notify" "n" {}
pipeline "p" {
  from = [source.file.logs]
  to   = [sink.notify.n]
}
`
			path := filepath.Join(work, "tda.hcl")
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{
				{"validate", "-config", path},
				{"run", "-config", path},
				{"plugins", "-config", path},
			} {
				code, stdout, stderr := agenttest.RunCLI(t, bins, work, args...)
				if code == 0 {
					t.Errorf("tda %s exited 0:\n%s%s", args[0], stdout, stderr)
				}
				for _, w := range c.want {
					if args[0] != "plugins" && !strings.Contains(stderr, w) {
						t.Errorf("tda %s does not say %q:\n%s", args[0], w, stderr)
					}
				}
				if strings.Contains(stderr, "build them with `make build`") {
					t.Errorf("tda %s sends the operator to rebuild the plugins:\n%s", args[0], stderr)
				}
				if _, err := os.Stat(installed + ".ran"); err == nil {
					ran, _ := os.ReadFile(installed + ".ran")
					t.Fatalf("tda %s ran the replaced plugin:\n%s", args[0], ran)
				}
			}
		})
	}
}

func copyExecutable(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// Under tda validate, which describes every plugin and starts those in use to check their
// blocks, a plugin sees none of the agent's tokens and passwords; what its block passes, it
// sees.
func TestPluginSeesNoAgentSecrets(t *testing.T) {
	bins := agenttest.Build(t, "file")
	work := t.TempDir()
	plugins := filepath.Join(work, "plugins")
	if err := os.Mkdir(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	copyExecutable(t, filepath.Join(bins.PluginDir, "tda-plugin-file"), filepath.Join(plugins, "tda-plugin-file"))
	installed := filepath.Join(plugins, "tda-plugin-notify")
	buildEnvPlugin(t, "genuine", installed)
	t.Setenv("TDA_TOKEN_OPERATOR", "operator-token-value")
	t.Setenv("TDA_PG_PASSWORD", "pg-password-value")
	t.Setenv("TDA_NOTIFY_KEY", "key-for-notify")
	cfg := `agent {
  data_dir   = "` + filepath.Join(work, "data") + `"
  plugin_dir = "` + plugins + `"
}
plugin "notify" {
  env = { NOTIFY_KEY = env("TDA_NOTIFY_KEY") }
}
source "file" "logs" { paths = ["` + filepath.Join(work, "*.log") + `"] }
sink "notify" "n" {}
pipeline "p" {
  from = [source.file.logs]
  to   = [sink.notify.n]
}
`
	path := filepath.Join(work, "tda.hcl")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := agenttest.RunCLI(t, bins, work, "validate", "-config", path)
	if code != 0 {
		t.Fatalf("validate: exit %d\n%s%s", code, stdout, stderr)
	}
	ran, err := os.ReadFile(installed + ".ran")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(ran)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"args":["describe"]`) || !strings.Contains(lines[1], `"args":[]`) {
		t.Fatalf("the plugin should have been described and started once each:\n%s", ran)
	}
	for _, secret := range []string{"TDA_TOKEN_", "operator-token-value", "pg-password-value", "TDA_NOTIFY_KEY"} {
		if strings.Contains(string(ran), secret) {
			t.Errorf("the plugin sees %s:\n%s", secret, ran)
		}
	}
	if strings.Count(string(ran), "NOTIFY_KEY=key-for-notify") != 2 {
		t.Errorf("the plugin block's env did not reach both runs:\n%s", ran)
	}
}
