package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	hcli "github.com/hashicorp/cli"

	"github.com/tda-dev/tda/agent/control"
	"github.com/tda-dev/tda/agent/loader"
	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/sdk"
)

var incNow = time.Date(2026, 11, 29, 22, 0, 0, 0, time.UTC)

func incAlertLine(fp, rule, sev, st, key string, count int64, at time.Time, explanation string) string {
	ev := sdk.Event{Time: at, Kind: sdk.KindAlert, Source: "file.app", Origin: "/var/log/flask/app.log",
		Alert: &sdk.Alert{Rule: rule, Severity: sev, State: st, Key: key, Count: count, Threshold: 10,
			Window: time.Minute, FirstSeen: incNow.Add(-2 * time.Minute), LastSeen: at, Fingerprint: fp,
			Excerpt:     []string{"2026-11-29 21:58:00,001 INFO app: password_changed user_id=7 actor=mallory ip=203.0.113.9"},
			Explanation: explanation}}
	b, _ := ev.MarshalJSON()
	return string(b) + "\n"
}

const resetExplanation = "Mass password reset: 11 password changed events within 1m across the whole app (threshold: more than 10). " +
	"Likely cause: an account-takeover campaign abusing the reset flow or a stolen admin/API token. " +
	"First steps: look at the excerpt for a common actor or IP; list the affected user_ids and force them to re-verify by email; " +
	"keep the database snapshot taken for this alert before any rollback. If this is approved work, declare it with tda override on -reason ... -ttl 30m."

// incidentAgent serves the operations over a config's control socket with an audit trail at
// trail, as tda run does. It returns the config path and the trail's path.
func incidentAgent(t *testing.T) (string, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "tdainc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "tda.hcl")
	if err := os.WriteFile(path, []byte(`agent { data_dir = "`+filepath.Join(dir, "data")+`" }`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, diags := loader.LoadConfig(path)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	store, err := state.Open(cfg.Agent.DataDir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	trail := filepath.Join(dir, "alerts.jsonl")
	svc, err := ops.NewService(ops.Options{Store: store, Trail: ops.NewTrail(trail), Via: "socket",
		Now: func() time.Time { return incNow }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(context.Background()) })
	srv, err := control.Serve(control.ServeOptions{Ops: svc, Socket: control.SocketPath(cfg)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return path, trail
}

func appendFile(t *testing.T, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(strings.Join(lines, "")); err != nil {
		t.Fatal(err)
	}
}

func incRun(cmd string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	env := &Env{UI: &hcli.BasicUi{Reader: strings.NewReader(""), Writer: &out, ErrorWriter: &errOut}, Stdout: &out, Stderr: &errOut}
	clock := func() time.Time { return incNow }
	var c hcli.Command
	switch cmd {
	case "list":
		c = &incidentsCommand{env: env, now: clock}
	case "show":
		c = &incidentShowCommand{env: env, now: clock}
	case "ack":
		c = &incidentActCommand{env: env}
	case "close":
		c = &incidentActCommand{env: env, close: true}
	case "entities":
		c = &incidentEntitiesCommand{env: env}
	case "state":
		c = &stateCommand{env: env}
	case "alerts":
		c = &alertsCommand{env: env}
	}
	code := c.Run(args)
	return code, out.String(), errOut.String()
}

// TestIncidentsGolden walks the incident commands through one incident's life against a
// running agent's socket, comparing exit code and output with testdata/incidents/NAME.golden.
func TestIncidentsGolden(t *testing.T) {
	cfg, trail := incidentAgent(t)
	appendFile(t, trail,
		incAlertLine("fp-reset", "mass_password_reset", "HIGH", "firing", "", 11, incNow.Add(-100*time.Second), resetExplanation),
		incAlertLine("fp-auth", "auth_failures", "MEDIUM", "firing", "198.51.100.4", 21, incNow.Add(-50*time.Minute), "Repeated authentication failures."),
		incAlertLine("fp-auth", "auth_failures", "MEDIUM", "resolved", "198.51.100.4", 30, incNow.Add(-45*time.Minute), "Repeated authentication failures."))
	update := sdk.IncidentUpdate{Fingerprint: "fp-reset", Rule: "mass_password_reset", Count: 15, Entities: map[string][]string{
		"user_id": {"7", "8", "9", "11", "12"}, "actor": {"mallory"}, "ip": {"203.0.113.9"}}}.Event(incNow.Add(-90*time.Second), "file.app", "/var/log/flask/app.log")
	b, _ := update.MarshalJSON()
	appendFile(t, trail, string(b)+"\n")

	id := "8jtpyrd4" // the id of fp-reset
	steps := []struct {
		name, cmd string
		args      []string
		before    func()
	}{
		{"list", "list", []string{"-config", cfg}, nil},
		{"list_active_high", "list", []string{"-config", cfg, "-state", "active", "-severity", "HIGH"}, nil},
		{"list_search", "list", []string{"-config", cfg, "-q", "198.51"}, nil},
		{"list_since", "list", []string{"-config", cfg, "-since", "10m"}, nil},
		{"list_bad_since", "list", []string{"-config", cfg, "-since", "yesterday"}, nil},
		{"list_bad_state", "list", []string{"-config", cfg, "-state", "firing"}, nil},
		{"state_blocked", "state", []string{"-config", cfg}, nil},
		{"show", "show", []string{id, "-config", cfg}, nil},
		{"show_unknown", "show", []string{"-config", cfg, "zzzzzzzz"}, nil},
		{"close_early", "close", []string{id, "-config", cfg, "-by", "alice", "-note", "done"}, nil},
		{"ack_no_reason", "ack", []string{id, "-config", cfg, "-by", "alice"}, nil},
		{"ack", "ack", []string{id, "-config", cfg, "-by", "alice", "-reason", "revoking the attacker's token"}, nil},
		{"state_acknowledged", "state", []string{"-config", cfg}, nil},
		{"close_firing", "close", []string{"-config", cfg, "-by", "alice", "-note", "done", id}, nil},
		{"close_no_note", "close", []string{id, "-config", cfg, "-by", "alice"}, func() {
			appendFile(t, trail, incAlertLine("fp-reset", "mass_password_reset", "HIGH", "resolved", "", 15, incNow.Add(-30*time.Second), resetExplanation))
		}},
		{"close", "close", []string{id, "-config", cfg, "-by", "alice", "-note", "15 users reset by a stolen token; token revoked, users restored"}, nil},
		{"list_closed", "list", []string{"-config", cfg, "-state", "closed"}, nil},
		{"show_closed", "show", []string{id, "-config", cfg}, nil},
		{"entities_csv", "entities", []string{id, "-config", cfg}, nil},
		{"entities_json", "entities", []string{id, "-config", cfg, "-format", "json"}, nil},
		{"entities_bad_format", "entities", []string{id, "-config", cfg, "-format", "xml"}, nil},
	}
	// tda alerts lists the same incidents by the rule's state, with their ids.
	if code, out, errOut := incRun("alerts", "-config", cfg, "-state", ""); code != 0 || !strings.Contains(out, id+"  HIGH") ||
		!strings.Contains(out, "fp-auth") {
		t.Fatalf("tda alerts: %d\n%s%s", code, out, errOut)
	}
	for _, s := range steps {
		if s.before != nil {
			s.before()
		}
		code, out, errOut := incRun(s.cmd, s.args...)
		got := "exit " + strconv.Itoa(code) + "\n--- stdout\n" + out + "--- stderr\n" + errOut
		golden := filepath.Join("testdata", "incidents", s.name+".golden")
		if updating() {
			if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if got != string(want) {
			t.Errorf("%s: output differs from %s:\n--- got\n%s\n--- want\n%s", s.name, golden, got, want)
		}
	}
}
