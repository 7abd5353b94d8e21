package api

import (
	"context"
	"encoding/csv"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/sdk"
)

func (f *fixture) appendTrail(t *testing.T, lines ...string) {
	t.Helper()
	fh, err := os.OpenFile(f.trail, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.WriteString(strings.Join(lines, "")); err != nil {
		t.Fatal(err)
	}
}

func updateLine(fp string, count int64, entities map[string][]string) string {
	ev := sdk.IncidentUpdate{Fingerprint: fp, Rule: "mass_password_reset", Count: count, Entities: entities}.
		Event(time.Now(), "file.app", "/var/log/app.log")
	b, _ := ev.MarshalJSON()
	return string(b) + "\n"
}

// TestIncidentEndpoints walks an incident through the API: listed and searched, shown with
// its live count, timeline and entities, exported as CSV and JSON, acknowledged (the state is
// then "acknowledged", never "normal"), resolved, closed with a note; refusals are 4xx with
// a message.
func TestIncidentEndpoints(t *testing.T) {
	f := newFixture(t, nil)
	f.appendTrail(t, updateLine("fp-high", 15, map[string][]string{
		"user_id": {"7", "8"}, "ip": {"203.0.113.9"}, "actor": {"=HYPERLINK(\"x\")"}}))

	var list []ops.Incident
	if r := f.do(t, nil, "GET", "/api/incidents?q=mass_password", viewerToken, ""); r.status != 200 {
		t.Fatalf("list: %d %s", r.status, r.body)
	} else {
		r.decode(t, &list)
	}
	if len(list) != 1 || list[0].Fingerprint != "fp-high" || list[0].Count != 15 || list[0].Status != ops.IncidentOpen {
		t.Fatalf("search: %+v", list)
	}
	id := list[0].ID
	if r := f.do(t, nil, "GET", "/api/incidents?status=firing", viewerToken, ""); r.status != 400 {
		t.Fatalf("bad status: %d %s", r.status, r.body)
	}
	if r := f.do(t, nil, "GET", "/api/incidents/zzzzzzzz", viewerToken, ""); r.status != 404 || !strings.Contains(r.body, "tda incidents") {
		t.Fatalf("unknown id: %d %s", r.status, r.body)
	}

	var d ops.IncidentDetail
	f.do(t, nil, "GET", "/api/incidents/"+id, viewerToken, "").decode(t, &d)
	if d.ID != id || d.Entities.Total != 4 || len(d.Timeline) != 2 || d.Timeline[1].Count != 15 ||
		len(d.Explained.Steps) == 0 || d.Explained.Steps[0].Action != ops.StepAcknowledge {
		t.Fatalf("detail: %+v", d)
	}

	r := f.do(t, nil, "GET", "/api/incidents/"+id+"/entities.csv", viewerToken, "")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") ||
		!strings.Contains(r.header.Get("Content-Disposition"), "incident-"+id+"-entities.csv") {
		t.Fatalf("csv: %d %v", r.status, r.header)
	}
	rows, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"field", "value"}, {"actor", `'=HYPERLINK("x")`}, {"ip", "203.0.113.9"}, {"user_id", "7"}, {"user_id", "8"}}
	if len(rows) != len(want) {
		t.Fatalf("csv rows: %q", rows)
	}
	for i := range want {
		if strings.Join(rows[i], "|") != strings.Join(want[i], "|") {
			t.Fatalf("csv row %d: %q, want %q", i, rows[i], want[i])
		}
	}
	var ents ops.Entities
	f.do(t, nil, "GET", "/api/incidents/"+id+"/entities.json", viewerToken, "").decode(t, &ents)
	if strings.Join(ents.Fields["user_id"], ",") != "7,8" {
		t.Fatalf("json entities: %+v", ents)
	}

	// Close before the burst ended: refused, and said why.
	if r := f.do(t, nil, "POST", "/api/incidents/"+id+"/close", bobToken, `{"note":"done"}`); r.status != http.StatusConflict ||
		!strings.Contains(r.body, "resolved") {
		t.Fatalf("early close: %d %s", r.status, r.body)
	}
	if r := f.do(t, nil, "POST", "/api/incidents/"+id+"/ack", bobToken, `{}`); r.status != 400 {
		t.Fatalf("ack without reason: %d %s", r.status, r.body)
	}
	var in ops.Incident
	f.do(t, nil, "POST", "/api/incidents/"+id+"/ack", bobToken, `{"reason":"revoking the token"}`).decode(t, &in)
	if in.Ack == nil || in.Ack.By != "bob" || in.Status != ops.IncidentAcknowledged {
		t.Fatalf("ack: %+v", in)
	}
	var st ops.SystemState
	f.do(t, nil, "GET", "/api/state", viewerToken, "").decode(t, &st)
	if st.Status != ops.StatusAcknowledged || !strings.Contains(strings.Join(st.Reasons, "\n"), "still firing") {
		t.Fatalf("state: %+v", st)
	}

	f.appendTrail(t, alertLine("fp-high", "mass_password_reset", "HIGH", "resolved"))
	if r := f.do(t, nil, "POST", "/api/incidents/"+id+"/close", bobToken, `{"note":"15 users restored","by":"bob"}`); r.status != 200 {
		t.Fatalf("close: %d %s", r.status, r.body)
	}
	f.do(t, nil, "GET", "/api/incidents?status=closed", viewerToken, "").decode(t, &list)
	if len(list) != 1 || list[0].Close == nil || list[0].Close.Note != "15 users restored" {
		t.Fatalf("closed: %+v", list)
	}

	// The client speaks the same endpoints.
	c := NewHTTPClient(f.srv.URL, bobToken)
	got, err := c.Incident(context.Background(), id)
	if err != nil || got.Status != ops.IncidentClosed {
		t.Fatalf("client: %+v %v", got, err)
	}
	if _, err := c.CloseIncident(context.Background(), ops.Actor{}, ops.IncidentAction{ID: id, Note: "x"}); ops.KindOf(err) != ops.KindConflict {
		t.Fatalf("client close again: %v", err)
	}
}
