package control

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/agenttest"
	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/agent/state"
)

// TestProbeRealPostgresCredentials runs the agent's service over a real PostgreSQL whose role
// has another password than the config's: the state turns degraded with PostgreSQL's own
// reason and where to fix it, and a probe after the password is fixed clears it.
func TestProbeRealPostgresCredentials(t *testing.T) {
	pg := agenttest.RequirePostgres(t)
	ctx := context.Background()
	role := pg.CreateRole(t, "tda_probe", "not-the-configured-one")
	db := pg.CreateDatabase(t, "tda_probe")
	if _, err := pg.Connect(t, db).Exec(ctx, `CREATE TABLE users (id int PRIMARY KEY, hashed_password text);
		GRANT SELECT ON users TO `+role); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TDA_PROBE_PASSWORD", "the-configured-password")
	cfg, _ := loadWithPlugins(t, `
agent { data_dir = "DATA" }
sink "snapshot" "guard" {
  probe_interval = "10s"
  postgres {
    host     = "127.0.0.1"
    port     = `+itoa(pg.Port)+`
    user     = "`+role+`"
    password = env("TDA_PROBE_PASSWORD")
    database = "`+db+`"
    sslmode  = "disable"
  }
}
`)
	setup, diags := Prepare(cfg, nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	defer setup.Close(ctx)
	if got := setup.snapshots.ProbeIntervals()["guard"]; got != 10*time.Second {
		t.Fatalf("probe interval %v", got)
	}
	// The test does not wait 10 s.
	guard := setup.snapshots.described["guard"]
	guard.ProbeIntervalSeconds = 0.1
	setup.snapshots.described["guard"] = guard
	store, err := state.Open(cfg.Agent.DataDir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc, err := NewService(setup, store, noPipelines{}, nil, "socket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close(ctx)

	st := waitStatus(t, svc, ops.StatusDegraded)
	reasons := strings.Join(st.Reasons, "\n")
	for _, want := range []string{
		"snapshot target guard: probe database " + db + `: password authentication failed for user "` + role + `"`,
		"fix user and password in the postgres block",
		`in sink "snapshot" "guard", test.hcl:3`,
	} {
		if !strings.Contains(reasons, want) {
			t.Errorf("reasons lack %q:\n%s", want, reasons)
		}
	}
	if strings.Contains(reasons, "the-configured-password") {
		t.Errorf("the password is in the reasons:\n%s", reasons)
	}
	pg.SetPassword(t, role, "the-configured-password")
	st = waitStatus(t, svc, ops.StatusNormal)
	if len(st.SnapshotTargets) != 1 || !st.SnapshotTargets[0].Healthy {
		t.Fatalf("after the fix: %+v", st.SnapshotTargets)
	}
}

func waitStatus(t *testing.T, svc *ops.Service, status string) ops.SystemState {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := svc.State(context.Background())
		if err == nil && st.Status == status {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("state never %s: %+v (%v)", status, st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
