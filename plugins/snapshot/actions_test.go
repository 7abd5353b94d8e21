package snapshot

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/snapshot/aurora/rdstest"
	"github.com/tda-dev/tda/plugins/snapshot/internal/pgtest"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
	"github.com/tda-dev/tda/sdk/snapshotapi"
)

// auroraSink builds the sink from a block as the agent configures it for an action: not
// started (an action that asks for it starts it).
func auroraSink(t *testing.T, srv *rdstest.Server) *Sink {
	t.Helper()
	awsEnv(t)
	src := `
app_version   = "1.4.2"
poll_interval = "2ms"
aurora {
  cluster  = "prod-aurora"
  region   = "eu-west-1"
  endpoint = "` + srv.URL + `"
}`
	conf, diags := sdk.ParseConfig(Spec, sdktest.Config(t, Component(), src))
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	s, err := New(conf, sdk.Resources{Instance: "sink.snapshot.guard",
		DataDir: filepath.Join(t.TempDir(), "sink.snapshot.guard")})
	if err != nil {
		t.Fatal(err)
	}
	sink := s.(*Sink)
	t.Cleanup(func() { _ = sink.Close(context.Background()) })
	return sink
}

// call runs one of the sink's actions as the SDK does: Start first when the action asks.
func call(t *testing.T, s *Sink, name string, args any) ([]byte, []string, error) {
	t.Helper()
	a, ok := Component().Action(name)
	if !ok {
		t.Fatalf("the sink serves no action %s", name)
	}
	if a.Starts && s.mgr == nil {
		if err := s.Start(context.Background()); err != nil {
			return nil, nil, err
		}
	}
	var raw []byte
	if args != nil {
		var err error
		if raw, err = json.Marshal(args); err != nil {
			t.Fatal(err)
		}
	}
	var lines []string
	out, err := a.Run(context.Background(), s, sdk.ActionRequest{Args: raw, Actor: "alice",
		Progress: func(l string) { lines = append(lines, l) }})
	return out, lines, err
}

// Each action answers with its result, or an error of the kind the API turns into its
// status: a wrong request is invalid, a missing snapshot not found, a plan that changed since
// it was confirmed a conflict (and nothing is restored).
func TestActionsAnswerWithTheirKind(t *testing.T) {
	srv := rdstest.NewServer(t)
	srv.AddCluster("prod-aurora", "aurora-postgresql")
	taken := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Second)
	srv.AddSnapshot("tda-prod-aurora-manual-x", "prod-aurora", taken, map[string]string{"created_by": "tda", "trigger": "manual"})
	s := auroraSink(t, srv)

	out, _, err := call(t, s, snapshotapi.ActionTarget, nil)
	var target snapshotapi.Target
	if err != nil || json.Unmarshal(out, &target) != nil || target.Kind != "aurora" || target.Target != "prod-aurora" || target.Name != "guard" {
		t.Fatalf("target: %s %v", out, err)
	}
	if s.mgr != nil {
		t.Fatal("snapshot.target started the sink: it needs only the settings")
	}

	for _, tc := range []struct {
		action string
		args   any
		kind   sdk.ActionErrorKind
		want   string
	}{
		{snapshotapi.ActionCreate, snapshotapi.CreateArgs{Trigger: "anomaly"}, sdk.ActionErrInvalid, "the sink's own"},
		{snapshotapi.ActionCreate, snapshotapi.CreateArgs{Trigger: "whenever"}, sdk.ActionErrInvalid, `unknown trigger "whenever"`},
		{snapshotapi.ActionCreate, map[string]any{"trigger": "manual", "extra": 1}, sdk.ActionErrInvalid, "malformed arguments"},
		{snapshotapi.ActionRestorePlan, snapshotapi.RestoreArgs{SnapshotID: "tda-prod-aurora-manual-x", NewName: "prod-aurora"},
			sdk.ActionErrInvalid, "restores never overwrite"},
		{snapshotapi.ActionRestorePlan, snapshotapi.RestoreArgs{SnapshotID: "../../x", NewName: "r"}, sdk.ActionErrInvalid, `snapshot id "../../x"`},
		{snapshotapi.ActionRestorePlan, snapshotapi.RestoreArgs{SnapshotID: "tda-nope", NewName: "r"}, sdk.ActionErrNotFound, "tda-nope"},
		{snapshotapi.ActionRestoreApply, snapshotapi.RestoreArgs{SnapshotID: "tda-prod-aurora-manual-x", NewName: "r",
			Confirmed: taken.Add(-time.Hour)}, sdk.ActionErrConflict, "plan the restore again"},
		{snapshotapi.ActionMigrationRecord, snapshotapi.MigrationRecord{}, sdk.ActionErrInvalid, "command and outcome"},
	} {
		_, _, err := call(t, s, tc.action, tc.args)
		if sdk.ActionErrorKindOf(err) != tc.kind || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %+v: %v (kind %q), want %q %q", tc.action, tc.args, err, sdk.ActionErrorKindOf(err), tc.kind, tc.want)
		}
	}
	for _, a := range srv.Actions() {
		if strings.HasPrefix(a, "Restore") {
			t.Fatalf("a refused restore ran: %s", a)
		}
	}

	// The plan, then the apply of that plan; the report says where to connect.
	out, _, err = call(t, s, snapshotapi.ActionRestorePlan, snapshotapi.RestoreArgs{SnapshotID: "tda-prod-aurora-manual-x", NewName: "prod-r"})
	var plan snapshotapi.RestorePlan
	if err != nil || json.Unmarshal(out, &plan) != nil || !plan.RecoveryPoint.Equal(taken) || plan.Snapshot == nil ||
		!strings.Contains(plan.Text, "Restore plan (aurora)") {
		t.Fatalf("plan: %s %v", out, err)
	}
	out, lines, err := call(t, s, snapshotapi.ActionRestoreApply, snapshotapi.RestoreArgs{SnapshotID: "tda-prod-aurora-manual-x",
		NewName: "prod-r", Confirmed: plan.RecoveryPoint})
	var rep snapshotapi.RestoreReport
	if err != nil || json.Unmarshal(out, &rep) != nil || rep.Error != "" || rep.Name != "prod-r" || rep.Connection == nil ||
		rep.Connection.Cluster != "prod-r" || len(lines) != 1 || !strings.Contains(rep.Text, "Restored into prod-r") {
		t.Fatalf("apply: %s %v %q", out, err, lines)
	}

	// A manual snapshot, then the listing holds it with the retention's verdict.
	out, _, err = call(t, s, snapshotapi.ActionCreate, snapshotapi.CreateArgs{Wait: true})
	var created snapshotapi.CreateResult
	if err != nil || json.Unmarshal(out, &created) != nil || created.Snapshot.Trigger != "manual" ||
		created.Snapshot.Tags["app_version"] != "1.4.2" || created.RestoreName == "" {
		t.Fatalf("create: %s %v", out, err)
	}
	out, _, err = call(t, s, snapshotapi.ActionList, nil)
	var list snapshotapi.ListResult
	if err != nil || json.Unmarshal(out, &list) != nil || list.Listing.Target != "prod-aurora" || !strings.Contains(list.Text, created.Snapshot.ID) {
		t.Fatalf("list: %s %v", out, err)
	}
	found := false
	for _, tier := range list.Listing.Tiers {
		for _, sn := range tier.Snapshots {
			found = found || (sn.ID == created.Snapshot.ID && sn.Keep && sn.Managed)
		}
	}
	if !found {
		t.Fatalf("the manual snapshot is not listed as kept: %+v", list.Listing.Tiers)
	}
}

// The repair actions on real PostgreSQL databases: the app's log lines (not a file) name the
// rows, the plan is what repair.plan showed, and repair.apply refuses to write a plan that is
// not the one confirmed; the confirmed one is written after a pre-repair snapshot.
func TestRepairActionsOnPostgres(t *testing.T) {
	srv := pgtest.Require(t)
	ctx := context.Background()
	live := srv.CreateDatabase(t, "tda_ract_live")
	restored := srv.CreateDatabase(t, "tda_ract_r")
	at := time.Date(2026, 11, 29, 22, 57, 1, 100e6, time.UTC)
	for db, hash := range map[string]string{live: "attacker", restored: "old"} {
		stamp := at.Add(-24 * time.Hour)
		if db == live {
			stamp = at
		}
		conn := srv.Connect(t, db)
		if _, err := conn.Exec(ctx, `CREATE TABLE users (id int PRIMARY KEY, password_hash text, updated_at timestamp)`); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO users VALUES (1, $1, $2), (2, $1, $2), (3, 'untouched', $3)`,
			hash, stamp, at.Add(-48*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	conf, diags := sdk.ParseConfig(Spec, sdktest.Config(t, Component(), `poll_interval = "20ms"`+pgBlock(srv, live, t.TempDir())))
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	snk, err := New(conf, sdk.Resources{Instance: "sink.snapshot.guard", DataDir: filepath.Join(t.TempDir(), "sink.snapshot.guard")})
	if err != nil {
		t.Fatal(err)
	}
	s := snk.(*Sink)
	t.Cleanup(func() { _ = s.Close(context.Background()) })

	args := snapshotapi.RepairArgs{Restore: restored, From: at.Add(-time.Second), Until: at.Add(time.Minute),
		EventTypes: []string{"password_changed"}, Events: []string{
			"[2026-11-29 22:57:01,100] INFO in auth: password_changed user_id=1 actor=m",
			"[2026-11-29 22:57:01,100] INFO in auth: password_changed user_id=2 actor=m",
		}}
	out, _, err := call(t, s, snapshotapi.ActionRepairPlan, args)
	var plan snapshotapi.RepairOutcome
	if err != nil || json.Unmarshal(out, &plan) != nil || plan.Pending != 2 || plan.Live != live || plan.Table != "users" ||
		!strings.Contains(plan.PlanText, "Repair plan for table users") {
		t.Fatalf("plan: %s %v", out, err)
	}

	stale := args
	stale.ConfirmedSummary = "0 to repair, 0 missing to re-insert, 0 skipped (listed above with why), 2 already as restored."
	if _, _, err := call(t, s, snapshotapi.ActionRepairApply, stale); sdk.ActionErrorKindOf(err) != sdk.ActionErrConflict {
		t.Fatalf("a plan other than the confirmed one: %v", err)
	}
	wrong := args
	wrong.Confirm = "not-" + live
	if _, _, err := call(t, s, snapshotapi.ActionRepairApply, wrong); sdk.ActionErrorKindOf(err) != sdk.ActionErrInvalid ||
		!strings.Contains(err.Error(), "to confirm the repair") {
		t.Fatalf("a wrong live name: %v", err)
	}
	var hash string
	if err := srv.Connect(t, live).QueryRow(ctx, `SELECT password_hash FROM users WHERE id = 1`).Scan(&hash); err != nil || hash != "attacker" {
		t.Fatalf("a refused apply wrote: %q %v", hash, err)
	}

	args.ConfirmedSummary, args.Confirm = plan.Summary, live
	out, lines, err := call(t, s, snapshotapi.ActionRepairApply, args)
	var done snapshotapi.RepairOutcome
	if err != nil || json.Unmarshal(out, &done) != nil || done.Error != "" || !done.Applied || done.PreRepairSnapshot == "" ||
		done.Audit["repaired"] != "2" || len(lines) != 1 || !strings.Contains(lines[0], "Pre-repair snapshot") {
		t.Fatalf("apply: %s %v %q", out, err, lines)
	}
	if err := srv.Connect(t, live).QueryRow(ctx, `SELECT password_hash FROM users WHERE id = 2`).Scan(&hash); err != nil || hash != "old" {
		t.Fatalf("after the repair: %q %v", hash, err)
	}
	// A second run finds nothing left to do.
	out, _, err = call(t, s, snapshotapi.ActionRepairPlan, args)
	if err != nil || json.Unmarshal(out, &plan) != nil || plan.Pending != 0 {
		t.Fatalf("second plan: %s %v", out, err)
	}
}
