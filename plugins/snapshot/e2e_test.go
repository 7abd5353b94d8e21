package snapshot_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/agenttest"
	"github.com/tda-dev/tda/plugins/snapshot/internal/pgtest"
	"github.com/tda-dev/tda/plugins/snapshot/postgres"
	"github.com/tda-dev/tda/plugins/snapshot/provider"
	"github.com/tda-dev/tda/sdk"
)

func TestMain(m *testing.M) { agenttest.Main(m) }

// TestEndToEndMassPasswordReset runs the real agent with real plugin processes: a Flask log
// shows a mass password reset, the rules raise a HIGH alert, and the snapshot sink takes an
// anomaly snapshot of the PostgreSQL database within 5 s of the alert. The database is then
// attacked for real, and `tda restore` brings every password hash back.
func TestEndToEndMassPasswordReset(t *testing.T) {
	srv := pgtest.Require(t)
	if testing.Short() {
		t.Skip("builds the agent and its plugins")
	}
	ctx := context.Background()
	db := srv.CreateDatabase(t, "tda_e2e")
	conn := srv.Connect(t, db)
	if _, err := conn.Exec(ctx, `CREATE TABLE users (id int PRIMARY KEY, hashed_password text NOT NULL);
		INSERT INTO users SELECT g, '$2b$12$' || md5(g::text) || 'Qe0sSx7rVw1yXzAbCdEf' FROM generate_series(1, 500) g`); err != nil {
		t.Fatal(err)
	}
	hashes := func(database string) string {
		var digest string
		c := srv.Connect(t, database)
		if err := c.QueryRow(ctx, `SELECT md5(string_agg(id || ':' || hashed_password, ',' ORDER BY id)) FROM users`).Scan(&digest); err != nil {
			t.Fatal(err)
		}
		return digest
	}
	before := hashes(db)

	bins := agenttest.Build(t, "file", "detect", "jsonl", "snapshot")
	a := agenttest.New(t, bins, fmt.Sprintf(`
agent {
  data_dir    = "DIR/data"
  app_version = "9.9.9"
}

source "file" "app" {
  paths     = ["DIR/logs/*.log"]
  read_from = "beginning"
}

processor "rules" "anomalies" {
  timezone = "UTC"
  rule "mass_password_reset" {
    match     = "password_changed"
    unless    = "actor_role == admin"
    threshold = 10
    window    = "60s"
    severity  = "HIGH"
  }
}

sink "jsonl" "audit" {
  path = "DIR/alerts/alerts.jsonl"
}

sink "snapshot" "guard" {
  app_version   = "9.9.9"
  poll_interval = "50ms"
  postgres {
    host     = %q
    port     = %d
    user     = %q
    password = env("TDA_E2E_PGPASSWORD")
    database = %q
    sslmode  = "disable"
  }
}

pipeline "detect" {
  from    = [source.file.app]
  through = [processor.rules.anomalies]
  to      = [sink.jsonl.audit, sink.snapshot.guard]
}
`, srv.Host, srv.Port, srv.User, db))
	t.Setenv("TDA_E2E_PGPASSWORD", srv.Password) // for the agent and for tda restore
	if err := os.MkdirAll(a.Path("logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	a.Start()
	defer a.Stop()

	// Fourteen password changes by a non-admin in a few seconds.
	var lines strings.Builder
	now := time.Now().UTC()
	for i := 0; i < 14; i++ {
		at := now.Add(time.Duration(i*100) * time.Millisecond)
		fmt.Fprintf(&lines, "[%s,%03d] INFO in auth: password_changed user_id=%d actor=mallory actor_role=user ip=203.0.113.7\n",
			at.Format("2006-01-02 15:04:05"), at.Nanosecond()/1e6, i+1)
	}
	if err := os.WriteFile(a.Path("logs", "flask.log"), []byte(lines.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	alerts := a.Path("alerts", "alerts.jsonl")
	var alert *sdk.Alert
	agenttest.WaitFor(t, "the mass_password_reset alert", 30*time.Second, func() bool {
		for _, e := range agenttest.ReadJSONL(t, alerts) {
			if e.Alert != nil && e.Alert.Rule == "mass_password_reset" {
				alert = e.Alert
				return true
			}
		}
		return false
	})
	alerted := time.Now()

	dumps := filepath.Join(a.Dir, "data", "snapshots", "guard")
	p, err := postgres.New(postgres.Config{Database: db, Dir: dumps})
	if err != nil {
		t.Fatal(err)
	}
	var snap provider.Snapshot
	agenttest.WaitFor(t, "an anomaly snapshot", 5*time.Second, func() bool {
		list, err := p.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list {
			if s.Trigger() == provider.TriggerAnomaly {
				snap = s
				return true
			}
		}
		return false
	})
	t.Logf("anomaly snapshot %s seen %v after the alert reached alerts.jsonl", snap.ID, time.Since(alerted).Round(time.Millisecond))
	if snap.Tags[provider.TagAlertFingerprint] != alert.Fingerprint || snap.Tags[provider.TagAlertRule] != "mass_password_reset" ||
		snap.Tags[provider.TagAppVersion] != "9.9.9" || !snap.Managed() {
		t.Fatalf("snapshot tags %v, alert fingerprint %s", snap.Tags, alert.Fingerprint)
	}
	agenttest.WaitFor(t, "the snapshot to be available", 30*time.Second, func() bool {
		s, err := p.Get(ctx, snap.ID)
		return err == nil && s.Status == provider.StatusAvailable
	})

	// The attack reaches the database; the operator restores the anomaly snapshot. While the
	// HIGH alert is firing unacknowledged the system is blocked and restores are refused: the
	// operator acknowledges it first, as the restore's refusal says.
	if _, err := conn.Exec(ctx, `UPDATE users SET hashed_password = '$2b$12$owned'`); err != nil {
		t.Fatal(err)
	}
	restored := db + "_restored"
	srv.DropOnCleanup(t, restored)
	restore := []string{"restore", "-config", a.Config, "-snapshot", snap.ID, "-to", restored, "-yes"}
	code, out, errOut := agenttest.RunCLI(t, bins, a.Dir, restore...)
	if code == 0 || !strings.Contains(errOut, "the system is blocked") {
		t.Fatalf("a restore while a HIGH alert is unacknowledged should be refused: %d\n%s", code, errOut)
	}
	code, out, errOut = agenttest.RunCLI(t, bins, a.Dir, "alerts", "ack", alert.Fingerprint, "-by", "oncall",
		"-comment", "restoring the anomaly snapshot", "-config", a.Config)
	if code != 0 {
		t.Fatalf("tda alerts ack: %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = agenttest.RunCLI(t, bins, a.Dir, restore...)
	if code != 0 {
		t.Fatalf("tda restore: %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("tda restore:\n%s", out)
	if got := hashes(restored); got != before {
		t.Fatalf("restored hashes differ from those before the attack")
	}
	code, out, _ = agenttest.RunCLI(t, bins, a.Dir, "snapshot", "list", "-config", a.Config)
	if code != 0 || !strings.Contains(out, snap.ID) || !strings.Contains(out, "anomaly             RPO") {
		t.Fatalf("tda snapshot list: %d\n%s", code, out)
	}
}
