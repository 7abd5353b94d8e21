package detect_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/agenttest"
	"github.com/tda-dev/tda/sdk"
)

// TestAgentLineFromTheFuture runs the real agent on a tailed file: a password reset dated a
// year ahead, then a burst of resets from 20 minutes ago (a catch-up). The file source stamps
// each line with the time it read it, so the line from the future is counted at that time
// and the burst pages. The agent is then killed (SIGKILL) and restarted from its snapshot, and
// a second burst, from 10 minutes ago, pages as its own incident. No record is delivered twice.
func TestAgentLineFromTheFuture(t *testing.T) {
	bins := agenttest.Build(t, "file", "detect", "jsonl")
	a := agenttest.New(t, bins, agentConfig(t, ""))
	if err := os.MkdirAll(a.Path("in"), 0o755); err != nil {
		t.Fatal(err)
	}
	input := a.Path("in", "flask-app.log")
	now := time.Now().UTC().Truncate(time.Second)
	var data []byte
	data = append(append(data, resetLine(now.AddDate(1, 0, 0), 1)...), '\n')
	for i := 0; i < 12; i++ {
		data = append(append(data, resetLine(now.Add(-20*time.Minute+time.Duration(i)*time.Second), 100+i)...), '\n')
	}
	if err := os.WriteFile(input, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := a.Path("alerts.jsonl")
	firing := func() []sdk.Event {
		var f []sdk.Event
		for _, e := range firstRecords(alertsOf(agenttest.ReadJSONL(t, out))) {
			if e.Alert.Rule == "mass_password_reset" && e.Alert.State == sdk.StateFiring {
				f = append(f, e)
			}
		}
		return f
	}
	a.Start()
	agenttest.WaitFor(t, "the first burst's page", 60*time.Second, func() bool { return len(firing()) == 1 })
	// The line from the future is reported: in the state (not normal), with what to do, and in
	// the metrics.
	code, stdout, stderr := agenttest.RunCLI(t, bins, a.Dir, "state", "-json", "-config", a.Config)
	if code == 0 || !strings.Contains(stdout, `"clocks.detect: lines with impossible clocks: 1 dated too far ahead`) ||
		!strings.Contains(stdout, "fix the clock or time zone") {
		t.Fatalf("tda state after a line from the future (exit %d):\n%s%s", code, stdout, stderr)
	}
	if m := socketGet(t, a.Path("data", "tda.sock"), "/metrics"); !strings.Contains(m,
		`tda_event_clock_skew_total{clock="future_skew",pipeline="detect"} 1`) {
		t.Fatalf("metrics after a line from the future:\n%s", m)
	}
	time.Sleep(500 * time.Millisecond) // a checkpoint with the snapshot
	a.Kill()

	a.Start()
	f, err := os.OpenFile(input, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 12; i++ {
		if _, err := f.Write(append(resetLine(now.Add(-10*time.Minute+time.Duration(i)*time.Second), 200+i), '\n')); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	agenttest.WaitFor(t, "the second burst's page", 60*time.Second, func() bool { return len(firing()) == 2 })
	time.Sleep(300 * time.Millisecond)
	if code, _ := a.Stop(); code != 0 {
		t.Fatalf("stop: exit %d\n%s", code, a.Logs())
	}
	pages := firing()
	if len(pages) != 2 || !pages[0].Alert.FirstSeen.Equal(now.Add(-20*time.Minute)) ||
		!pages[1].Alert.FirstSeen.Equal(now.Add(-10*time.Minute)) {
		t.Fatalf("pages:\n%s", jsonLines(pages))
	}
	seen := map[string]bool{}
	for _, ev := range alertsOf(agenttest.ReadJSONL(t, out)) {
		if k := ev.Alert.DeliveryKey(); seen[k] {
			t.Errorf("delivered twice: %s", k)
		} else {
			seen[k] = true
		}
	}
}

// socketGet reads path from the agent's API on its unix socket.
func socketGet(t testing.TB, sock, path string) string {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	resp, err := c.Get("http://tda" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v\n%s", path, resp.StatusCode, err, b)
	}
	return string(b)
}
