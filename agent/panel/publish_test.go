package panel

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/ops"
)

// loggedOps answers what Publish reads with every field filled, each with a value taken from
// log content or typed by an operator that a public page must not show.
type loggedOps struct {
	ops.Operations
	now time.Time
}

// secrets are the values loggedOps puts in; none may appear in any published file.
var secrets = []string{
	"203.0.113.77", "uid-55012", "mallory-7731", "EXCERPT-marker", "/var/log/origin-marker.log", "file.source-marker",
	"override-reason-marker", "log-actor-marker", "suppressor-marker", "ack-comment-marker", "degraded-marker",
	"mig-reason-marker", "decision-reason-marker", "run-command-marker", "run-error-marker", "tag-marker",
	"why-marker", "target-error-marker", "restore-reason-marker", "restore-error-marker", "endpoint-marker",
	"fp-raw-marker-0123456789abcdef", "component-reason-marker", "restore-snap-marker",
	"k3x9q2mz", // the incident id, a hash of the fingerprint
	"0a1b2c3d", // the fingerprint digits in an anomaly snapshot's id
}

func (o loggedOps) State(context.Context) (ops.SystemState, error) {
	in, _ := o.Alerts(context.Background(), ops.AlertFilter{})
	return ops.SystemState{Status: ops.StatusBlocked, Time: o.now, Agent: true,
		Reasons:  []string{"HIGH alert mass_password_reset is firing (key \"203.0.113.77\")", "override declared by log-actor-marker: override-reason-marker"},
		Blocking: in, Acknowledged: in, Degraded: []string{"sink.slack.oncall: degraded-marker"},
		Override: &ops.OverrideInfo{Actor: "log-actor-marker", Reason: "override-reason-marker", Since: o.now, Until: o.now.Add(time.Hour),
			Origin: "/var/log/origin-marker.log", Pipeline: "detect", Via: "log_line"},
		Components: []ops.ComponentHealth{{Address: "sink.slack.oncall", Reason: "component-reason-marker"}}}, nil
}

func (o loggedOps) Alerts(context.Context, ops.AlertFilter) ([]ops.Incident, error) {
	return []ops.Incident{{ID: "k3x9q2mz", Fingerprint: "fp-raw-marker-0123456789abcdef", Rule: "mass_password_reset", Severity: "HIGH", State: "firing",
		Key: "203.0.113.77", Count: 12, Threshold: 10, Window: "1m0s", FirstSeen: o.now.Add(-time.Minute), LastSeen: o.now, Updated: o.now,
		Origin: "/var/log/origin-marker.log", Source: "file.source-marker",
		Excerpt:        []string{"EXCERPT-marker password_changed user_id=uid-55012 actor=mallory-7731 ip=203.0.113.77"},
		Explanation:    "12 passwords changed by mallory-7731 (uid-55012) for ip 203.0.113.77",
		SuppressedBy:   "suppressor-marker",
		OverrideReason: "override-reason-marker", Records: 3,
		Ack: &ops.Ack{Fingerprint: "fp-raw-marker-0123456789abcdef", By: "carol", Comment: "ack-comment-marker", At: o.now}}}, nil
}

func (o loggedOps) Snapshots(context.Context) ([]ops.SnapshotTarget, error) {
	return []ops.SnapshotTarget{{Name: "guard", Kind: "postgres", Target: "orders", Error: "target-error-marker",
		Warnings: []string{"why-marker"},
		Tiers: []ops.SnapshotTier{{Name: "anomaly", Newest: o.now, Snapshots: []ops.SnapshotInfo{{ID: "tda-orders-anomaly-20261129t225705z",
			Target: "orders", Time: o.now, Status: "available", Trigger: "anomaly",
			Tags: map[string]string{"alert_rule": "tag-marker", "alert_key": "203.0.113.77"}, Why: "why-marker"},
			// An anomaly snapshot's id ends in 8 hex digits of its alert's fingerprint.
			{ID: "tda-orders-anomaly-20261129t230000z-0a1b2c3d", Target: "orders", Time: o.now, Status: "available", Trigger: "anomaly"}}}},
		LastRestore: &ops.Restore{ID: "1", Target: "guard", Source: "orders", SnapshotID: "restore-snap-marker", NewName: "orders-drill",
			By: "carol", Reason: "restore-reason-marker", Error: "restore-error-marker", Endpoint: "endpoint-marker", Status: "failed"}}}, nil
}

func (o loggedOps) Migrations(context.Context, ops.MigrationFilter) ([]ops.Migration, error) {
	return []ops.Migration{{ID: "1", Name: "V7__orders_index", Reason: "mig-reason-marker", RequestedBy: "alice", Status: "failed",
		DecidedBy: "bob", Decision: "decision-reason-marker",
		Runs: []ops.MigrationRun{{By: "alice", Command: []string{"run-command-marker"}, Outcome: "failed", Error: "run-error-marker",
			Override: "override-reason-marker"}}}}, nil
}

// TestPublishWritesNoLogValue: walking every file Publish writes, none holds any value taken
// from log content or an operator's reasons, and what is public is still there.
func TestPublishWritesNoLogValue(t *testing.T) {
	dir := t.TempDir()
	if err := Publish(context.Background(), loggedOps{now: time.Now().UTC()}, dir); err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, s := range secrets {
			if strings.Contains(string(b), s) {
				t.Errorf("%s publishes %q", filepath.Base(path), s)
			}
		}
		all.Write(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files != 4 {
		t.Errorf("%d files written, want 4", files)
	}
	for _, public := range []string{"mass_password_reset", "V7__orders_index", "tda-orders-anomaly-20261129t225705z", "tda-orders-anomaly-20261129t230000z-x", "orders-drill",
		"override declared by a log line", `"count": 12`, `"fingerprint": "alert-`} {
		if !strings.Contains(all.String(), public) {
			t.Errorf("the export lacks %q", public)
		}
	}
}

// TestExportEscapesTheAPIURL: an -api value that would end the page's attribute or add a
// policy directive is refused, and what is written into the page is escaped HTML.
func TestExportEscapesTheAPIURL(t *testing.T) {
	for _, api := range []string{
		`https://a.example"><script>alert(1)</script>`,
		`https://a.example'x`,
		`https://a.example&quot;x`,
		`https://user:pw@a.example`,
		`javascript:alert(1)`,
	} {
		if err := Export(t.TempDir(), GitHubConfig{API: api, Owner: "acme", Repo: "shop", Ref: "production"}); err == nil {
			t.Errorf("-api %q accepted", api)
		}
	}
	dir := t.TempDir()
	if err := Export(dir, GitHubConfig{API: "https://ghe.example.com:8443/api/v3", Owner: "acme", Repo: "shop", Ref: "production"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	start := strings.Index(page, `<meta http-equiv="Content-Security-Policy" content="`)
	if start < 0 {
		t.Fatal("no policy in the page")
	}
	attr := page[start+len(`<meta http-equiv="Content-Security-Policy" content="`):]
	attr = attr[:strings.Index(attr, `">`)]
	if strings.ContainsAny(attr, `"<>`) || !strings.Contains(attr, "https://ghe.example.com:8443") {
		t.Fatalf("policy attribute %q", attr)
	}
}
