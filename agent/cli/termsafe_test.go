package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/control"
	"github.com/tda-dev/tda/agent/deadletter"
	"github.com/tda-dev/tda/agent/loader"
	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/agent/state"
)

// forged is a value from a log line or a plugin's error: it retitles the terminal and, after a
// newline, lays out a row that would pass for a real one.
const forged = "x\x1b]0;pwned\x07\nbob      approved  8\r\u202e"

// checkTerminalSafe fails when out holds a raw control character, a bidirectional override, or
// a line that the forged value started.
func checkTerminalSafe(t *testing.T, what, out string) {
	t.Helper()
	if strings.ContainsAny(out, "\x1b\x07\r\u202e") {
		t.Errorf("%s prints raw control characters:\n%q", what, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "bob      approved") {
			t.Errorf("%s prints a forged row:\n%s", what, out)
		}
	}
	if !strings.Contains(out, `\x1b]0;pwned\a`) {
		t.Errorf("%s does not show the value escaped:\n%s", what, out)
	}
}

// TestListingsEscapeOutsideText: tda state, override status, deadletter list and show, and
// migrate list print values from logs, plugins and the API escaped, never raw.
func TestListingsEscapeOutsideText(t *testing.T) {
	dir, err := os.MkdirTemp("", "tdaesc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfgPath := filepath.Join(dir, "tda.hcl")
	if err := os.WriteFile(cfgPath, []byte(`agent { data_dir = "`+filepath.Join(dir, "data")+`" }`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, diags := loader.LoadConfig(cfgPath)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	store, err := state.Open(cfg.Agent.DataDir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	// An override an app's log line declared, as the agent keeps it in the store.
	ov, _ := json.Marshal(ops.OverrideInfo{Actor: forged, Reason: forged, Origin: forged, Pipeline: "detect", Via: "log_line",
		Since: time.Now().Add(-time.Minute), Until: time.Now().Add(time.Hour)})
	if err := store.Update(func(tx *state.Tx) error { return tx.Put([]string{"ops", "override"}, []byte("detect"), ov) }); err != nil {
		t.Fatal(err)
	}
	// A migration request whose name came in through the store, as an older agent took it.
	mig, _ := json.Marshal(ops.Migration{ID: "1", Name: forged, RequestedBy: forged, Reason: forged, Status: ops.MigrationPending,
		RequestedAt: time.Now()})
	if err := store.Update(func(tx *state.Tx) error {
		if _, err := tx.NextSequence([]string{"ops", "migrations"}); err != nil {
			return err
		}
		return tx.Put([]string{"ops", "migrations"}, []byte{0, 0, 0, 0, 0, 0, 0, 1}, mig)
	}); err != nil {
		t.Fatal(err)
	}
	letters := &memLetters{letters: map[uint64]deadletter.Letter{7: {ID: 7, Instance: "sink.webhook.audit", Pipeline: "detect",
		Time: dlNow, Reason: deadletter.ReasonRefused, Error: "webhook answered 400: " + forged, Attempts: 1, Events: 1,
		Kinds: []string{"alert"}, Preview: []string{forged}}}}
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

	for _, args := range [][]string{
		{"state", "-config", cfgPath},
		{"override", "status", "-config", cfgPath},
		{"deadletter", "list", "-config", cfgPath},
		{"deadletter", "show", "7", "-config", cfgPath},
		{"migrate", "list", "-config", cfgPath},
	} {
		_, out, errOut := runCLI(args...)
		checkTerminalSafe(t, strings.Join(args[:len(args)-2], " "), out+errOut)
	}
}
