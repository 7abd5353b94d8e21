// Package agenttest runs the real tda agent with real plugin processes in end-to-end tests:
// it builds the binaries once per test process, starts `tda run` on a config in a temporary
// directory, and can stop it gracefully, kill it with SIGKILL (plugins included), restart it
// and read what its sinks wrote.
//
// A test package using it calls agenttest.Main from TestMain so the built binaries are removed
// afterwards:
//
//	func TestMain(m *testing.M) { agenttest.Main(m) }
package agenttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
)

var (
	buildMu  sync.Mutex
	buildDir string
	built    = map[string]error{}
)

// Main runs the tests and removes the binaries built for them.
func Main(m *testing.M) {
	code := m.Run()
	buildMu.Lock()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	buildMu.Unlock()
	os.Exit(code)
}

// RepoRoot returns the repository's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Binaries are the built agent and plugin directory.
type Binaries struct {
	Tda       string
	PluginDir string
}

// Build builds bin tda and the named bundled plugins (directories under plugins/) once per
// test process.
func Build(t testing.TB, plugins ...string) Binaries {
	t.Helper()
	b, err := build(plugins...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// MainWithPlugins is Main for a package whose tests run tda's commands in their own process
// (cli.Main, without the plugins built into tda): it builds the named bundled plugins first
// and points TDA_PLUGIN_DIR at them, so that the commands find the plugins of their configs
// as an installed tda finds its own. A build failure ends the run before any test.
func MainWithPlugins(m *testing.M, plugins ...string) {
	b, err := build(plugins...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if os.Getenv("TDA_PLUGIN_DIR") == "" {
		os.Setenv("TDA_PLUGIN_DIR", b.PluginDir)
	}
	Main(m)
}

// build builds tda and the plugins into the process's build directory, each at most once.
func build(plugins ...string) (Binaries, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir == "" {
		noteSources(RepoRoot())
		dir, err := os.MkdirTemp("", "tda-agenttest-")
		if err != nil {
			return Binaries{}, err
		}
		buildDir = dir
		if err := os.MkdirAll(filepath.Join(dir, "plugins"), 0o755); err != nil {
			return Binaries{}, err
		}
	}
	one := func(key, pkg, out string) error {
		if err, done := built[key]; done {
			return err
		}
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir = RepoRoot()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if err != nil {
			err = fmt.Errorf("go build %s: %v\n%s", pkg, err, stderr.String())
		}
		built[key] = err
		return err
	}
	if err := one("tda", "./cmd/tda", filepath.Join(buildDir, "tda")); err != nil {
		return Binaries{}, err
	}
	for _, p := range plugins {
		name := "tda-plugin-" + p
		if err := one(name, "./plugins/"+p+"/cmd/"+name, filepath.Join(buildDir, "plugins", name)); err != nil {
			return Binaries{}, err
		}
	}
	return Binaries{Tda: filepath.Join(buildDir, "tda"), PluginDir: filepath.Join(buildDir, "plugins")}, nil
}

// BuiltinOnly returns the binaries with an empty plugin directory of its own: the agent then
// runs the plugins built into tda (one shared process), whatever plugin binaries other
// tests of the process built into the shared directory.
func (b Binaries) BuiltinOnly(t testing.TB) Binaries {
	t.Helper()
	b.PluginDir = t.TempDir()
	return b
}

// noteSources stats every Go source and module file of the repository. go test caches a
// package's result by its test binary and the files the test reads; the binaries Build makes
// are compiled by a separate go build, so without this a change to the agent or a plugin
// would leave the integration tests' cached results standing.
func noteSources(root string) {
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "bin", "testdata", "node_modules":
				if path != root {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if name := d.Name(); strings.HasSuffix(name, ".go") || name == "go.mod" || name == "go.sum" {
			_, _ = os.Stat(path)
		}
		return nil
	})
}

// BuildPlugin builds a plugin from another module (e.g. examples/plugin-hello) into the
// plugin directory as tda-plugin-<name>. moduleDir is relative to the repository root.
func BuildPlugin(t testing.TB, bins Binaries, moduleDir, pkg, name string) {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	key := "external:" + moduleDir + ":" + name
	if err, done := built[key]; done {
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(bins.PluginDir, "tda-plugin-"+name), pkg)
	cmd.Dir = filepath.Join(RepoRoot(), moduleDir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("go build %s in %s: %v\n%s", pkg, moduleDir, err, stderr.String())
	}
	built[key] = err
	if err != nil {
		t.Fatal(err)
	}
}

// Agent is a running (or stopped) `tda run`.
type Agent struct {
	t      testing.TB
	bins   Binaries
	Dir    string
	Config string
	Env    []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	stdout *lockedBuffer
	stderr *lockedBuffer
	waited chan struct{}
	exit   int
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// New prepares an agent in a fresh directory with config (HCL). The config may use the
// placeholders DIR (the agent's directory) and PLUGINS (the plugin directory).
func New(t testing.TB, bins Binaries, config string) *Agent {
	t.Helper()
	dir := t.TempDir()
	a := &Agent{t: t, bins: bins, Dir: dir}
	a.SetConfig(config)
	t.Cleanup(func() { a.Kill() })
	return a
}

// SetConfig rewrites the agent's config file.
func (a *Agent) SetConfig(config string) {
	a.t.Helper()
	config = strings.ReplaceAll(config, "PLUGINS", a.bins.PluginDir)
	config = strings.ReplaceAll(config, "DIR", a.Dir)
	a.Config = filepath.Join(a.Dir, "agent.hcl")
	if err := os.WriteFile(a.Config, []byte(config), 0o644); err != nil {
		a.t.Fatal(err)
	}
}

// Path joins elements to the agent's directory.
func (a *Agent) Path(elem ...string) string {
	return filepath.Join(append([]string{a.Dir}, elem...)...)
}

// Start runs `tda run` and waits until its pipelines run.
func (a *Agent) Start() {
	a.t.Helper()
	a.mu.Lock()
	cmd := exec.Command(a.bins.Tda, "run", "-config", a.Config, "-plugin-dir", a.bins.PluginDir)
	cmd.Dir = a.Dir
	cmd.Env = append(os.Environ(), a.Env...)
	a.stdout, a.stderr = &lockedBuffer{}, &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = a.stdout, a.stderr
	if err := cmd.Start(); err != nil {
		a.mu.Unlock()
		a.t.Fatalf("start tda: %v", err)
	}
	a.cmd = cmd
	a.waited = make(chan struct{})
	waited := a.waited
	go func() {
		err := cmd.Wait()
		a.mu.Lock()
		a.exit = 0
		if ee, ok := err.(*exec.ExitError); ok {
			a.exit = ee.ExitCode()
		}
		a.mu.Unlock()
		close(waited)
	}()
	a.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(a.Logs(), "pipelines running") {
		select {
		case <-waited:
			a.t.Fatalf("tda exited before running:\n%s", a.Logs())
		default:
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("tda did not start within 60s:\n%s", a.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Logs returns what the agent wrote to standard error.
func (a *Agent) Logs() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stderr == nil {
		return ""
	}
	return a.stderr.String()
}

// Stdout returns what the agent wrote to standard output.
func (a *Agent) Stdout() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stdout == nil {
		return ""
	}
	return a.stdout.String()
}

// Pid returns the agent's process id.
func (a *Agent) Pid() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd == nil || a.cmd.Process == nil {
		return 0
	}
	return a.cmd.Process.Pid
}

// Running reports whether the agent process is alive.
func (a *Agent) Running() bool {
	a.mu.Lock()
	w := a.waited
	a.mu.Unlock()
	if w == nil {
		return false
	}
	select {
	case <-w:
		return false
	default:
		return true
	}
}

// PluginPids returns the pids of the agent's plugin processes, by binary name.
func (a *Agent) PluginPids() map[int]string {
	return Children(a.Pid())
}

// Children lists the child processes of pid with their executable's base name.
func Children(pid int) map[int]string {
	out := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(s[i+1:])
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		if ppid != pid {
			continue
		}
		exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		out[child] = filepath.Base(exe)
	}
	return out
}

// ProcStatus returns a size field of /proc/PID/status (VmRSS:, VmHWM:, ...) in bytes, or 0
// when the process or the field is gone.
func ProcStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// Stop sends SIGINT and waits for the agent to exit; it returns the exit code and how long
// the drain took.
func (a *Agent) Stop() (int, time.Duration) {
	a.t.Helper()
	a.mu.Lock()
	cmd, w := a.cmd, a.waited
	a.mu.Unlock()
	if cmd == nil || !a.Running() {
		return a.exit, 0
	}
	start := time.Now()
	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-w:
	case <-time.After(30 * time.Second):
		a.Kill()
		a.t.Fatalf("tda did not stop within 30s:\n%s", a.Logs())
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.exit, time.Since(start)
}

// Kill kills the agent and its plugins with SIGKILL, as a crash or an OOM kill would.
func (a *Agent) Kill() {
	a.mu.Lock()
	cmd, w := a.cmd, a.waited
	a.mu.Unlock()
	if cmd == nil || cmd.Process == nil || !a.Running() {
		return
	}
	children := Children(cmd.Process.Pid)
	_ = cmd.Process.Kill()
	<-w
	// Orphaned plugins exit on their own within a second; make sure of it.
	for pid := range children {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// KillAgentOnly kills only the agent process with SIGKILL and returns its plugins' pids,
// which then notice their parent is gone.
func (a *Agent) KillAgentOnly() map[int]string {
	a.mu.Lock()
	cmd, w := a.cmd, a.waited
	a.mu.Unlock()
	children := Children(cmd.Process.Pid)
	_ = cmd.Process.Kill()
	<-w
	return children
}

// ReadJSONL reads a JSON-lines file of events; a missing file reads as empty.
func ReadJSONL(t testing.TB, path string) []sdk.Event {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	// A last line without its newline is one the sink is still writing: it is read next time.
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		data = nil
	}
	var out []sdk.Event
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var e sdk.Event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("%s: malformed line %q: %v", path, line, err)
		}
		out = append(out, e)
	}
	return out
}

// CountLines counts the lines of a file (0 when missing).
func CountLines(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	buf := make([]byte, 1<<20)
	for {
		m, err := f.Read(buf)
		n += bytes.Count(buf[:m], []byte{'\n'})
		if err != nil {
			return n
		}
	}
}

// WaitFor polls cond until it holds or timeout passes.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// RunCLI runs a tda command and returns its exit code, stdout and stderr.
func RunCLI(t testing.TB, bins Binaries, dir string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bins.Tda, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TDA_PLUGIN_DIR="+bins.PluginDir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run tda %v: %v", args, err)
	}
	return code, stdout.String(), stderr.String()
}
