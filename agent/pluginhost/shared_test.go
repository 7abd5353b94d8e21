package pluginhost_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/agent/pluginhost"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
)

var (
	bundleOnce sync.Once
	bundleDir  string // removed by TestMain
	bundlePath string
	bundleErr  error
)

// builtinBundle builds testdata/bundleplugin once and returns it as a Builtin, described by
// its own `plugin-serve describe`, as cmd/tda describes the plugins compiled into tda.
func builtinBundle(t *testing.T) *pluginhost.Builtin {
	t.Helper()
	bundleOnce.Do(func() {
		_ = filepath.WalkDir(filepath.Join("..", "..", "sdk"), func(path string, d os.DirEntry, err error) error {
			if err == nil && strings.HasSuffix(path, ".go") {
				_, _ = os.ReadFile(path)
			}
			return nil
		})
		_, _ = os.ReadFile(filepath.Join("testdata", "bundleplugin", "main.go"))
		if bundleDir, bundleErr = os.MkdirTemp("", "tda-bundleplugin"); bundleErr != nil {
			return
		}
		bundlePath = filepath.Join(bundleDir, "bundleplugin")
		cmd := exec.Command("go", "build", "-o", bundlePath, "./testdata/bundleplugin")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			bundleErr = fmt.Errorf("build the test bundle: %v\n%s", err, out)
		}
	})
	if bundleErr != nil {
		t.Fatal(bundleErr)
	}
	out, err := exec.Command(bundlePath, "plugin-serve", "describe").Output()
	if err != nil {
		t.Fatalf("describe the bundle: %v", err)
	}
	var d sdk.Description
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatal(err)
	}
	return &pluginhost.Builtin{Path: bundlePath, Args: []string{"plugin-serve"}, Description: &d}
}

const zeroSum = "0000000000000000000000000000000000000000000000000000000000000000"

// Which binary serves each component, with plugins built in: a binary of the plugin
// directory replaces a builtin component; a memory_limit naming a builtin plugin applies to
// its components (each then runs in a process of its own); a sha256 pin naming one keeps
// that plugin to its pinned binary.
func TestDiscoveryWithBuiltinPlugins(t *testing.T) {
	builtin := builtinBundle(t)
	withProto := protocolPlugins(t) // tda-plugin-v1-2 offers sink proto_v1_2 too
	type want struct {
		builtin bool   // served by the builtin (else a binary of the directory)
		absent  bool   // not offered at all
		limit   string // memory limit
		shares  bool
	}
	for _, tc := range []struct {
		name string
		dir  string
		pins []pluginhost.Pin
		want map[string]want
	}{
		{name: "no plugin directory", dir: filepath.Join(t.TempDir(), "missing"),
			want: map[string]want{"alpha_sink": {builtin: true, shares: true}, "beta_sink": {builtin: true, shares: true},
				"proto_v1_2": {builtin: true, shares: true}}},
		{name: "a binary replaces a builtin component", dir: withProto,
			want: map[string]want{"alpha_sink": {builtin: true, shares: true}, "proto_v1_2": {builtin: false}}},
		{name: "memory limit of a builtin plugin", dir: t.TempDir(),
			pins: []pluginhost.Pin{{Name: "alpha", MemoryLimit: "100MiB"}},
			want: map[string]want{"alpha_sink": {builtin: true, limit: "100MiB"}, "beta_sink": {builtin: true, shares: true}}},
		{name: "environment of a builtin plugin", dir: t.TempDir(),
			pins: []pluginhost.Pin{{Name: "beta", InheritEnv: []string{"AWS_*"}}},
			want: map[string]want{"alpha_sink": {builtin: true, shares: true}, "beta_sink": {builtin: true}}},
		{name: "path of a builtin plugin that is missing", dir: t.TempDir(),
			pins: []pluginhost.Pin{{Name: "beta", Path: filepath.Join(t.TempDir(), "nothing-here")}},
			want: map[string]want{"alpha_sink": {builtin: true, shares: true}, "beta_sink": {absent: true}}},
		{name: "sha256 pin of a builtin plugin without its binary", dir: t.TempDir(),
			pins: []pluginhost.Pin{{Name: "beta", SHA256: zeroSum}},
			want: map[string]want{"alpha_sink": {builtin: true, shares: true}, "beta_sink": {absent: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg, err := pluginhost.DiscoverWithBuiltin(context.Background(), tc.dir, tc.pins, builtin)
			if err != nil {
				t.Fatal(err)
			}
			for comp, w := range tc.want {
				b, desc, ok := reg.Lookup(sdk.KindSink, comp)
				if w.absent {
					if ok {
						t.Fatalf("%s is offered by %s", comp, b.Path)
					}
					continue
				}
				if !ok {
					t.Fatalf("%s is not offered", comp)
				}
				if b.Builtin != w.builtin || b.MemoryLimit(desc) != w.limit || b.Shares(desc) != w.shares {
					t.Fatalf("%s: builtin %v limit %q shares %v, want %+v", comp, b.Builtin, b.MemoryLimit(desc), b.Shares(desc), w)
				}
			}
			for _, b := range reg.Binaries {
				// A memory limit for a builtin plugin is not a missing binary.
				if b.Err != nil && strings.HasSuffix(b.Path, "tda-plugin-alpha") {
					t.Fatalf("the memory limit of a builtin plugin reported as an unusable binary: %v", b.Err)
				}
			}
		})
	}
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// waitGone waits for a process to exit (it may linger as a zombie briefly: its parent, this
// test, reaps it through go-plugin).
func waitGone(t *testing.T, p *pluginhost.Instance) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !p.Exited() {
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not exit", p.Pid())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func configureSink(t *testing.T, in *pluginhost.Instance, comp, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := in.Sink().Configure(ctx, host.Configuration{Component: comp, Instance: addr, Config: []byte("{}")}); err != nil {
		t.Fatalf("configure %s: %v", addr, err)
	}
}

func write(in *pluginhost.Instance) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return in.Sink().Write(ctx, 1, host.NewBatch([]sdk.Event{{Line: []byte("x")}}))
}

// The builtin's instances share one process, started once however many start together;
// isolate and a memory limit get processes of their own; releasing an instance leaves the
// others served and the last release stops the process; a Kill (a crash) stops it for all,
// and the next Start brings a new one that a stale instance's release does not stop.
func TestProcessesShareAndIsolate(t *testing.T) {
	builtin := builtinBundle(t)
	reg, err := pluginhost.DiscoverWithBuiltin(context.Background(), t.TempDir(),
		[]pluginhost.Pin{{Name: "beta", MemoryLimit: "64MiB", Env: []string{"TDA_TEST_BETA_ONLY=1"}}}, builtin)
	if err != nil {
		t.Fatal(err)
	}
	procs := pluginhost.NewProcesses(reg, nil, nil)
	logger := hclog.NewNullLogger()

	// Five instances starting at once: one process.
	shared := make([]*pluginhost.Instance, 5)
	errs := make([]error, len(shared))
	var wg sync.WaitGroup
	for i := range shared {
		wg.Add(1)
		go func() {
			defer wg.Done()
			shared[i], errs[i] = procs.Start(sdk.KindSink, "alpha_sink", fmt.Sprintf("sink.alpha_sink.n%d", i), false, logger)
		}()
	}
	wg.Wait()
	for i, in := range shared {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !in.Shared() || in.Pid() != shared[0].Pid() {
			t.Fatalf("instance %d in process %d (shared %v), instance 0 in %d", i, in.Pid(), in.Shared(), shared[0].Pid())
		}
		configureSink(t, in, "alpha_sink", fmt.Sprintf("sink.alpha_sink.n%d", i))
	}
	sharedPid := shared[0].Pid()

	// isolate = true, and a component under a memory limit: processes of their own.
	isolated, err := procs.Start(sdk.KindSink, "alpha_sink", "sink.alpha_sink.alone", true, logger)
	if err != nil {
		t.Fatal(err)
	}
	limited, err := procs.Start(sdk.KindSink, "beta_sink", "sink.beta_sink.limited", false, logger)
	if err != nil {
		t.Fatal(err)
	}
	if isolated.Shared() || limited.Shared() || isolated.Pid() == sharedPid || limited.Pid() == sharedPid ||
		isolated.Pid() == limited.Pid() {
		t.Fatalf("isolated %d, limited %d, shared %d", isolated.Pid(), limited.Pid(), sharedPid)
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", limited.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(environ), "GOMEMLIMIT=64MiB\x00") || !strings.Contains(string(environ), "TDA_TEST_BETA_ONLY=1\x00") {
		t.Fatal("the limited instance's process runs without its plugin block's GOMEMLIMIT and env")
	}
	// The environment a block grants its plugin stays out of the shared process.
	sharedEnv, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", sharedPid))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sharedEnv), "TDA_TEST_BETA_ONLY") || strings.Contains(string(sharedEnv), "GOMEMLIMIT") {
		t.Fatal("the shared process got the environment of another plugin's block")
	}
	isolated.Release()
	limited.Release()
	waitGone(t, isolated)
	waitGone(t, limited)

	// Releasing instances leaves the process serving the others; the last release stops it.
	for _, in := range shared[:4] {
		in.Release()
		in.Release() // idempotent: counted once
	}
	if !alive(sharedPid) || shared[4].Exited() {
		t.Fatal("the shared process stopped while an instance still holds it")
	}
	if err := write(shared[4]); err != nil {
		t.Fatalf("the remaining instance: %v", err)
	}
	if err := write(shared[0]); err == nil {
		t.Fatal("a released instance is still served")
	}
	shared[4].Release()
	waitGone(t, shared[4])

	// A crash: Kill stops the process for every instance in it; the next Start launches a
	// new one, which a stale instance's Release does not stop.
	a, err := procs.Start(sdk.KindSink, "alpha_sink", "sink.alpha_sink.a", false, logger)
	if err != nil {
		t.Fatal(err)
	}
	b, err := procs.Start(sdk.KindSink, "alpha_sink", "sink.alpha_sink.b", false, logger)
	if err != nil {
		t.Fatal(err)
	}
	configureSink(t, a, "alpha_sink", "sink.alpha_sink.a")
	configureSink(t, b, "alpha_sink", "sink.alpha_sink.b")
	a.Kill()
	if !b.Exited() {
		t.Fatal("a Kill left the shared process running for the other instance")
	}
	a2, err := procs.Start(sdk.KindSink, "alpha_sink", "sink.alpha_sink.a", false, logger)
	if err != nil {
		t.Fatal(err)
	}
	if a2.Pid() == a.Pid() {
		t.Fatal("Start reused a killed process")
	}
	b.Release() // stale: its process is the killed one
	if a2.Exited() {
		t.Fatal("a stale instance's release stopped the new process")
	}
	configureSink(t, a2, "alpha_sink", "sink.alpha_sink.a")
	if err := write(a2); err != nil {
		t.Fatal(err)
	}
	a2.Release()
	waitGone(t, a2)
}

// Prestart launches the shared process ahead of its instances, which then join it; Close
// stops a prestarted process that no instance took, and leaves a held one alone.
func TestPrestart(t *testing.T) {
	reg, err := pluginhost.DiscoverWithBuiltin(context.Background(), t.TempDir(), nil, builtinBundle(t))
	if err != nil {
		t.Fatal(err)
	}
	logger := hclog.NewNullLogger()

	unused := pluginhost.NewProcesses(reg, nil, nil)
	unused.Prestart(sdk.KindSink, "alpha_sink", logger)
	unused.Prestart(sdk.KindSink, "beta_sink", logger) // the same binary: still one process
	in, err := unused.Start(sdk.KindSink, "alpha_sink", "sink.alpha_sink.probe", false, logger)
	if err != nil {
		t.Fatal(err)
	}
	pid := in.Pid()
	in.Release() // the last holder: the process stops
	waitGone(t, in)
	unused.Close()

	procs := pluginhost.NewProcesses(reg, nil, nil)
	procs.Prestart(sdk.KindSink, "alpha_sink", logger)
	a, err := procs.Start(sdk.KindSink, "alpha_sink", "sink.alpha_sink.a", false, logger)
	if err != nil {
		t.Fatal(err)
	}
	b, err := procs.Start(sdk.KindSink, "beta_sink", "sink.beta_sink.b", false, logger)
	if err != nil {
		t.Fatal(err)
	}
	if a.Pid() != b.Pid() || a.Pid() == pid {
		t.Fatalf("prestarted process: a in %d, b in %d (the first run's was %d)", a.Pid(), b.Pid(), pid)
	}
	procs.Close()
	if a.Exited() {
		t.Fatal("Close stopped a process instances still hold")
	}
	a.Release()
	b.Release()
	waitGone(t, a)

	// Prestarted, never taken: Close stops it. (Every process this test started before is
	// gone: waitGone saw them exit.)
	idle := pluginhost.NewProcesses(reg, nil, nil)
	idle.Prestart(sdk.KindSink, "alpha_sink", logger)
	idle.Close()
	for p := range childPids(t) {
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", p)); strings.HasSuffix(exe, "bundleplugin") {
			t.Fatalf("the prestarted process %d outlived Close", p)
		}
	}
}

// childPids lists the live child processes of this test process.
func childPids(t *testing.T) map[int]bool {
	t.Helper()
	out := map[int]bool{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		fields := strings.Fields(s[i+1:])
		if len(fields) > 1 && fields[0] != "Z" && fields[1] == fmt.Sprint(os.Getpid()) {
			out[pid] = true
		}
	}
	return out
}

// A shared process that stops answering (SIGSTOP) is killed by its watchdog even while no
// call to it runs, so that its instances restart; one that answers is left alone.
func TestWatchdogKillsAHungSharedProcess(t *testing.T) {
	reg, err := pluginhost.DiscoverWithBuiltin(context.Background(), t.TempDir(), nil, builtinBundle(t))
	if err != nil {
		t.Fatal(err)
	}
	procs := pluginhost.NewProcesses(reg, nil, nil)
	procs.SetPing(50*time.Millisecond, time.Second)
	defer procs.Close()
	logger := hclog.NewNullLogger()
	in, err := procs.Start(sdk.KindSink, "alpha_sink", "sink.alpha_sink.a", false, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Release()
	configureSink(t, in, "alpha_sink", "sink.alpha_sink.a")
	time.Sleep(500 * time.Millisecond) // several pings answered
	if in.Exited() {
		t.Fatal("the watchdog killed a process that answers")
	}
	if err := syscall.Kill(in.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(in.Pid(), syscall.SIGKILL)
	waitGone(t, in)
	next, err := procs.Start(sdk.KindSink, "alpha_sink", "sink.alpha_sink.a", false, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Release()
	if next.Pid() == in.Pid() {
		t.Fatal("the hung process was reused")
	}
}
