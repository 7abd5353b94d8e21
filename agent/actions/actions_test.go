package actions_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/actions"
	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/loader"
	"github.com/tda-dev/tda/agent/pluginhost"
	"github.com/tda-dev/tda/sdk"
)

var (
	buildOnce sync.Once
	pluginExe string
	buildErr  error
)

// actionPlugin builds testdata/actionplugin once per test binary.
func actionPlugin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tda-actionplugin")
		if err != nil {
			buildErr = err
			return
		}
		pluginExe = filepath.Join(dir, "actionplugin")
		cmd := exec.Command("go", "build", "-o", pluginExe, "./testdata/actionplugin")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build the action plugin: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return pluginExe
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pluginExe != "" {
		_ = os.RemoveAll(filepath.Dir(pluginExe))
	}
	os.Exit(code)
}

// setup is how the vault sink is served in a test: built in (the shared process, as tda's
// own plugins), built in but isolated, built in under a plugin block with env (a process of
// its own with that environment), or a separate binary in the plugin directory.
type setup struct {
	name string
	// builtin serves the plugin as tda's own; else it is a binary in plugin_dir.
	builtin bool
	// block is added to the sink block (isolate = true), plugin to the config (a plugin
	// block).
	block, plugin string
	// wantMark is VAULT_MARK in the plugin's environment.
	wantMark string
}

var setups = []setup{
	{name: "shared", builtin: true},
	{name: "isolated", builtin: true, block: "isolate = true"},
	{name: "plugin_block_env", builtin: true, plugin: `plugin "vault" {
  env = { VAULT_MARK = "from the block" }
}`, wantMark: "from the block"},
	{name: "separate_binary", builtin: false},
}

// load writes a config with one vault sink named "db" and loads it as the CLI does.
func (s setup) load(t *testing.T) *config.Config {
	t.Helper()
	exe := actionPlugin(t)
	dir := t.TempDir()
	pluginDir := filepath.Join(dir, "plugins")
	if err := os.Mkdir(pluginDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var builtin *pluginhost.Builtin
	if s.builtin {
		out, err := exec.Command(exe, "plugin-serve", "describe").Output()
		if err != nil {
			t.Fatal(err)
		}
		var d sdk.Description
		if err := json.Unmarshal(out, &d); err != nil {
			t.Fatal(err)
		}
		builtin = &pluginhost.Builtin{Path: exe, Args: []string{"plugin-serve"}, Description: &d}
	} else if err := os.Symlink(exe, filepath.Join(pluginDir, "tda-plugin-vault")); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`agent {
  data_dir   = %q
  plugin_dir = %q
}
%s
sink "vault" "db" {
  label = "primary"
  %s
}
sink "vault" "other" {
  label = "secondary"
}
`, filepath.Join(dir, "data"), pluginDir, s.plugin, s.block)
	path := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	l, diags := loader.Load(context.Background(), path, loader.Options{Builtin: builtin})
	if diags.HasErrors() {
		t.Fatalf("load: %v", diags)
	}
	t.Cleanup(func() { _ = l.Registry.Close() })
	return l.Config
}

type echo struct {
	Label   string `json:"label"`
	Started bool   `json:"started"`
	Args    string `json:"args"`
	Actor   string `json:"actor"`
	Mark    string `json:"mark"`
	Pid     int    `json:"pid"`
}

// An action runs in a real plugin process however the block is served, gets its
// arguments, actor and configuration, streams its progress, and its instance is started
// first when it asks for it; the process is gone afterwards.
func TestCallRunsTheActionInThePlugin(t *testing.T) {
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			l := s.load(t)
			var lines []string
			var got echo
			err := actions.Call(context.Background(), l, "sink.vault.db", "echo", map[string]int{"n": 7}, &got,
				func(line string) { lines = append(lines, line) }, "alice")
			if err != nil {
				t.Fatal(err)
			}
			want := echo{Label: "primary", Started: true, Args: `{"n":7}`, Actor: "alice", Mark: s.wantMark, Pid: got.Pid}
			if got != want {
				t.Fatalf("got %+v, want %+v", got, want)
			}
			if fmt.Sprint(lines) != "[one two]" {
				t.Fatalf("progress %q", lines)
			}
			if got.Pid == os.Getpid() || got.Pid <= 0 {
				t.Fatalf("the action ran in pid %d, not a plugin process", got.Pid)
			}
			waitGone(t, got.Pid)
		})
	}
}

// waitGone fails unless process pid has exited (or is a zombie) within a few seconds.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		s := string(stat)
		if f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]); len(f) > 0 && f[0] == "Z" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the plugin process %d outlived the action", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Each failure reaches the caller with its kind: the action's own (conflict, a plain
// failure), the agent's checks (no such block, no such action), and a process that died.
func TestCallErrors(t *testing.T) {
	for _, s := range []setup{setups[0], setups[3]} {
		t.Run(s.name, func(t *testing.T) {
			l := s.load(t)
			tests := []struct {
				address, action string
				kind            actions.Kind
				http            int
				want            string
			}{
				{"sink.vault.db", "conflict", actions.Conflict, 409, `database "restored" already exists`},
				{"sink.vault.db", "fail", actions.Failed, 500, "the dump tool failed"},
				{"sink.vault.db", "wait", actions.Invalid, 400, `wait needs {"marker": PATH}`},
				{"sink.vault.nope", "echo", actions.Invalid, 400, "the configuration has no block sink.vault.nope"},
				{"sink.vault.db", "snapshot.create", actions.NotFound, 404, `sink "vault" has no action "snapshot.create"; it serves: conflict, crash, echo, fail, wait`},
				{"sink.vault.db", "crash", actions.PluginFailed, 502, "the plugin process serving sink.vault.db exited during action crash"},
			}
			for _, tc := range tests {
				done := make(chan error, 1)
				go func() {
					done <- actions.Call(context.Background(), l, tc.address, tc.action, nil, nil, nil, "bob")
				}()
				var err error
				select {
				case err = <-done:
				case <-time.After(60 * time.Second):
					t.Fatalf("%s %s did not return", tc.address, tc.action)
				}
				var ae *actions.Error
				if !errors.As(err, &ae) {
					t.Fatalf("%s: %v is no *actions.Error", tc.action, err)
				}
				if ae.Kind != tc.kind || actions.HTTPStatus(err) != tc.http || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s %s: kind %q http %d %q; want %q %d %q", tc.address, tc.action, ae.Kind,
						actions.HTTPStatus(err), err, tc.kind, tc.http, tc.want)
				}
			}
			// The process that crashed took nothing with it: the next call works.
			if err := actions.Call(context.Background(), l, "sink.vault.other", "echo", nil, nil, nil, "bob"); err != nil {
				t.Fatalf("after the crash: %v", err)
			}
		})
	}
}

// Cancelling the caller's context cancels the action's context in the plugin process: the
// action sees it (it writes its marker) and Call returns promptly.
func TestCallCancelled(t *testing.T) {
	for _, s := range []setup{setups[0], setups[3]} {
		t.Run(s.name, func(t *testing.T) {
			l := s.load(t)
			marker := filepath.Join(t.TempDir(), "marker")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				done <- actions.Call(ctx, l, "sink.vault.db", "wait", map[string]string{"marker": marker}, nil,
					func(line string) {
						if line == "waiting" {
							cancel()
						}
					}, "carol")
			}()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("got %v, want context.Canceled", err)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("the cancelled action did not return")
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				b, err := os.ReadFile(marker)
				if err == nil && string(b) == "cancelled" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the action's context in the plugin was never cancelled")
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// Find picks the only block serving an action, or the named one, and says which there are.
func TestFind(t *testing.T) {
	l := setups[0].load(t)
	if _, err := actions.Find(l, "echo", ""); err == nil || !strings.Contains(err.Error(), "several blocks serve echo (db, other)") {
		t.Fatalf("no name among two: %v", err)
	}
	c, err := actions.Find(l, "echo", "other")
	if err != nil || c.Address() != "sink.vault.other" {
		t.Fatalf("named: %v %v", c, err)
	}
	if _, err := actions.Find(l, "echo", "x"); actions.KindOf(err) != actions.NotFound || !strings.Contains(err.Error(), "the blocks that do are: db, other") {
		t.Fatalf("unknown name: %v", err)
	}
	if _, err := actions.Find(l, "snapshot.list", ""); actions.KindOf(err) != actions.NotFound {
		t.Fatalf("no block serves it: %v", err)
	}
}
