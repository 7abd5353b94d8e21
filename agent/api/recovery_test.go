package api

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/ops"
)

// TestIncidentRecovery: GET /api/incidents/{id}/recovery places the snapshots against the
// incident's first event; POST /api/restores with the incident takes the default, and refuses
// a snapshot taken during the incident unless confirm_during is set.
func TestIncidentRecovery(t *testing.T) {
	f := newFixture(t, nil)
	now := time.Now().UTC()
	f.snaps.snaps = []ops.SnapshotInfo{
		{ID: "app-manual-before", Target: "app", Time: now.Add(-2 * time.Hour), Status: "available", Trigger: "manual"},
		{ID: "app-anomaly-during", Target: "app", Time: now.Add(-50 * time.Second), Status: "available", Trigger: "anomaly",
			Tags: map[string]string{"alert_fingerprint": "fp-high", "trigger": "anomaly", "created_by": "tda"}},
	}
	r := f.do(t, nil, "GET", "/api/incidents/fp-high/recovery", viewerToken, "")
	var rec ops.IncidentRecovery
	r.decode(t, &rec)
	if r.status != http.StatusOK || len(rec.Targets) != 1 || rec.Targets[0].Default == nil ||
		rec.Targets[0].Default.SnapshotID != "app-manual-before" || len(rec.Evidence) != 1 || rec.Evidence[0] != "app-anomaly-during" {
		t.Fatalf("recovery: %d %s", r.status, r.body)
	}
	if r := f.do(t, nil, "GET", "/api/incidents/nosuchthing/recovery", viewerToken, ""); r.status != http.StatusNotFound {
		t.Fatalf("unknown incident: %d %s", r.status, r.body)
	}
	if r := f.do(t, nil, "POST", "/api/alerts/fp-high/ack", aliceToken, `{"comment":"restoring"}`); r.status != http.StatusOK {
		t.Fatalf("ack: %d %s", r.status, r.body)
	}

	during := `{"incident":"fp-high","snapshot":"app-anomaly-during","new_name":"app_x","confirm":"app","reason":"look"}`
	r = f.do(t, nil, "POST", "/api/restores", aliceToken, during)
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "may hold changes made by the incident") ||
		!strings.Contains(r.body, "confirm_during") {
		t.Fatalf("during without confirm_during: %d %s", r.status, r.body)
	}
	r = f.do(t, nil, "POST", "/api/restores", aliceToken, `{"incident":"fp-high","new_name":"app_restored","confirm":"app","reason":"undo"}`)
	var started ops.Restore
	r.decode(t, &started)
	if r.status != http.StatusAccepted || started.SnapshotID != "app-manual-before" || started.Phase != ops.PhaseBefore {
		t.Fatalf("default restore: %d %s", r.status, r.body)
	}
	if req := <-f.snaps.done; req.SnapshotID != "app-manual-before" {
		t.Fatalf("restored %+v", req)
	}
	r = f.do(t, nil, "POST", "/api/restores", aliceToken, strings.Replace(during, `"reason"`, `"confirm_during":true,"reason"`, 1))
	if r.status != http.StatusAccepted {
		t.Fatalf("during with confirm_during: %d %s", r.status, r.body)
	}
	if req := <-f.snaps.done; req.SnapshotID != "app-anomaly-during" {
		t.Fatalf("restored %+v", req)
	}
}
