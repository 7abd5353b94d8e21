package snapshot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/snapshot/aurora/rdstest"
	"github.com/tda-dev/tda/plugins/snapshot/internal/pgtest"
	"github.com/tda-dev/tda/plugins/snapshot/postgres"
	"github.com/tda-dev/tda/plugins/snapshot/provider"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

func alertEvent(severity, fingerprint string, firstSeen time.Time) sdk.Event {
	return sdk.Event{Kind: sdk.KindAlert, Time: firstSeen.Add(30 * time.Second), Alert: &sdk.Alert{
		Rule: "mass_password_reset", Severity: severity, State: sdk.StateFiring, Key: "app",
		Count: 14, Threshold: 10, Window: time.Minute, FirstSeen: firstSeen, LastSeen: firstSeen.Add(30 * time.Second),
		Fingerprint: fingerprint}}
}

func tickEvent(at time.Time) sdk.Event {
	return sdk.Event{Kind: sdk.KindTick, Time: at, Fields: map[string]string{
		TickFieldSchedule: "nightly", TickFieldScheduledAt: at.Format(time.RFC3339Nano)}}
}

func pgBlock(srv pgtest.Server, db, dir string) string {
	return fmt.Sprintf(`
postgres {
  host     = %q
  port     = %d
  user     = %q
  password = %q
  database = %q
  sslmode  = "disable"
  dir      = %q
}`, srv.Host, srv.Port, srv.User, srv.Password, db, dir)
}

func readDumps(t *testing.T, srv pgtest.Server, db, dir string) []provider.Snapshot {
	t.Helper()
	p, err := postgres.New(postgres.Config{Host: srv.Host, Port: srv.Port, User: srv.User, Password: srv.Password,
		Database: db, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	list, err := p.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func TestSinkPostgresAnomalyAndScheduled(t *testing.T) {
	srv := pgtest.Require(t)
	db := srv.CreateDatabase(t, "tda_sink")
	conn := srv.Connect(t, db)
	if _, err := conn.Exec(context.Background(), `CREATE TABLE users (id int PRIMARY KEY, hashed_password text)`); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Setenv(AppVersionEnv, "2.0.1")
	s := sdktest.NewSink(t, Component(), `
when_severity    = ["HIGH"]
anomaly_interval = "1h"
poll_interval    = "20ms"
`+pgBlock(srv, db, dir))

	incident := time.Now().UTC().Add(-time.Minute).Truncate(time.Millisecond)
	start := time.Now()
	if err := s.Write(alertEvent(sdk.SeverityHigh, "3f9a0c1d5e7b", incident)); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	list := readDumps(t, srv, db, dir)
	if len(list) != 1 {
		t.Fatalf("%d snapshots after the alert, want 1", len(list))
	}
	snap := list[0]
	if snap.Status != provider.StatusCreating && snap.Status != provider.StatusAvailable {
		t.Fatalf("anomaly snapshot is %s (%s)", snap.Status, snap.Detail)
	}
	t.Logf("anomaly snapshot %s exists %v after the alert was written (status %s)", snap.ID, took.Round(time.Millisecond), snap.Status)
	if snap.Trigger() != provider.TriggerAnomaly || snap.Tags[provider.TagAlertFingerprint] != "3f9a0c1d5e7b" ||
		snap.Tags[provider.TagAlertRule] != "mass_password_reset" || snap.Tags[provider.TagAppVersion] != "2.0.1" ||
		!snap.Managed() || snap.Tags[provider.TagCreatedAt] == "" {
		t.Fatalf("anomaly snapshot tags %v", snap.Tags)
	}
	if !strings.HasSuffix(snap.ID, "-3f9a0c1d") || !strings.Contains(snap.ID, incident.Format("20060102t150405z")) {
		t.Fatalf("anomaly snapshot id %s", snap.ID)
	}

	// Within anomaly_interval: no second snapshot, for another incident or a reminder.
	if err := s.Write(alertEvent(sdk.SeverityHigh, "aaaabbbbcccc", time.Now())); err != nil {
		t.Fatal(err)
	}
	// Severities not chosen, suppressed alerts and plain logs take none either.
	low := alertEvent(sdk.SeverityMedium, "dddd", time.Now())
	suppressed := alertEvent(sdk.SeverityHigh, "eeee", time.Now())
	suppressed.Alert.State = sdk.StateSuppressed
	if err := s.Write(low, suppressed, sdk.Event{Kind: sdk.KindLog, Line: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if n := len(readDumps(t, srv, db, dir)); n != 1 {
		t.Fatalf("%d snapshots, want still 1", n)
	}

	// A batch of ticks (a catch-up) takes one scheduled snapshot, for the latest tick; a
	// retried batch finds it instead of taking another.
	tick := time.Now().UTC().Truncate(time.Second)
	batch := sdk.Batch{ID: 42, Events: []sdk.Event{tickEvent(tick.Add(-time.Hour)), tickEvent(tick)}}
	if err := s.WriteBatch(batch); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteBatch(batch); err != nil {
		t.Fatalf("retried tick batch: %v", err)
	}
	if err := s.Close(); err != nil { // waits for availability and the prune
		t.Fatal(err)
	}
	list = readDumps(t, srv, db, dir)
	if len(list) != 2 {
		t.Fatalf("%d snapshots, want the anomaly and one scheduled: %+v", len(list), list)
	}
	for _, sn := range list {
		if sn.Status != provider.StatusAvailable {
			t.Fatalf("snapshot %s is %s after Close", sn.ID, sn.Status)
		}
		if sn.Trigger() == provider.TriggerScheduled && !strings.Contains(sn.ID, tick.Format("20060102t150405z")) {
			t.Fatalf("scheduled snapshot %s not named after the latest tick", sn.ID)
		}
	}
}

func TestSinkRestartKeepsAnomalyInterval(t *testing.T) {
	srv := rdstest.NewServer(t)
	srv.AddCluster("prod-aurora", "aurora-postgresql")
	awsEnv(t)
	cfg := `
anomaly_interval = "10m"
poll_interval    = "2ms"
aurora {
  cluster  = "prod-aurora"
  region   = "eu-west-1"
  endpoint = "` + srv.URL + `"
}`
	first := sdktest.NewSink(t, Component(), cfg)
	if err := first.Write(alertEvent(sdk.SeverityHigh, "f1f1f1f1", time.Now())); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	// A restarted sink learns the last anomaly snapshot from RDS.
	second := sdktest.NewSink(t, Component(), cfg)
	if err := second.Write(alertEvent(sdk.SeverityHigh, "f2f2f2f2", time.Now())); err != nil {
		t.Fatal(err)
	}
	creates := 0
	for _, r := range srv.Requests() {
		if r.Action == "CreateDBClusterSnapshot" {
			creates++
			if v, _ := r.Tag(provider.TagTrigger); v != provider.TriggerAnomaly {
				t.Fatalf("trigger tag %q", v)
			}
			if v, _ := r.Tag(provider.TagAlertFingerprint); v != "f1f1f1f1" {
				t.Fatalf("fingerprint tag %q", v)
			}
		}
	}
	if creates != 1 {
		t.Fatalf("%d anomaly snapshots within anomaly_interval across a restart, want 1", creates)
	}
}

func TestSinkErrorsRetryOrGiveUp(t *testing.T) {
	srv := rdstest.NewServer(t)
	srv.AddCluster("prod-aurora", "aurora-postgresql")
	awsEnv(t)
	cfg := func(cluster string) string {
		return `
poll_interval = "2ms"
aurora {
  cluster  = "` + cluster + `"
  region   = "eu-west-1"
  endpoint = "` + srv.URL + `"
}`
	}
	// A stopped cluster may be started: retry.
	srv.SetClusterStatus("prod-aurora", "stopped")
	s := sdktest.NewSink(t, Component(), cfg("prod-aurora"))
	err := s.Write(tickEvent(time.Now()))
	if err == nil || sdk.IsPermanent(err) || !strings.Contains(err.Error(), "start it if it is stopped") {
		t.Fatalf("stopped cluster: %v", err)
	}
	srv.SetClusterStatus("prod-aurora", "available")
	if err := s.Write(tickEvent(time.Now())); err != nil {
		t.Fatalf("after the cluster is back: %v", err)
	}
	// A cluster that does not exist will not appear by retrying.
	s2 := sdktest.NewSink(t, Component(), cfg("no-such-cluster"))
	err = s2.Write(alertEvent(sdk.SeverityHigh, "abcd", time.Now()))
	if !sdk.IsPermanent(err) || !strings.Contains(err.Error(), "check cluster and region") {
		t.Fatalf("missing cluster: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"no provider", `when_severity = ["HIGH"]`, "add an aurora"},
		{"both providers", "aurora {\n cluster = \"a\"\n}\npostgres {\n database = \"b\"\n}", "keep either the aurora or the postgres block"},
		{"severity", "when_severity = [\"URGENT\"]\npostgres {\n database = \"b\"\n}", `1:17: Invalid when_severity: unknown severity "URGENT"`},
		{"cluster name", "aurora {\n  cluster = \"prod_db\"\n}", `2:13: Invalid cluster: identifier "prod_db" may hold only letters`},
		{"typo", "postgres {\n  databse = \"b\"\n}", `Did you mean "database"?`},
		{"negative keep", "postgres {\n database = \"b\"\n}\nretention {\n keep_daily = -1\n}", "keep_daily must not be negative"},
		{"probe too often", "probe_interval = \"2s\"\npostgres {\n database = \"b\"\n}", `1:18: Invalid probe_interval: probe_interval must be at least 10s`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(sdktest.Validate(t, Component(), tt.src), "\n")
			if !strings.Contains(got, tt.want) {
				t.Fatalf("diagnostics %q do not contain %q", got, tt.want)
			}
		})
	}
	if d := sdktest.Validate(t, Component(), "postgres {\n database = \"b\"\n}"); len(d) != 0 {
		t.Fatalf("valid config: %v", d)
	}
}

func TestDumpDirDefault(t *testing.T) {
	data := t.TempDir()
	inst := filepath.Join(data, "sink.snapshot.guard")
	conf, diags := sdk.ParseConfig(Spec, sdktest.Config(t, Component(), "postgres {\n database = \"app\"\n}"))
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	s, err := ParseSettings(conf, sdk.Resources{Instance: "sink.snapshot.guard", DataDir: inst})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(data, "snapshots", "guard"); s.Postgres.Dir != want || s.Name != "guard" {
		t.Fatalf("dump dir %s (name %s), want %s", s.Postgres.Dir, s.Name, want)
	}
	if s.Retention.Daily != 7 || s.Retention.Weekly != 4 || s.Retention.Monthly != 3 {
		t.Fatalf("default retention %+v", s.Retention)
	}
}

// awsEnv gives the SDK static credentials and keeps it away from the machine's AWS config.
func awsEnv(t *testing.T) {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	_ = os.Unsetenv("AWS_ENDPOINT_URL")
}

// The sink records the incidents its alerts open and resolve, for retention's pins (see
// TestPruneKeepsTheSnapshotAnOpenIncidentNeeds), in the instance's data directory, where a
// restarted sink and the CLI find them.
func TestSinkRecordsOpenIncidents(t *testing.T) {
	srv := rdstest.NewServer(t)
	srv.AddCluster("prod-aurora", "aurora-postgresql")
	awsEnv(t)
	cfg := `
poll_interval = "2ms"
aurora {
  cluster  = "prod-aurora"
  region   = "eu-west-1"
  endpoint = "` + srv.URL + `"
}`
	dir := t.TempDir()
	began := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	s := sdktest.NewSink(t, Component(), cfg, sdktest.WithDataDir(dir))
	if err := s.Write(alertEvent(sdk.SeverityHigh, "f1f1f1f1", began)); err != nil {
		t.Fatal(err)
	}
	list, err := newOpenIncidents(dir).list()
	if err != nil || len(list) != 1 || list[0].Fingerprint != "f1f1f1f1" || !list[0].Began.Equal(began) {
		t.Fatalf("open incidents after the alert: %+v %v", list, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	again := sdktest.NewSink(t, Component(), cfg, sdktest.WithDataDir(dir))
	if err := again.Write(alertState(alertEvent(sdk.SeverityHigh, "f1f1f1f1", began), sdk.StateResolved)); err != nil {
		t.Fatal(err)
	}
	if list, err := newOpenIncidents(dir).list(); err != nil || len(list) != 0 {
		t.Fatalf("open incidents after the resolution: %+v %v", list, err)
	}
}
