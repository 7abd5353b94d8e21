package snapshot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/snapshot/aurora/rdstest"
	"github.com/tda-dev/tda/plugins/snapshot/internal/pgtest"
	"github.com/tda-dev/tda/plugins/snapshot/provider"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
	"github.com/tda-dev/tda/sdk/snapshotapi"
)

// openManager builds a manager from an HCL block body exactly as the CLI does.
func openManager(t *testing.T, src string) *Manager {
	t.Helper()
	conf, diags := sdk.ParseConfig(Spec, sdktest.Config(t, Component(), src))
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	data := t.TempDir()
	settings, err := ParseSettings(conf, sdk.Resources{Instance: "sink.snapshot.guard", DataDir: filepath.Join(data, "sink.snapshot.guard")})
	if err != nil {
		t.Fatal(err)
	}
	m, err := Open(context.Background(), settings, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m
}

func auroraManager(t *testing.T, srv *rdstest.Server) *Manager {
	awsEnv(t)
	return openManager(t, `
app_version   = "1.4.2"
poll_interval = "2ms"
aurora {
  cluster  = "prod-aurora"
  region   = "eu-west-1"
  endpoint = "`+srv.URL+`"
}
retention {
  keep_daily       = 2
  keep_weekly      = 1
  keep_monthly     = 0
  keep_anomaly_for = "7d"
}`)
}

func tagsOf(trigger string, at time.Time) map[string]string {
	return map[string]string{provider.TagTrigger: trigger, provider.TagCreatedBy: provider.CreatedByTDA,
		provider.TagCreatedAt: at.Format(time.RFC3339), provider.TagAppVersion: "1.4.1"}
}

func TestListTiersAndRPO(t *testing.T) {
	srv := rdstest.NewServer(t)
	c := srv.AddCluster("prod-aurora", "aurora-postgresql")
	now := time.Now().UTC()
	srv.AddSnapshot("sched-1", "prod-aurora", now.Add(-26*time.Hour), tagsOf(provider.TriggerScheduled, now.Add(-26*time.Hour)))
	srv.AddSnapshot("sched-2", "prod-aurora", now.Add(-2*time.Hour), tagsOf(provider.TriggerScheduled, now.Add(-2*time.Hour)))
	srv.AddSnapshot("anom-1", "prod-aurora", now.Add(-10*time.Minute), tagsOf(provider.TriggerAnomaly, now.Add(-10*time.Minute)))
	srv.AddSnapshot("dba-manual", "prod-aurora", now.Add(-90*24*time.Hour), map[string]string{"owner": "dba"})
	m := auroraManager(t, srv)

	l, err := m.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, tier := range l.Tiers {
		names = append(names, tier.Name)
	}
	if got := strings.Join(names, ","); got != "point-in-time,scheduled,pre-migration,anomaly,manual,not created by tda" {
		t.Fatalf("tiers %s", got)
	}
	pitr, sched, anom := l.Tiers[0], l.Tiers[1], l.Tiers[3]
	if d := pitr.RPO - l.Now.Sub(c.Latest); d > time.Second || d < -time.Second || pitr.Window == nil {
		t.Fatalf("point-in-time RPO %v, want now - latest restorable time", pitr.RPO)
	}
	if d := sched.RPO - 2*time.Hour; d > 5*time.Second || d < -5*time.Second || len(sched.Snapshots) != 2 {
		t.Fatalf("scheduled tier RPO %v (%d snapshots), want the age of the newest, 2h", sched.RPO, len(sched.Snapshots))
	}
	if anom.Snapshots[0].Snapshot.ID != "anom-1" || l.Quota == nil || l.Quota.Used != 4 {
		t.Fatalf("anomaly tier %+v quota %+v", anom, l.Quota)
	}
	var out bytes.Buffer
	WriteListing(&out, l)
	for _, want := range []string{"Quota: ManualClusterSnapshots 4 of 100 used", "point-in-time       RPO 3m",
		"scheduled           RPO 2h       2 snapshot(s)", "pre-migration       RPO -        no snapshots",
		"dba-manual", "keep: not created by tda (never deleted)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("listing lacks %q:\n%s", want, out.String())
		}
	}
}

func TestPruneDeletesOnlyWhatPolicyDrops(t *testing.T) {
	srv := rdstest.NewServer(t)
	srv.AddCluster("prod-aurora", "aurora-postgresql")
	now := time.Now().UTC()
	day := 24 * time.Hour
	for i := 0; i < 10; i++ {
		at := now.Add(-time.Duration(i) * day)
		srv.AddSnapshot(fmt.Sprintf("sched-%d", i), "prod-aurora", at, tagsOf(provider.TriggerScheduled, at))
	}
	srv.AddSnapshot("anom-old", "prod-aurora", now.Add(-8*day), tagsOf(provider.TriggerAnomaly, now.Add(-8*day)))
	srv.AddSnapshot("dba-manual", "prod-aurora", now.Add(-300*day), map[string]string{"owner": "dba"})
	m := auroraManager(t, srv)
	ctx := context.Background()

	dry, err := m.Prune(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	WritePrune(&out, m, dry)
	if len(srv.Requests()) == 0 || strings.Contains(strings.Join(srv.Actions(), ","), "Delete") {
		t.Fatalf("dry run deleted: %v", srv.Actions())
	}
	text := out.String()
	for _, want := range []string{"Dry run: nothing is deleted.", "keep_daily 2, keep_weekly 1, keep_monthly 0",
		"anom-old", "delete  anomaly snapshot older than 7d", "dba-manual", "keep    not created by tda",
		"sched-0", "keep    daily snapshot, weekly snapshot"} {
		if !strings.Contains(text, want) {
			t.Errorf("prune output lacks %q:\n%s", want, text)
		}
	}

	rep, err := m.Prune(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	left := map[string]bool{}
	for i := 0; i < 10; i++ {
		_, ok := srv.Snapshot(fmt.Sprintf("sched-%d", i))
		left[fmt.Sprintf("sched-%d", i)] = ok
	}
	_, manualLeft := srv.Snapshot("dba-manual")
	_, anomLeft := srv.Snapshot("anom-old")
	if !left["sched-0"] || !left["sched-1"] || !manualLeft || anomLeft || len(rep.Deleted) < 7 {
		t.Fatalf("after prune: scheduled %v, manual %v, old anomaly %v, deleted %v", left, manualLeft, anomLeft, rep.Deleted)
	}
	for _, r := range srv.Requests() {
		if r.Action == "DeleteDBClusterSnapshot" && r.Params.Get("DBClusterSnapshotIdentifier") == "dba-manual" {
			t.Fatal("a snapshot tda did not take was deleted")
		}
	}
}

func TestRestorePlanConfirmAndReport(t *testing.T) {
	srv := rdstest.NewServer(t)
	c := srv.AddCluster("prod-aurora", "aurora-postgresql")
	taken := time.Now().UTC().Add(-40 * time.Minute).Truncate(time.Second)
	srv.AddSnapshot("tda-prod-aurora-anomaly-x", "prod-aurora", taken, tagsOf(provider.TriggerAnomaly, taken))
	m := auroraManager(t, srv)
	ctx := context.Background()

	var shown RestorePlan
	_, err := m.Restore(ctx, RestoreOptions{SnapshotID: "tda-prod-aurora-anomaly-x", NewName: "prod-restored",
		Confirm: func(p RestorePlan) (bool, error) { shown = p; return false, nil }})
	if !errors.Is(err, ErrAborted) || shown.Snapshot == nil || !shown.RecoveryPoint.Equal(taken) {
		t.Fatalf("declined restore: %v, plan %+v", err, shown)
	}
	for _, a := range srv.Actions() {
		if strings.HasPrefix(a, "Restore") || a == "CreateDBInstance" {
			t.Fatalf("a declined restore called %s", a)
		}
	}

	rep, err := m.Restore(ctx, RestoreOptions{SnapshotID: "tda-prod-aurora-anomaly-x", NewName: "prod-restored"})
	if err != nil {
		t.Fatal(err)
	}
	if d := rep.RPO - 40*time.Minute; d < 0 || d > 10*time.Second || rep.RTO <= 0 {
		t.Fatalf("RPO %v RTO %v", rep.RPO, rep.RTO)
	}
	var out bytes.Buffer
	WriteRestoreReport(&out, rep)
	for _, want := range []string{"Restored into prod-restored.", "instance prod-restored-instance-1 (db.r6g.large)",
		"RPO achieved    40m", "RTO", "hashed_password"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}

	for _, tt := range []struct {
		opt  RestoreOptions
		want string
	}{
		{RestoreOptions{SnapshotID: "tda-prod-aurora-anomaly-x", NewName: "prod-aurora"}, "restores never overwrite"},
		{RestoreOptions{SnapshotID: "tda-prod-aurora-anomaly-x"}, "with -to"},
		{RestoreOptions{NewName: "x"}, "-snapshot ID"},
		{RestoreOptions{ToTime: c.Earliest.Add(-time.Hour), NewName: "x"}, "outside the restorable window"},
		{RestoreOptions{SnapshotID: "nope", NewName: "x"}, "tda snapshot list"},
	} {
		if _, err := m.Restore(ctx, tt.opt); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("restore %+v: %v, want %q", tt.opt, err, tt.want)
		}
	}
}

func TestMigrateRun(t *testing.T) {
	srv := rdstest.NewServer(t)
	srv.AddCluster("prod-aurora", "aurora-postgresql")
	m := auroraManager(t, srv)
	ctx := context.Background()
	restoreCmd := func(id string) string {
		return "tda restore -config tda.hcl -snapshot " + id + " -to prod-aurora-before"
	}

	// The command sees the snapshot, which was available before it ran.
	var stdout bytes.Buffer
	rep, err := m.Migrate(ctx, MigrateOptions{Command: []string{"sh", "-c", `echo "migrating after $TDA_SNAPSHOT_ID"`},
		Stdout: &stdout, Stderr: &stdout, RestoreCommand: restoreCmd, AppVersion: "1.5.0"})
	if err != nil || !rep.Succeeded() || rep.ExitCode != 0 {
		t.Fatalf("migration: %v %+v", err, rep)
	}
	if rep.Snapshot.Status != provider.StatusAvailable || rep.Snapshot.Trigger() != provider.TriggerPreMigration ||
		rep.Snapshot.Tags[provider.TagAppVersion] != "1.5.0" {
		t.Fatalf("pre-migration snapshot %+v", rep.Snapshot)
	}
	if strings.TrimSpace(stdout.String()) != "migrating after "+rep.Snapshot.ID {
		t.Fatalf("command output %q", stdout.String())
	}
	actions := srv.Actions()
	if actions[0] != "CreateDBClusterSnapshot" || actions[len(actions)-1] != "DescribeDBClusterSnapshots" {
		t.Fatalf("calls %v", actions)
	}

	// A failed migration says how to get back.
	time.Sleep(1100 * time.Millisecond) // identifiers have one-second resolution
	rep, err = m.Migrate(ctx, MigrateOptions{Command: []string{"sh", "-c", "exit 3"}, RestoreCommand: restoreCmd})
	if err != nil || rep.Succeeded() || rep.ExitCode != 3 ||
		rep.RestoreCommand != "tda restore -config tda.hcl -snapshot "+rep.Snapshot.ID+" -to prod-aurora-before" {
		t.Fatalf("failed migration: %v %+v", err, rep)
	}

	// A check that refuses stops everything before the snapshot.
	n := len(srv.Requests())
	_, err = m.Migrate(ctx, MigrateOptions{Command: []string{"true"},
		Checks: []Check{func(context.Context) error { return errors.New("a HIGH alert is firing") }}})
	if err == nil || !strings.Contains(err.Error(), "a HIGH alert is firing") || len(srv.Requests()) != n {
		t.Fatalf("refused check: %v (%d new calls)", err, len(srv.Requests())-n)
	}

	// Both runs are recorded.
	data, err := os.ReadFile(m.MigrationLog())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 {
		t.Fatalf("migration log:\n%s", data)
	}
	var last snapshotapi.MigrationRecord
	if err := json.Unmarshal([]byte(lines[1]), &last); err != nil || last.Outcome != "failed" || last.ExitCode != 3 ||
		last.RestoreCommand == "" {
		t.Fatalf("last record %+v %v", last, err)
	}
}

func TestPostgresRestoreToTimePicksSnapshotBefore(t *testing.T) {
	srv := pgtest.Require(t)
	db := srv.CreateDatabase(t, "tda_pick")
	conn := srv.Connect(t, db)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `CREATE TABLE t (v int); INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	m := openManager(t, `poll_interval = "20ms"`+pgBlock(srv, db, t.TempDir()))
	first, err := m.Create(ctx, CreateOptions{Trigger: provider.TriggerManual, Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	between := time.Now()
	time.Sleep(1100 * time.Millisecond)
	if _, err := conn.Exec(ctx, `INSERT INTO t VALUES (2)`); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(ctx, CreateOptions{Trigger: provider.TriggerManual, Wait: true}); err != nil {
		t.Fatal(err)
	}
	target := db + "_back"
	srv.DropOnCleanup(t, target)
	rep, err := m.Restore(ctx, RestoreOptions{ToTime: between, NewName: target})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Plan.Snapshot == nil || rep.Plan.Snapshot.ID != first.ID || !strings.Contains(rep.Plan.Note, "no point-in-time recovery") {
		t.Fatalf("plan %+v", rep.Plan)
	}
	var n int
	if err := srv.Connect(t, target).QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("restored %d rows (%v), want the 1 of the first snapshot", n, err)
	}
	t.Logf("restore of a small database: RTO %v", rep.RTO.Round(time.Millisecond))
}
