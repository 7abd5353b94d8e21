package chaos

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/agenttest"
)

// dockerCLI runs the docker command and returns its standard output.
func dockerCLI(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("docker", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// requireDocker skips the scenario without a Docker daemon (fails under
// TDA_REQUIRE_INTEGRATION=1).
func requireDocker(t *testing.T) {
	t.Helper()
	if err := exec.Command("docker", "version").Run(); err != nil {
		if os.Getenv("TDA_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("no Docker daemon: %v", err)
		}
		t.Skipf("no Docker daemon: %v", err)
	}
}

// emitterImage builds the repository's log emitter into an image FROM scratch (no registry)
// and removes it at the end.
func emitterImage(t *testing.T, tag string) {
	t.Helper()
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "logemitter"), "./plugins/docker/internal/logemitter")
	build.Dir = agenttest.RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the log emitter: %v\n%s", err, out)
	}
	dockerfile := "FROM scratch\nCOPY logemitter /logemitter\nENTRYPOINT [\"/logemitter\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("docker", "build", "-q", "-t", tag, dir)
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", tag).Run() })
}

// lineCounts counts the lines of a capture file by their text after the timestamp.
func lineCounts(path string) map[string]int {
	out := map[string]int{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		if _, line, ok := strings.Cut(sc.Text(), " "); ok {
			out[line]++
		}
	}
	return out
}

// scenarioDockerKilled: the agent is killed with SIGKILL three times while a container logs
// 300 lines a second. The raw capture (logfile) and the line archive (jsonl) must hold every
// line the container wrote exactly once.
func scenarioDockerKilled(t *testing.T) {
	o := record(t, "kill -9 of the agent 3 times during Docker capture (300 lines/s)",
		"logfile and jsonl: every line once, 0 lost, 0 repeated")
	requireDocker(t)
	run := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	image := "tda-chaos-logemitter:" + run
	name := "tda-chaos-" + run
	emitterImage(t, image)
	a := newAgent(t, fmt.Sprintf(`
agent {
  data_dir = "DIR/data"
}
source "docker" "apps" {
  containers = [%q]
}
sink "logfile" "raw" {
  dir = "DIR/logs"
}
sink "jsonl" "lines" {
  path = "DIR/out/lines.jsonl"
}
pipeline "capture" {
  from = [source.docker.apps]
  to   = [sink.logfile.raw, sink.jsonl.lines]
}
`, name), "docker", "logfile", "jsonl")
	validConfig(t, o, a)
	a.Start()
	dockerCLI(t, "run", "-d", "--network", "none", "--name", name, image, "-rate", "300", "-stderr-every", "3")
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", name).Run() })
	raw := a.Path("logs", name+".log")
	const kills = 3
	for i := 0; i < kills; i++ {
		if !waitUntil(60*time.Second, func() bool { return agenttest.CountLines(raw) > (i+1)*400 }) {
			t.Fatalf("the capture stalled after %d kills", i)
		}
		a.Kill()
		if i == kills-1 {
			time.Sleep(5 * time.Second) // a gap: the lines written meanwhile are read on restart
		}
		a.Start()
	}
	time.Sleep(2 * time.Second)
	dockerCLI(t, "stop", "-t", "2", name)
	logs := exec.Command("docker", "logs", name)
	var all bytes.Buffer
	logs.Stdout, logs.Stderr = &all, &all
	if err := logs.Run(); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(all.String()), "\n") {
		want[l] = true
	}
	jsonlCounts := func() map[string]int {
		out := map[string]int{}
		for _, e := range agenttest.ReadJSONL(t, a.Path("out", "lines.jsonl")) {
			out[string(e.Line)]++
		}
		return out
	}
	waitUntil(90*time.Second, func() bool {
		return len(lineCounts(raw)) >= len(want) && len(jsonlCounts()) >= len(want)
	})
	a.Stop()
	check := func(what string, got map[string]int) {
		lost, repeated, extra := 0, 0, 0
		for l := range want {
			switch n := got[l]; {
			case n == 0:
				lost++
			case n > 1:
				repeated += n - 1
			}
		}
		for l := range got {
			if !want[l] {
				extra++
			}
		}
		o.figure("%s: %d of %d lines, %d lost, %d repeated", what, len(want)-lost, len(want), lost, repeated)
		if lost > 0 || repeated > 0 || extra > 0 {
			t.Errorf("%s: %d lost, %d repeated, %d not in docker logs", what, lost, repeated, extra)
		}
	}
	check("logfile", lineCounts(raw))
	check("jsonl", jsonlCounts())
	o.happened("%d kills while the container logged", kills)
}
