package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/plugins/snapshot/aurora/rdstest"
	"github.com/tda-dev/tda/sdk"
)

// TestRestoreFromAnIncident lists an Aurora cluster's recovery points against an incident
// read from the audit trail, restores the default (the point in time just before the first
// event), is refused the anomaly snapshot taken during the incident without -allow-during,
// and restores it with it; the report gives the connection and the next steps.
func TestRestoreFromAnIncident(t *testing.T) {
	srv := rdstest.NewServer(t)
	srv.AddCluster("prod-aurora", "aurora-postgresql")
	first := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Second).Add(300 * time.Millisecond)
	const fp = "3f9a0c1d5e6f7a8b9c0d1e2f3a4b5c6d"
	anomaly := "tda-prod-aurora-anomaly-" + first.Format("20060102t150405z") + "-3f9a0c1d"
	srv.AddSnapshot(anomaly, "prod-aurora", first.Add(4200*time.Millisecond), map[string]string{"created_by": "tda",
		"trigger": "anomaly", "alert_fingerprint": fp, "alert_rule": "mass_password_reset"})
	srv.AddSnapshot("tda-prod-aurora-scheduled-night", "prod-aurora", first.Add(-20*time.Hour),
		map[string]string{"created_by": "tda", "trigger": "scheduled"})
	cfg := snapshotConfig(t, srv)
	trail := filepath.Join(filepath.Dir(cfg), "alerts.jsonl")
	src, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	src = append(src, []byte(`
source "file" "app" {
  paths = ["`+filepath.Join(filepath.Dir(cfg), "*.log")+`"]
}
sink "jsonl" "audit" {
  path = "`+trail+`"
}
pipeline "detect" {
  from = [source.file.app]
  to   = [sink.jsonl.audit]
}
`)...)
	if err := os.WriteFile(cfg, src, 0o600); err != nil {
		t.Fatal(err)
	}
	ev := sdk.Event{Time: first.Add(20 * time.Second), Kind: sdk.KindAlert, Source: "file.app",
		Alert: &sdk.Alert{Rule: "mass_password_reset", Severity: "HIGH", State: sdk.StateResolved, Key: "mallory", Count: 15,
			Threshold: 10, Window: time.Minute, FirstSeen: first, LastSeen: first.Add(14 * time.Second), Fingerprint: fp}}
	line, _ := ev.MarshalJSON()
	if err := os.WriteFile(trail, append(line, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runCLI("snapshot", "list", "-config", cfg, "-incident", fp[:8])
	for _, want := range []string{
		" mass_password_reset (key mallory), first event " + first.Format(time.RFC3339Nano),
		"Default restore: point in time " + first.Truncate(time.Second).Format(time.RFC3339) + " (point in time 0.30 s before the first event)",
		"Evidence: anomaly snapshot " + anomaly + ", taken for this incident's alert (taken 4.2 s after the first event)",
		"during", "before", "-----   first event " + first.Format(time.RFC3339Nano) + "\n",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("list -incident lacks %q: %d\n%s\n%s", want, code, out, errOut)
		}
	}
	if strings.Index(out, anomaly+" (evidence)") > strings.Index(out, "-----   first event") {
		t.Errorf("the anomaly snapshot is not above the first event's line:\n%s", out)
	}
	code, out, errOut = runCLI("snapshot", "list", "-config", cfg, "-incident", fp, "-json")
	var rec ops.IncidentRecovery
	if code != 0 || json.Unmarshal([]byte(out), &rec) != nil || len(rec.Targets) != 1 || rec.Targets[0].Default == nil ||
		!rec.Targets[0].Default.PointInTime || strings.Join(rec.Evidence, ",") != anomaly {
		t.Fatalf("list -incident -json: %d\n%s\n%s", code, out, errOut)
	}

	code, out, errOut = runCLI("restore", "-config", cfg, "-incident", fp, "-snapshot", anomaly, "-to", "prod-x", "-yes", "-by", "dana")
	if code != 1 || !strings.Contains(errOut, "taken 4.2 s after the first event; may hold changes made by the incident") ||
		!strings.Contains(errOut, "pass -allow-during") || !strings.Contains(errOut, "leave out -snapshot and -to-time") {
		t.Fatalf("restore during without -allow-during: %d\n%s\n%s", code, out, errOut)
	}
	if _, ok := srv.Cluster("prod-x"); ok {
		t.Fatal("a refused restore created a cluster")
	}
	code, out, errOut = runCLI("restore", "-config", cfg, "-to-time", first.Add(time.Second).Format(time.RFC3339), "-incident", fp,
		"-to", "prod-x", "-yes", "-by", "dana")
	if code != 1 || !strings.Contains(errOut, "may hold changes made by the incident") {
		t.Fatalf("restore to a time during without -allow-during: %d\n%s\n%s", code, out, errOut)
	}

	code, out, errOut = runCLI("restore", "-config", cfg, "-incident", fp, "-to", "prod-restored", "-yes", "-by", "dana",
		"-reason", "undo the password resets")
	for _, want := range []string{"to point in time    " + first.Truncate(time.Second).Format(time.RFC3339),
		"relative to it      point in time 0.30 s before the first event",
		"connection      host prod-restored.cluster-abc123.eu-west-1.rds.amazonaws.com, port 5432, cluster prod-restored, database app, user app_admin",
		"Next steps:", "1. Verify: connect to", "the password hashes of the affected users",
		"2. Then repair: tda repair -config FILE -restore prod-restored -incident " + fp} {
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("restore the default lacks %q: %d\n%s\n%s", want, code, out, errOut)
		}
	}
	t.Logf("tda restore -incident:\n%s", out)
	code, out, errOut = runCLI("restore", "-config", cfg, "-incident", fp, "-snapshot", anomaly, "-allow-during",
		"-to", "prod-evidence", "-yes", "-by", "dana", "-reason", "look at what the attacker wrote")
	if code != 0 || !strings.Contains(out, "relative to it      taken 4.2 s after the first event") {
		t.Fatalf("restore during with -allow-during: %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI("audit", "-config", cfg, "-action", "restore", "-json")
	var entries []ops.AuditEntry
	if code != 0 || json.Unmarshal([]byte(out), &entries) != nil || len(entries) != 2 {
		t.Fatalf("audit: %d\n%s\n%s", code, out, errOut)
	}
	if e := entries[0]; e.Target != anomaly+" -> prod-evidence" || e.Detail["phase"] != "during" || e.Detail["confirmed"] == "" ||
		e.Detail["fingerprint"] != fp || e.Detail["incident"] == "" || e.Detail["source"] != "prod-aurora" {
		t.Errorf("audit of the confirmed restore: %+v", e)
	}
	if e := entries[1]; !strings.HasPrefix(e.Target, "point in time "+first.Truncate(time.Second).Format(time.RFC3339)) ||
		!strings.HasSuffix(e.Target, " -> prod-restored") || e.Detail["phase"] != "before" || !strings.Contains(e.Detail["rto_seconds"], ".") {
		t.Errorf("audit of the default restore: %+v", e)
	}
}
