package docker_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/agenttest"
	"github.com/tda-dev/tda/plugins/docker/internal/testdocker"
	"github.com/tda-dev/tda/sdk"
)

func TestMain(m *testing.M) { agenttest.Main(m) }

// TestAgentKilledWhileContainersLog runs the real agent, kills it and its plugins with
// SIGKILL for 10 s while a container keeps logging, and starts it again: every line the
// container wrote is captured exactly once by both file sinks. The batches in flight at the
// kill are delivered again, and the sinks recognise their lines by log_position.
func TestAgentKilledWhileContainersLog(t *testing.T) {
	t.Parallel()
	env := testdocker.New(t, testdocker.RequireDaemon(t))
	img := env.EmitterImage()
	bins := agenttest.Build(t, "docker", "jsonl", "logfile")
	name := env.Name("killed")
	a := agenttest.New(t, bins, fmt.Sprintf(`
agent {
  data_dir = "DIR/data"
}
source "docker" "apps" {
  containers = [%q]
}
sink "jsonl" "all" {
  path = "DIR/out/lines.jsonl"
}
sink "logfile" "raw" {
  dir = "DIR/logs"
}
pipeline "capture" {
  from = [source.docker.apps]
  to   = [sink.jsonl.all, sink.logfile.raw]
}
`, name))
	lines := func() []sdk.Event { return readCompleteJSONL(t, a.Path("out", "lines.jsonl")) }
	a.Start()
	id := env.Create(testdocker.Container{Name: name, Image: img, Start: true,
		Cmd: []string{"-rate", "200", "-stderr-every", "3"}})
	waitAgent(t, a, "the first lines", 90*time.Second, func() bool { return len(lines()) > 200 })

	a.Kill()
	killed := time.Now()
	before := len(lines())
	time.Sleep(10 * time.Second)
	restarted := time.Now()
	a.Start()
	waitAgent(t, a, "lines after the restart", 90*time.Second, func() bool {
		for _, e := range lines() {
			if e.Time.After(restarted) {
				return true
			}
		}
		return false
	})
	env.Stop(id, 5)
	want := env.Logs(id, true)
	_ = waitQuietly(60*time.Second, func() bool { return len(lines()) >= len(want) })
	if code, took := a.Stop(); code != 0 {
		t.Fatalf("tda exited %d after %s:\n%s", code, took, a.Logs())
	}

	gap := 0
	for _, w := range want {
		if w.Time.After(killed) && w.Time.Before(restarted) {
			gap++
		}
	}
	if gap < 1000 {
		t.Fatalf("only %d lines were written while tda was down; the test did not exercise the gap", gap)
	}
	var fromJSONL []string
	for _, e := range lines() {
		fromJSONL = append(fromJSONL, key(e.Time, e.Stream, string(e.Line)))
	}
	dups := checkCapture(t, "jsonl sink", fromJSONL, want, killed, true)

	// The raw capture holds the same lines, each after Docker's timestamp.
	f, err := os.Open(a.Path("logs", name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var fromLogfile []string
	for sc.Scan() {
		tsText, line, _ := strings.Cut(sc.Text(), " ")
		ts, err := time.Parse(time.RFC3339Nano, tsText)
		if err != nil || !strings.HasPrefix(line, "logemitter run=") {
			t.Fatalf("logfile line %q", sc.Text())
		}
		fromLogfile = append(fromLogfile, key(ts, "", line))
	}
	rawDups := checkCapture(t, "logfile sink", fromLogfile, want, killed, false)
	if dups > 0 || rawDups > 0 {
		t.Fatalf("lines from before the kill captured twice: %d in the jsonl sink, %d in the logfile sink", dups, rawDups)
	}
	t.Logf("%d lines: %d captured before the kill, %d written during the 10 s gap, every one captured once",
		len(want), before, gap)
}

// checkCapture fails the test when a line of docker logs is missing from got, or when one
// written after the kill is there twice; it returns how many lines from before the kill are
// there more than once (batches in flight when the agent was killed, delivered again).
func checkCapture(t *testing.T, what string, got []string, want []testdocker.Entry, killed time.Time, streams bool) int {
	t.Helper()
	count := map[string]int{}
	for _, k := range got {
		count[k]++
	}
	var missing, gapTwice []string
	dups := 0
	for _, w := range want {
		stream := w.Stream
		if !streams {
			stream = ""
		}
		k := key(w.Time, stream, w.Line)
		n := count[k]
		delete(count, k)
		switch {
		case n == 0:
			missing = append(missing, k)
		case n > 1 && w.Time.After(killed):
			gapTwice = append(gapTwice, k)
		case n > 1:
			dups += n - 1
		}
	}
	var extra []string
	for k := range count {
		extra = append(extra, k)
	}
	if len(missing) > 0 || len(gapTwice) > 0 || len(extra) > 0 {
		t.Fatalf("%s: %d lines in docker logs, %d captured: %d missing (%s), %d written after the kill "+
			"captured twice (%s), %d not in docker logs (%s)", what, len(want), len(got), len(missing), head(missing),
			len(gapTwice), head(gapTwice), len(extra), head(extra))
	}
	return dups
}

// readCompleteJSONL reads the events of a JSON-lines file that a sink may be writing (or that
// a killed sink left torn): a last line without its newline is not read.
func readCompleteJSONL(t *testing.T, path string) []sdk.Event {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		return nil
	}
	var out []sdk.Event
	for _, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		var e sdk.Event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("%s: malformed line %q: %v", path, line, err)
		}
		out = append(out, e)
	}
	return out
}

// waitAgent waits for cond and fails the test with the agent's log after timeout.
func waitAgent(t *testing.T, a *agenttest.Agent, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	if !waitQuietly(timeout, cond) {
		t.Fatalf("timed out after %s waiting for %s; the agent's log:\n%s", timeout, what, a.Logs())
	}
}

// waitQuietly polls cond until it holds or timeout passes.
func waitQuietly(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// TestSidecarImageCapturesASibling builds the image with `make image`, runs it in the daemon
// as the documentation says (Docker socket mounted read-only, non-root, config mounted at
// /etc/tda/agent.hcl) and checks that it captures a sibling container into logs/<name>.log.
func TestSidecarImageCapturesASibling(t *testing.T) {
	t.Parallel()
	env := testdocker.New(t, testdocker.RequireDaemon(t))
	for _, tool := range []string{"make", "docker"} {
		if _, err := exec.LookPath(tool); err != nil {
			testdocker.Missing(t, tool+" is not installed")
		}
	}
	const socket = "/var/run/docker.sock"
	st, err := os.Stat(socket)
	if err != nil {
		testdocker.Missing(t, "the sidecar test mounts the daemon's socket "+socket+": "+err.Error())
	}
	img := env.EmitterImage()

	tag := "tdatest-tda:" + env.Run
	stage := t.TempDir()
	make := exec.Command("make", "image", "IMAGE="+tag, "IMAGE_STAGE="+stage,
		"PLUGIN_CMDS=./plugins/docker/cmd/tda-plugin-docker ./plugins/logfile/cmd/tda-plugin-logfile",
		"DOCKER_BUILD_FLAGS=--quiet --label "+testdocker.RunLabel+"="+env.Run)
	make.Dir = testdocker.RepoRoot(t)
	if out, err := make.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}

	dir := t.TempDir()
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o777); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(work, 0o777) // the image's user (10001) writes here
	sibling := env.Name("sibling")
	config := fmt.Sprintf(`
source "docker" "apps" {
  containers = [%q]
}
sink "logfile" "raw" {
  dir = "./logs"
}
pipeline "capture" {
  from = [source.docker.apps]
  to   = [sink.logfile.raw]
}
`, sibling)
	if err := os.WriteFile(filepath.Join(dir, "agent.hcl"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	sidecar := env.Create(testdocker.Container{Name: env.Name("tda"), Image: tag, Start: true,
		Binds: []string{socket + ":" + socket + ":ro", filepath.Join(dir, "agent.hcl") + ":/etc/tda/agent.hcl:ro",
			work + ":/var/lib/tda"},
		GroupAdd: []string{socketGroup(st)}})
	sib := env.Create(testdocker.Container{Name: sibling, Image: img, Start: true,
		Cmd: []string{"-count", "100", "-rate", "100", "-stderr-every", "2"}})
	env.Wait(sib, time.Minute)
	capture := filepath.Join(work, "logs", sibling+".log")
	if !waitQuietly(30*time.Second, func() bool { return agenttest.CountLines(capture) >= 100 }) {
		t.Fatalf("the sidecar captured %d of 100 lines; its log:\n%s", agenttest.CountLines(capture),
			containerLog(env, sidecar))
	}
	info, err := env.Cli.ContainerInspect(t.Context(), sidecar)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.User != "10001:10001" || !info.State.Running {
		t.Fatalf("sidecar user %q, running %v", info.Config.User, info.State.Running)
	}
	want := map[string]bool{}
	for _, e := range env.Logs(sib, true) {
		want[e.Time.UTC().Format(sdk.TimeFormat)+" "+e.Line] = true
	}
	b, err := os.ReadFile(capture)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if !want[l] {
			t.Fatalf("captured line %q is not in docker logs -t", l)
		}
		delete(want, l)
	}
	if len(want) != 0 {
		t.Fatalf("%d lines of docker logs not captured", len(want))
	}
}

// socketGroup returns the group owning the Docker socket, which the sidecar's user joins.
func socketGroup(st os.FileInfo) string {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprint(s.Gid)
	}
	return "0"
}

func containerLog(env *testdocker.Env, id string) string {
	var b strings.Builder
	for _, e := range env.Logs(id, false) {
		b.WriteString(e.Line)
		b.WriteByte('\n')
	}
	return b.String()
}

// BenchmarkAgentIdleCPU20QuietContainers runs the real agent (docker source, logfile sink) on
// 20 containers that each write one line every 10 s and reports the CPU the agent and its
// plugin processes use over 10 s, as a share of one core.
// Run: go test -run '^$' -bench AgentIdle -benchtime 1x ./plugins/docker/
func BenchmarkAgentIdleCPU20QuietContainers(b *testing.B) {
	env := testdocker.New(b, testdocker.RequireDaemon(b))
	img := env.EmitterImage()
	bins := agenttest.Build(b, "docker", "logfile")
	a := agenttest.New(b, bins, fmt.Sprintf(`
agent {
  data_dir = "DIR/data"
}
source "docker" "apps" {
  labels = { %q = %q }
}
sink "logfile" "raw" {
  dir = "DIR/logs"
}
pipeline "capture" {
  from = [source.docker.apps]
  to   = [sink.logfile.raw]
}
`, testdocker.RunLabel, env.Run))
	a.Start()
	for i := 0; i < 20; i++ {
		env.Create(testdocker.Container{Name: env.Name(fmt.Sprintf("quiet%02d", i)), Image: img, Start: true,
			Cmd: []string{"-rate", "0.1"}})
	}
	// Every container has written its first line once all 20 files exist.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		entries, _ := os.ReadDir(a.Path("logs"))
		if len(entries) >= 20 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c0, t0 := processTreeCPU(a.Pid()), time.Now()
		time.Sleep(10 * time.Second)
		b.ReportMetric(100*float64(processTreeCPU(a.Pid())-c0)/float64(time.Since(t0)), "%cpu")
	}
}

// BenchmarkAgentChattyContainer runs the real agent (docker source, logfile sink with fsync)
// on a container that first wrote 200,000 lines, and reports how fast they reach the file.
// Run: go test -run '^$' -bench AgentChatty -benchtime 1x ./plugins/docker/
func BenchmarkAgentChattyContainer(b *testing.B) {
	const lines = 200000
	env := testdocker.New(b, testdocker.RequireDaemon(b))
	img := env.EmitterImage()
	bins := agenttest.Build(b, "docker", "logfile")
	name := env.Name("chatty")
	id := env.Create(testdocker.Container{Name: name, Image: img, Start: true,
		Cmd: []string{"-count", fmt.Sprint(lines), "-rate", "0", "-stderr-every", "10"}})
	env.Wait(id, 5*time.Minute)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a := agenttest.New(b, bins, fmt.Sprintf(`
agent {
  data_dir = "DIR/data"
}
source "docker" "apps" {
  containers     = [%q]
  from_beginning = true
}
sink "logfile" "raw" {
  dir = "DIR/logs"
}
pipeline "capture" {
  from = [source.docker.apps]
  to   = [sink.logfile.raw]
}
`, name))
		a.Start()
		t0 := time.Now()
		path := a.Path("logs", name+".log")
		for agenttest.CountLines(path) < lines {
			if time.Since(t0) > 5*time.Minute {
				b.Fatalf("%d of %d lines after 5 minutes", agenttest.CountLines(path), lines)
			}
			time.Sleep(50 * time.Millisecond)
		}
		elapsed := time.Since(t0)
		cpu := processTreeCPU(a.Pid())
		b.ReportMetric(lines/elapsed.Seconds(), "lines/s")
		b.ReportMetric(float64(cpu.Nanoseconds())/lines, "cpu-ns/line")
		a.Kill()
	}
}

// processTreeCPU returns the user and system CPU time of pid and its children (from /proc).
func processTreeCPU(pid int) time.Duration {
	total := procCPU(pid)
	for child := range agenttest.Children(pid) {
		total += procCPU(child)
	}
	return total
}

func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	var utime, stime int64
	fmt.Sscan(fields[11], &utime)
	fmt.Sscan(fields[12], &stime)
	const clockTicks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clockTicks
}
