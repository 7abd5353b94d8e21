package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	hcli "github.com/hashicorp/cli"

	"github.com/tda-dev/tda/agent/control"
	"github.com/tda-dev/tda/agent/deadletter"
	"github.com/tda-dev/tda/agent/loader"
	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/agent/state"
)

// memLetters is an in-memory dead-letter store: what the runtime's store does, without the
// runtime.
type memLetters struct {
	mu       sync.Mutex
	letters  map[uint64]deadletter.Letter
	replayed []uint64
}

func (m *memLetters) List(context.Context) ([]deadletter.Letter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []deadletter.Letter
	for _, l := range m.letters {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (m *memLetters) Show(_ context.Context, id uint64) (deadletter.Letter, []json.RawMessage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.letters[id]
	if !ok {
		return l, nil, deadletter.ErrNotFound
	}
	var events []json.RawMessage
	for i, p := range l.Preview {
		b, _ := json.MarshalIndent(map[string]any{"kind": l.Kinds[0], "line": p, "n": i}, "", "  ")
		events = append(events, b)
	}
	return l, events, nil
}

func (m *memLetters) remove(id uint64, replay bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.letters[id]; !ok {
		return deadletter.ErrNotFound
	}
	delete(m.letters, id)
	if replay {
		m.replayed = append(m.replayed, id)
	}
	return nil
}

func (m *memLetters) Replay(_ context.Context, id uint64) error { return m.remove(id, true) }
func (m *memLetters) Drop(_ context.Context, id uint64) error   { return m.remove(id, false) }

var dlNow = time.Date(2026, 11, 29, 22, 0, 0, 0, time.UTC)

func testLetters() *memLetters {
	m := &memLetters{letters: map[uint64]deadletter.Letter{}}
	for _, l := range []deadletter.Letter{
		{ID: 3, Instance: "sink.slack.oncall", Pipeline: "detect", Time: dlNow.Add(-3 * time.Hour), Reason: deadletter.ReasonRefused,
			Error: "slack: the webhook answered 404 no_service: the webhook was revoked or the channel archived; " +
				"create a new incoming webhook and update webhook_url",
			Attempts: 1, Events: 2, Bytes: 1834, Kinds: []string{"alert"},
			Preview: []string{"HIGH mass_password_reset key=*", "HIGH bulk_deletion key=users"}},
		{ID: 4, Instance: "sink.slack.oncall", Pipeline: "detect", Time: dlNow.Add(-2 * time.Hour), Reason: deadletter.ReasonRefused,
			Error: "slack: the webhook answered 404 no_service", Attempts: 1, Events: 1, Bytes: 912, Kinds: []string{"alert"},
			Preview: []string{"MEDIUM auth_failures key=10.0.0.7"}},
		{ID: 12, Instance: "processor.rules.anomalies", Pipeline: "detect", Time: dlNow.Add(-90 * time.Second),
			Reason: deadletter.ReasonCrashBudget, Error: "plugin exited (signal: killed) 3 times on this batch",
			Attempts: 3, Events: 1, Bytes: 180, Kinds: []string{"log"},
			Preview: []string{"2026-11-29 21:58:30,001 INFO app: password_changed user_id=7"}},
	} {
		m.letters[l.ID] = l
	}
	return m
}

// runningAgent serves the operations over the control socket of a config's data_dir, as
// tda run does, with letters as the runtime's dead-letter store. It returns the config path.
func runningAgent(t *testing.T, letters deadletter.Letters) (string, *ops.Service) {
	t.Helper()
	dir, err := os.MkdirTemp("", "tdadl")
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
	svc, err := ops.NewService(ops.Options{Store: store, DeadLetters: letters, Via: "socket"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close(context.Background()) })
	srv, err := control.Serve(control.ServeOptions{Ops: svc, Socket: control.SocketPath(cfg)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return path, svc
}

// dlRun runs a dead-letter command at dlNow, with input as what the operator types.
func dlRun(cmd string, input string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	env := &Env{UI: &hcli.BasicUi{Reader: strings.NewReader(input), Writer: &out, ErrorWriter: &errOut}, Stdout: &out, Stderr: &errOut}
	clock := func() time.Time { return dlNow }
	var c hcli.Command
	switch cmd {
	case "list":
		c = &deadletterListCommand{env: env, now: clock}
	case "show":
		c = &deadletterShowCommand{env: env, now: clock}
	case "replay":
		c = &deadletterActCommand{env: env, now: clock}
	case "drop":
		c = &deadletterActCommand{env: env, drop: true, now: clock}
	}
	code := c.Run(args)
	return code, out.String(), errOut.String()
}

// updating reports whether the test binary runs with -update (the flag is the external
// tests' one, which rewrites every golden file of the package).
func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// TestDeadletterGolden runs the dead-letter commands against a running agent's socket and
// compares exit code and output with testdata/deadletter/NAME.golden.
func TestDeadletterGolden(t *testing.T) {
	letters := testLetters()
	cfg, svc := runningAgent(t, letters)
	steps := []struct {
		name, cmd, input string
		args             []string
	}{
		{"list", "list", "", []string{"-config", cfg}},
		{"list_json", "list", "", []string{"-config", cfg, "-json"}},
		{"list_instance", "list", "", []string{"-config", cfg, "-instance", "processor.rules.anomalies"}},
		{"show", "show", "", []string{"3", "-config", cfg}},
		{"show_unknown", "show", "", []string{"-config", cfg, "99"}},
		{"show_malformed", "show", "", []string{"-config", cfg, "0x3"}},
		{"replay_no_reason", "replay", "", []string{"-config", cfg, "-by", "alice", "3"}},
		{"replay_ids_and_all", "replay", "", []string{"-config", cfg, "-by", "alice", "-reason", "x", "-all", "3"}},
		{"drop_declined", "drop", "no\n", []string{"-config", cfg, "-by", "bob", "-reason", "duplicates", "4", "99"}},
		{"drop_confirmed", "drop", "yes\n", []string{"-config", cfg, "-by", "bob", "4", "99", "-reason", "duplicates"}},
		{"replay_all_instance", "replay", "", []string{"-config", cfg, "-by", "alice", "-reason", "webhook rotated",
			"-all", "-instance", "sink.slack.oncall"}},
		{"drop_yes", "drop", "", []string{"-config", cfg, "-by", "bob", "-reason", "poison batch, reported", "-yes", "12"}},
		{"list_empty", "list", "", []string{"-config", cfg}},
		{"list_empty_json", "list", "", []string{"-config", cfg, "-json"}},
	}
	for _, s := range steps {
		code, out, errOut := dlRun(s.cmd, s.input, s.args...)
		got := "exit " + strconv.Itoa(code) + "\n--- stdout\n" + out + "--- stderr\n" + errOut
		golden := filepath.Join("testdata", "deadletter", s.name+".golden")
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
	if len(letters.replayed) != 1 || letters.replayed[0] != 3 {
		t.Fatalf("replayed %v", letters.replayed)
	}
	// Every replay and drop is in the audit log, with the instance.
	audit, err := svc.Audit(context.Background(), ops.AuditFilter{Action: "deadletter"})
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, e := range audit {
		rows = append(rows, e.Action+" "+e.Target+" "+e.Actor+" "+e.Via+" "+e.Outcome+" "+e.Detail["instance"]+" "+e.Reason)
	}
	want := []string{
		"deadletter.drop 12 bob socket ok processor.rules.anomalies poison batch, reported",
		"deadletter.replay 3 alice socket ok sink.slack.oncall webhook rotated",
		"deadletter.drop 99 bob socket refused  duplicates",
		"deadletter.drop 4 bob socket ok sink.slack.oncall duplicates",
	}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
}

// The -json list is the documented shape: these keys and no others.
func TestDeadletterListJSONShape(t *testing.T) {
	cfg, _ := runningAgent(t, testLetters())
	code, out, errOut := dlRun("list", "", "-config", cfg, "-json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"id": true, "instance": true, "pipeline": true, "time": true, "reason": true, "error": true,
		"attempts": true, "events": true, "bytes": true, "kinds": true, "preview": true}
	for _, l := range list {
		for k := range l {
			if !allowed[k] {
				t.Errorf("undocumented key %q", k)
			}
		}
		for _, k := range []string{"id", "instance", "time", "reason", "error", "attempts", "events", "bytes"} {
			if _, ok := l[k]; !ok {
				t.Errorf("key %q missing from %v", k, l)
			}
		}
	}
}

// Without a running agent there is no dead-letter store to ask: the commands say so.
func TestDeadletterNeedsTheAgent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tda.hcl")
	if err := os.WriteFile(path, []byte(`agent { data_dir = "`+filepath.Join(dir, "data")+`" }`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := dlRun("list", "", "-config", path)
	if code != 1 || !strings.Contains(errOut, "dead letters are kept by the running agent: start it (tda run)") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}

func TestDeadletterInHelp(t *testing.T) {
	code, out, _ := runCLI("help")
	for _, want := range []string{"\n    deadletter         List, show, replay and drop the batches tda gave up on\n" +
		"      list             List the dead letters: batches tda gave up on\n" +
		"      show             Show a dead letter and its events\n" +
		"      replay           Put dead letters back on their instance's queue\n" +
		"      drop             Delete dead letters for good\n"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("tda help lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI("help", "deadletter")
	if code != 0 || !strings.Contains(out, "Usage: tda deadletter <list|show|replay|drop>") || !strings.Contains(out, "deadletter replay") {
		t.Fatalf("tda help deadletter: %d\n%s", code, out)
	}
	code, out, _ = runCLI("help", "deadletter", "replay")
	if code != 0 || !strings.Contains(out, "-all") || !strings.Contains(out, "-instance ADDR") {
		t.Fatalf("tda help deadletter replay: %d\n%s", code, out)
	}
}
