package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tda-dev/tda/agent/ops"
)

// repairsDouble stands for the agent's repair service (agent/control, exercised on real
// databases by the repair package and make drill): it records what the API hands it.
type repairsDouble struct {
	planned []ops.RepairRequest
	applied []ops.Actor
}

func (d *repairsDouble) PlanRepair(_ context.Context, req ops.RepairRequest) (ops.RepairOutcome, error) {
	d.planned = append(d.planned, req)
	if req.Restore == "" {
		return ops.RepairOutcome{}, &ops.Error{Kind: ops.KindInvalid, Message: "name the database tda restore created (restore)"}
	}
	return ops.RepairOutcome{Live: "app", Summary: "3 to repair", Plan: json.RawMessage(`{"items":[]}`)}, nil
}

func (d *repairsDouble) ApplyRepair(_ context.Context, by ops.Actor, req ops.RepairRequest) (ops.RepairOutcome, error) {
	d.applied = append(d.applied, by)
	if req.Confirm != "app" {
		return ops.RepairOutcome{}, &ops.Error{Kind: ops.KindInvalid, Message: "type the live database's name (app) to confirm the repair"}
	}
	return ops.RepairOutcome{Live: "app", Applied: true, Plan: json.RawMessage(`{}`), Result: json.RawMessage(`{"repaired":3}`)}, nil
}

func TestRepairRoutes(t *testing.T) {
	f := newFixture(t, nil)
	double := &repairsDouble{}
	with := httptest.NewServer(New(Options{Ops: f.svc, Repairs: double, Tokens: testTokens}).Handler())
	defer with.Close()
	plan := `{"restore":"app_restored","incident":"fp-high","events":["INFO password_changed user_id=7 actor=mallory"],"actor":"mallory"}`
	for _, tc := range []struct {
		name, base, path, token, body string
		status                        int
		want                          string
	}{
		{"no token", with.URL, "/api/repairs/plan", "", plan, 401, "unauthorized"},
		{"viewers see no row values", with.URL, "/api/repairs/plan", viewerToken, plan, 403, "viewer token"},
		{"plan", with.URL, "/api/repairs/plan", aliceToken, plan, 200, `"summary":"3 to repair"`},
		{"plan refused", with.URL, "/api/repairs/plan", aliceToken, `{}`, 400, "name the database"},
		// The events are the log lines themselves: a path on the agent's host is not read.
		{"events as a path", with.URL, "/api/repairs/plan", aliceToken, `{"restore":"r","events":"/var/log/app.log"}`, 400, "events"},
		{"apply unconfirmed", with.URL, "/api/repairs/apply", aliceToken, `{"restore":"r","reason":"x"}`, 400, "to confirm"},
		{"apply", with.URL, "/api/repairs/apply", aliceToken, `{"restore":"r","confirm":"app","reason":"mass reset"}`, 200, `"applied":true`},
		{"shared token names nobody", with.URL, "/api/repairs/apply", oncallToken, `{"restore":"r","confirm":"app","reason":"x"}`, 400, "by"},
		{"without a snapshot target", f.srv.URL, "/api/repairs/plan", aliceToken, plan, 503, "sink \\\"snapshot\\\" block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, tc.base+tc.path, strings.NewReader(tc.body))
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b strings.Builder
			buf := make([]byte, 4096)
			for {
				n, err := resp.Body.Read(buf)
				b.Write(buf[:n])
				if err != nil {
					break
				}
			}
			if resp.StatusCode != tc.status || !strings.Contains(b.String(), tc.want) {
				t.Fatalf("%s %s: %d %s, want %d with %s", tc.path, tc.body, resp.StatusCode, b.String(), tc.status, tc.want)
			}
		})
	}
	if len(double.applied) != 2 || double.applied[1].Name != "alice" {
		t.Fatalf("applied by %+v, want alice twice", double.applied)
	}
	if len(double.planned[0].Events) != 1 || double.planned[0].Events[0] != "INFO password_changed user_id=7 actor=mallory" ||
		double.planned[0].Incident != "fp-high" {
		t.Fatalf("planned %+v", double.planned[0])
	}
}
