package pluginhost_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/tda-dev/tda/agent/loader"
	"github.com/tda-dev/tda/agent/pluginhost"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
)

var (
	envOnce                 sync.Once
	envDir                  string
	envGenuine, envImpostor string
	envErr                  error
)

// envPlugins builds testdata/envplugin twice, as the genuine plugin and as an impostor
// with another sha256, once per test process.
func envPlugins(t *testing.T) (genuine, impostor string) {
	t.Helper()
	envOnce.Do(func() {
		for _, dir := range []string{filepath.Join("..", "..", "sdk"), filepath.Join("testdata", "envplugin")} {
			_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
				if err == nil && strings.HasSuffix(path, ".go") {
					_, _ = os.ReadFile(path)
				}
				return nil
			})
		}
		if envDir, envErr = os.MkdirTemp("", "tda-envplugin"); envErr != nil {
			return
		}
		envGenuine, envImpostor = filepath.Join(envDir, "genuine"), filepath.Join(envDir, "impostor")
		for out, variant := range map[string]string{envGenuine: "genuine", envImpostor: "impostor"} {
			cmd := exec.Command("go", "build", "-ldflags", "-X main.variant="+variant, "-o", out, "./testdata/envplugin")
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if b, err := cmd.CombinedOutput(); err != nil {
				envErr = fmt.Errorf("build the test plugin: %v\n%s", err, b)
				return
			}
		}
	})
	if envErr != nil {
		t.Fatal(envErr)
	}
	t.Cleanup(func() {})
	return envGenuine, envImpostor
}

func sumOf(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// run is a line of an envplugin's .ran file.
type run struct {
	Variant string   `json:"variant"`
	Args    []string `json:"args"`
	Env     []string `json:"env"`
}

// runsOf returns what ran as the binary at path.
func runsOf(t *testing.T, path string) []run {
	t.Helper()
	f, err := os.Open(path + ".ran")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []run
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r run
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func impostorRan(runs []run) bool {
	for _, r := range runs {
		if r.Variant != "genuine" {
			return true
		}
	}
	return false
}

// A pinned binary is hashed before anything of it runs, runs as the bytes that were hashed,
// and never gives way to an unpinned binary of the same name.
func TestPinnedBinaryIsCheckedBeforeItRuns(t *testing.T) {
	genuine, impostor := envPlugins(t)
	pin := sumOf(t, genuine)
	ctx := context.Background()

	t.Run("replaced before discovery", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "tda-plugin-notify")
		copyFile(t, impostor, path)
		reg, err := pluginhost.Discover(ctx, dir, []pluginhost.Pin{{Name: "notify", SHA256: pin}})
		if err != nil {
			t.Fatal(err)
		}
		defer reg.Close()
		var pe *host.PinError
		if len(reg.Binaries) != 1 || !errors.As(reg.Binaries[0].Err, &pe) || pe.Failure != host.PinMismatch ||
			pe.Got != sumOf(t, impostor) {
			t.Fatalf("binaries %+v", reg.Binaries[0])
		}
		if runs := runsOf(t, path); len(runs) != 0 {
			t.Fatalf("the replaced binary ran: %+v", runs)
		}
		if _, _, ok := reg.Lookup(sdk.KindSink, "notify"); ok {
			t.Fatal("the replaced binary's component is offered")
		}
	})

	t.Run("replaced after discovery", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "tda-plugin-notify")
		copyFile(t, genuine, path)
		reg, err := pluginhost.Discover(ctx, dir, []pluginhost.Pin{{Name: "notify", SHA256: pin}})
		if err != nil {
			t.Fatal(err)
		}
		defer reg.Close()
		if reg.Binaries[0].Err != nil {
			t.Fatal(reg.Binaries[0].Err)
		}
		// Swapped between the check and the launch, by rename and then in place.
		tmp := filepath.Join(dir, "new")
		copyFile(t, impostor, tmp)
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 2; i++ {
			p, err := reg.Launch(sdk.KindSink, "notify", nil, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			p.Kill()
			copyFile(t, impostor, path)
		}
		runs := runsOf(t, path)
		if len(runs) != 3 || impostorRan(runs) {
			t.Fatalf("runs %+v", runs)
		}
		if runs[0].Args[0] != "describe" || len(runs[1].Args) != 0 {
			t.Fatalf("runs %+v", runs)
		}
	})

	t.Run("pinned path missing, same name in plugin_dir", func(t *testing.T) {
		dir := t.TempDir()
		inDir := filepath.Join(dir, "tda-plugin-notify")
		copyFile(t, impostor, inDir)
		missing := filepath.Join(t.TempDir(), "tda-plugin-notify")
		reg, err := pluginhost.Discover(ctx, dir, []pluginhost.Pin{{Name: "notify", Path: missing, SHA256: pin}})
		if err != nil {
			t.Fatal(err)
		}
		defer reg.Close()
		var pe *host.PinError
		if len(reg.Binaries) != 1 || reg.Binaries[0].Path != missing || !errors.As(reg.Binaries[0].Err, &pe) ||
			pe.Failure != host.PinMissing {
			t.Fatalf("binaries %+v", reg.Binaries)
		}
		if runs := runsOf(t, inDir); len(runs) != 0 {
			t.Fatalf("the unpinned binary of the same name ran: %+v", runs)
		}
		if _, _, ok := reg.Lookup(sdk.KindSink, "notify"); ok {
			t.Fatal("a component is offered in place of the pinned one")
		}
	})

	t.Run("pinned path spelled otherwise than plugin_dir", func(t *testing.T) {
		dir := t.TempDir()
		inDir := filepath.Join(dir, "tda-plugin-other")
		copyFile(t, impostor, inDir)
		link := filepath.Join(t.TempDir(), "link")
		if err := os.Symlink(inDir, link); err != nil {
			t.Fatal(err)
		}
		for _, spelled := range []string{dir + "/./tda-plugin-other", link} {
			reg, err := pluginhost.Discover(ctx, dir, []pluginhost.Pin{{Name: "notify", Path: spelled, SHA256: pin}})
			if err != nil {
				t.Fatal(err)
			}
			reg.Close()
			var pe *host.PinError
			if len(reg.Binaries) != 1 || !errors.As(reg.Binaries[0].Err, &pe) || pe.Failure != host.PinMismatch {
				t.Fatalf("%s: binaries %+v", spelled, reg.Binaries)
			}
			if runs := runsOf(t, inDir); len(runs) != 0 {
				t.Fatalf("%s: the pinned file ran unchecked as a plugin_dir binary: %+v", spelled, runs)
			}
		}
	})

	t.Run("a path without a pin shadows plugin_dir too", func(t *testing.T) {
		dir := t.TempDir()
		inDir := filepath.Join(dir, "tda-plugin-notify")
		copyFile(t, impostor, inDir)
		named := filepath.Join(t.TempDir(), "tda-plugin-notify")
		copyFile(t, genuine, named)
		reg, err := pluginhost.Discover(ctx, dir, []pluginhost.Pin{{Name: "notify", Path: named}})
		if err != nil {
			t.Fatal(err)
		}
		defer reg.Close()
		b, _, ok := reg.Lookup(sdk.KindSink, "notify")
		if !ok || b.Path != named || len(runsOf(t, inDir)) != 0 {
			t.Fatalf("binaries %+v", reg.Binaries)
		}
	})
}

// Through the loader, which validate, run and plugins share: every pin failure is an error
// at the attribute that names the binary, with what to do.
func TestPinFailuresAreConfigErrors(t *testing.T) {
	genuine, impostor := envPlugins(t)
	pin := sumOf(t, genuine)
	cases := []struct {
		name      string
		install   string // what is installed as plugin_dir/tda-plugin-notify
		block     string
		summary   string
		line, col int
		detail    string
	}{
		{"wrong pin", impostor, `plugin "notify" {
  sha256 = "` + pin + `"
}`, "Plugin does not match its pin", 4, 12, "nothing of it was run"},
		{"missing path", impostor, `plugin "notify" {
  path   = "MISSING"
  sha256 = "` + pin + `"
}`, "Pinned plugin not found", 4, 12, "no other binary is used"},
		{"unpinned path missing", impostor, `plugin "notify" {
  path = "MISSING"
}`, "Unusable plugin", 4, 10, "no other is used in its place"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			installed := filepath.Join(dir, "tda-plugin-notify")
			copyFile(t, c.install, installed)
			missing := filepath.Join(t.TempDir(), "tda-plugin-notify")
			cfg := filepath.Join(t.TempDir(), "tda.hcl")
			src := "agent { data_dir = \"" + filepath.Join(t.TempDir(), "data") + "\" }\n\n" +
				strings.ReplaceAll(c.block, "MISSING", missing) + `
sink "notify" "n" {}
`
			if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			loaded, diags := loader.Load(context.Background(), cfg, loader.Options{PluginDir: dir})
			if loaded.Registry != nil {
				defer loaded.Registry.Close()
			}
			var first *hcl.Diagnostic
			for _, d := range diags {
				if d.Severity == hcl.DiagError {
					first = d
					break
				}
			}
			if first == nil || first.Summary != c.summary || first.Subject == nil || first.Subject.Filename != cfg ||
				first.Subject.Start.Line != c.line || first.Subject.Start.Column != c.col ||
				!strings.Contains(first.Detail, c.detail) {
				t.Fatalf("diagnostics: %v", diags)
			}
			if impostorRan(runsOf(t, installed)) {
				t.Fatal("the impostor ran")
			}
		})
	}
}

// A plugin process, describe included, sees the base environment and what its block gives
// it: never the agent's tokens and passwords.
func TestPluginEnvironment(t *testing.T) {
	genuine, _ := envPlugins(t)
	t.Setenv("TDA_TOKEN_OPERATOR", "secret-operator-token")
	t.Setenv("TDA_PG_PASSWORD", "secret-pg-password")
	t.Setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/secret")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("LANG", "C.UTF-8")
	dir := t.TempDir()
	for _, name := range []string{"tda-plugin-plain", "tda-plugin-snapshot"} {
		copyFile(t, genuine, filepath.Join(dir, name))
	}
	reg, err := pluginhost.Discover(context.Background(), dir, []pluginhost.Pin{{Name: "snapshot",
		SHA256: sumOf(t, genuine), MemoryLimit: "64MiB", InheritEnv: []string{"AWS_*"},
		Env: []string{"PGPASSWORD=from-the-config"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	for _, name := range []string{"plain", "snapshot"} {
		p, err := reg.Launch(sdk.KindSink, name, nil, []string{"TDA_PLUGIN_LOG_LEVEL=debug"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		p.Kill()
	}
	want := map[string][]string{
		"plain":    {"LANG=C.UTF-8", "PATH="},
		"snapshot": {"LANG=C.UTF-8", "AWS_SECRET_ACCESS_KEY=aws-secret", "AWS_REGION=eu-west-1", "PGPASSWORD=from-the-config", "GOMEMLIMIT=64MiB"},
	}
	for name, wanted := range want {
		runs := runsOf(t, filepath.Join(dir, "tda-plugin-"+name))
		if len(runs) != 2 {
			t.Fatalf("%s ran %d times", name, len(runs))
		}
		for _, r := range runs {
			env := strings.Join(r.Env, "\n")
			for _, secret := range []string{"TDA_TOKEN_", "secret-operator-token", "secret-pg-password", "hooks.slack.com"} {
				if strings.Contains(env, secret) {
					t.Errorf("%s %v sees %s:\n%s", name, r.Args, secret, env)
				}
			}
			for _, w := range wanted {
				if !strings.Contains("\n"+env, "\n"+w) {
					t.Errorf("%s %v lacks %s:\n%s", name, r.Args, w, env)
				}
			}
			if name == "plain" && strings.Contains(env, "AWS_") {
				t.Errorf("a plugin without inherit_env sees AWS_*:\n%s", env)
			}
			// A launched process (not describe) also gets the host's switches and go-plugin's variables.
			if len(r.Args) == 0 && (!strings.Contains(env, "TDA_PLUGIN_LOG_LEVEL=debug") ||
				!strings.Contains(env, "PLUGIN_PROTOCOL_VERSIONS=") || !strings.Contains(env, "TDA_PLUGIN_MAGIC_COOKIE=")) {
				t.Errorf("%s lacks the launch variables:\n%s", name, env)
			}
		}
	}
}

// host.Launch given a pin and no checked copy checks the file itself, first.
func TestLaunchChecksItsPin(t *testing.T) {
	genuine, impostor := envPlugins(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "tda-plugin-notify")
	copyFile(t, impostor, path)
	_, err := host.Launch(host.LaunchConfig{Path: path, SHA256: sumOf(t, genuine)})
	var pe *host.PinError
	if !errors.As(err, &pe) || pe.Failure != host.PinMismatch {
		t.Fatalf("launch: %v", err)
	}
	if runs := runsOf(t, path); len(runs) != 0 {
		t.Fatalf("the impostor ran: %+v", runs)
	}
	copyFile(t, genuine, path)
	p, err := host.Launch(host.LaunchConfig{Path: path, SHA256: sumOf(t, genuine)})
	if err != nil {
		t.Fatal(err)
	}
	// The process is known by its pid (the runtime signals it) and named by its path.
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.Pid()))
	if p.Pid() <= 0 || err != nil || !strings.HasPrefix(string(cmdline), path+"\x00") {
		t.Errorf("pid %d, cmdline %q, %v", p.Pid(), cmdline, err)
	}
	p.Kill()
	if runs := runsOf(t, path); len(runs) != 1 || impostorRan(runs) {
		t.Fatalf("runs %+v", runs)
	}
}
