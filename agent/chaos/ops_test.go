package chaos

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/agenttest"
)

// agentState is what `tda state -json` prints.
type agentState struct {
	Status     string   `json:"status"`
	Reasons    []string `json:"reasons"`
	Degraded   []string `json:"degraded"`
	Components []struct {
		Address  string `json:"address"`
		Healthy  bool   `json:"healthy"`
		Reason   string `json:"reason"`
		Restarts int    `json:"restarts"`
		Queued   int    `json:"queued"`
	} `json:"components"`
}

// stateOf asks the running agent for its state.
func stateOf(t *testing.T, a *agenttest.Agent) (agentState, error) {
	t.Helper()
	code, stdout, stderr := agenttest.RunCLI(t, agenttest.Build(t), a.Dir, "state", "-json", "-config", a.Config)
	var st agentState
	if code != 0 && code != 2 {
		return st, fmt.Errorf("tda state exited %d: %s", code, strings.TrimSpace(stderr))
	}
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		return st, fmt.Errorf("tda state -json printed %q: %v", stdout, err)
	}
	return st, nil
}

// degradedFor waits up to timeout for the state to be degraded with a reason that names addr
// and holds every one of words; it returns the reason, or what the state said instead.
func degradedFor(t *testing.T, a *agenttest.Agent, addr string, timeout time.Duration, words ...string) (string, bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		st, err := stateOf(t, a)
		if err != nil {
			last = err.Error()
		} else {
			last = st.Status + ": " + strings.Join(st.Reasons, " / ")
			// A firing HIGH alert makes the state blocked, which outranks degraded; the
			// degraded reasons are listed all the same.
			if st.Status == "degraded" || len(st.Degraded) > 0 {
				for _, r := range append(st.Reasons, st.Degraded...) {
					if strings.Contains(r, addr) && containsAll(r, words) {
						return r, true
					}
				}
			}
		}
		if time.Now().After(deadline) {
			return last, false
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func containsAll(s string, words []string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}
	return true
}

// queuedAt returns the events queued at a component, from the agent's state.
func queuedAt(t *testing.T, a *agenttest.Agent, addr string) (int, error) {
	st, err := stateOf(t, a)
	if err != nil {
		return 0, err
	}
	for _, c := range st.Components {
		if c.Address == addr {
			return c.Queued, nil
		}
	}
	return 0, fmt.Errorf("no component %s in the state", addr)
}

// deadLetter is one entry of `tda deadletter list -json`.
type deadLetter struct {
	ID       uint64    `json:"id"`
	Instance string    `json:"instance"`
	Pipeline string    `json:"pipeline"`
	Time     time.Time `json:"time"`
	Reason   string    `json:"reason"`
	Error    string    `json:"error"`
	Attempts int       `json:"attempts"`
	Events   int       `json:"events"`
	Bytes    int       `json:"bytes"`
	Kinds    []string  `json:"kinds"`
	Preview  []string  `json:"preview"`
}

// deadLetters lists the agent's dead letters.
func deadLetters(t *testing.T, a *agenttest.Agent) ([]deadLetter, error) {
	t.Helper()
	code, stdout, stderr := agenttest.RunCLI(t, agenttest.Build(t), a.Dir, "deadletter", "list", "-json", "-config", a.Config)
	if code != 0 {
		msg := strings.TrimSpace(stderr)
		if i := strings.IndexByte(msg, '\n'); i > 0 {
			msg = msg[:i]
		}
		return nil, fmt.Errorf("tda deadletter list -json exited %d: %s", code, msg)
	}
	var out []deadLetter
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		return nil, fmt.Errorf("tda deadletter list -json printed %q: %v", stdout, err)
	}
	return out, nil
}

// validConfig checks the agent's config with tda validate; a refusal is the scenario's
// outcome (a setting the agent does not know yet) and ends it.
func validConfig(t *testing.T, o *outcome, a *agenttest.Agent) {
	t.Helper()
	code, stdout, stderr := agenttest.RunCLI(t, agenttest.Build(t), a.Dir, "validate", "-config", a.Config)
	if code == 0 {
		return
	}
	msg := strings.TrimSpace(stderr + "\n" + stdout)
	var first []string
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "at ") || strings.Contains(l, "|") {
			continue
		}
		if len(first) < 2 {
			first = append(first, l)
		}
	}
	o.happened("the agent refused the config: %s", strings.Join(first, " "))
	t.Fatalf("tda validate exited %d:\n%s", code, msg)
}

// appLog appends lines to a log file the file source follows.
func appLog(t *testing.T, path string, lines ...string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for _, l := range lines {
		_, _ = w.WriteString(l)
		_ = w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// flaskLine is a Flask app logger line at now.
func flaskLine(now time.Time, msg string) string {
	return fmt.Sprintf("[%s,%03d] INFO in app: %s", now.UTC().Format("2006-01-02 15:04:05"), now.Nanosecond()/1e6, msg)
}

// noise returns n ordinary request lines of a run, numbered from first.
func noise(run string, first, n int) []string {
	out := make([]string, n)
	now := time.Now()
	for i := range out {
		out[i] = flaskLine(now, fmt.Sprintf("request served run=%s n=%d", run, first+i))
	}
	return out
}

// passwordResets returns a mass password reset: 12 password changes by a non-admin.
func passwordResets() []string {
	out := make([]string, 12)
	now := time.Now()
	for i := range out {
		out[i] = strings.Replace(flaskLine(now, fmt.Sprintf("password_changed user_id=%d actor=mallory actor_role=user ip=198.51.100.23", 100+i)),
			"in app", "in auth", 1)
	}
	return out
}

// captured counts, over every file of the capture directory, how often each noise line of a
// run (by its n) was captured.
func captured(t *testing.T, dir, run string) map[int]int {
	t.Helper()
	out := map[int]int{}
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	marker := "run=" + run + " n="
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
		for sc.Scan() {
			line := sc.Text()
			if i := strings.Index(line, marker); i >= 0 {
				var n int
				if _, err := fmt.Sscanf(line[i+len(marker):], "%d", &n); err == nil {
					out[n]++
				}
			}
		}
		f.Close()
	}
	return out
}

// lostAndRepeated compares a capture with the n lines written.
func lostAndRepeated(counts map[int]int, n int) (lost, repeated int) {
	for i := 0; i < n; i++ {
		switch c := counts[i]; {
		case c == 0:
			lost++
		case c > 1:
			repeated += c - 1
		}
	}
	return lost, repeated
}

// fileHolds reports whether a file contains s.
func fileHolds(path, s string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(b), s)
}

// pluginPid returns the pid of the agent's plugin process with the given binary name.
func pluginPid(a *agenttest.Agent, binary string) int {
	for pid, name := range a.PluginPids() {
		if name == binary {
			return pid
		}
	}
	return 0
}

// mountTmpfs mounts a tmpfs of size at dir (needs root); without root the scenario is skipped,
// or fails under TDA_REQUIRE_INTEGRATION=1.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("TDA_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("a full disk needs a tmpfs, which needs root")
		}
		t.Skip("a full disk needs a tmpfs, which needs root")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
}

// fill writes a file until the file system is full and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			return path
		}
	}
}

// waitUntil polls cond until it holds or timeout passes, and reports which.
func waitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(25 * time.Millisecond)
	}
	return true
}
