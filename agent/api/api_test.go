package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/plugins/detect/override"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/snapshotapi"
)

// agent stands in for the runtime: injected override declarations go through the override
// processor's own state machine and come back through Observe, as in the agent.
type agent struct {
	mu    sync.Mutex
	svc   *ops.Service
	state override.State
	got   []sdk.Event
}

func (a *agent) Pipelines() map[string][]string {
	return map[string][]string{"detect": {"processor.override.flags", "processor.rules.anomalies"}}
}

func (a *agent) Components() []ops.ComponentHealth {
	return []ops.ComponentHealth{{Address: "source.file.app", Healthy: true}}
}

func (a *agent) Inject(_ context.Context, p string, events []sdk.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ev := range events {
		a.got = append(a.got, ev)
		if override.IsChange(&ev) {
			if rec := a.state.Apply(&ev, override.DefaultConfig); rec != nil {
				a.svc.Observe(p, *rec)
			}
		}
	}
	return nil
}

// snapshots is an in-memory snapshot target.
type snapshots struct {
	mu    sync.Mutex
	snaps []ops.SnapshotInfo
	done  chan ops.RestoreRequest
}

func (s *snapshots) List(context.Context) ([]ops.SnapshotTarget, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tier := ops.SnapshotTier{Name: "manual", Snapshots: append([]ops.SnapshotInfo(nil), s.snaps...)}
	if n := len(s.snaps); n > 0 {
		tier.Newest = s.snaps[n-1].Time
		tier.RPOSeconds = time.Since(tier.Newest).Seconds()
	}
	return []ops.SnapshotTarget{{Name: "guard", Kind: "postgres", Target: "app", Tiers: []ops.SnapshotTier{tier}}}, nil
}

func (s *snapshots) ValidID(id string) error { return snapshotapi.ValidSnapshotID(id) }

func (s *snapshots) Resolve(_ context.Context, target string) (string, string, error) {
	if target != "" && target != "guard" {
		return "", "", &ops.Error{Kind: ops.KindNotFound, Message: "no snapshot target " + target}
	}
	return "guard", "app", nil
}

func (s *snapshots) Create(_ context.Context, target string) (ops.SnapshotInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	info := ops.SnapshotInfo{ID: fmt.Sprintf("app-manual-%d", len(s.snaps)+1), Target: "app", Time: time.Now().UTC(),
		Status: "available", Trigger: "manual"}
	s.snaps = append(s.snaps, info)
	return info, nil
}

func (s *snapshots) Restore(_ context.Context, req ops.RestoreRequest) (ops.Restore, error) {
	s.done <- req
	return ops.Restore{RecoveryPoint: time.Now().Add(-time.Hour), RPOSeconds: 3600, RTOSeconds: 2}, nil
}

const (
	aliceToken  = "alice-0123456789abcdef"
	bobToken    = "bob-0123456789abcdefgh"
	viewerToken = "viewer-0123456789abcdef"
	oncallToken = "oncall-0123456789abcdef"
)

var testTokens = []Token{
	{Name: "alice", Role: RoleOperator, Secret: aliceToken},
	{Name: "bob", Role: RoleOperator, Secret: bobToken},
	{Name: "wall", Role: RoleViewer, Secret: viewerToken},
	{Name: "oncall", Role: RoleOperator, Secret: oncallToken, Shared: true},
}

type fixture struct {
	srv     *httptest.Server
	server  *Server
	svc     *ops.Service
	agent   *agent
	snaps   *snapshots
	letters *memLetters
	trail   string
}

func alertLine(fp, rule, sev, st string) string {
	now := time.Now().UTC()
	ev := sdk.Event{Time: now, Kind: sdk.KindAlert, Source: "file.app", Origin: "/var/log/app.log",
		Alert: &sdk.Alert{Rule: rule, Severity: sev, State: st, Key: "10.0.0.1", Count: 12, Threshold: 10,
			Window: time.Minute, FirstSeen: now.Add(-time.Minute), LastSeen: now, Fingerprint: fp,
			Excerpt: []string{`<script>alert(1)</script> password_changed actor=mallory`}, Explanation: "Many passwords changed at once."}}
	b, _ := ev.MarshalJSON()
	return string(b) + "\n"
}

// withRepairs gives the fixture's server a repair service (a double).
func withRepairs(o *Options) { o.Repairs = &repairsDouble{} }

func newFixture(t testing.TB, ui http.Handler, opts ...func(*Options)) *fixture {
	t.Helper()
	dir := t.TempDir()
	store, err := state.Open(filepath.Join(dir, "data"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &fixture{agent: &agent{}, snaps: &snapshots{done: make(chan ops.RestoreRequest, 4)},
		letters: newMemLetters(), trail: filepath.Join(dir, "alerts.jsonl")}
	if err := os.WriteFile(f.trail, []byte(alertLine("fp-high", "mass_password_reset", "HIGH", "firing")+
		alertLine("fp-med", "auth_failures", "MEDIUM", "firing")), 0o600); err != nil {
		t.Fatal(err)
	}
	f.svc, err = ops.NewService(ops.Options{Store: store, Agent: f.agent, Trail: ops.NewTrail(f.trail), Snapshots: f.snaps,
		DeadLetters: f.letters})
	if err != nil {
		t.Fatal(err)
	}
	f.agent.svc = f.svc
	t.Cleanup(func() { f.svc.Close(context.Background()) })
	o := Options{Ops: f.svc, Tokens: testTokens, UI: ui, FailedLogins: 1000}
	for _, opt := range opts {
		opt(&o)
	}
	f.server = New(o)
	f.srv = httptest.NewServer(f.server.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

type reply struct {
	status int
	body   string
	header http.Header
}

func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
}

func (f *fixture) do(t *testing.T, c *http.Client, method, path, token, body string, hdr ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if c == nil {
		c = f.srv.Client()
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, body: string(b), header: resp.Header}
}

// endpoints lists every API endpoint with a valid request body for operators.
var endpoints = []struct {
	method, path, body string
	mutating           bool
}{
	{"GET", "/metrics", "", false},
	{"GET", "/api/session", "", false},
	{"GET", "/api/state", "", false},
	{"GET", "/api/alerts?state=open", "", false},
	{"POST", "/api/alerts/fp-med/ack", `{"comment":"looking"}`, true},
	{"GET", "/api/incidents?status=active&q=auth", "", false},
	{"GET", "/api/incidents/fp-med", "", false},
	{"GET", "/api/incidents/fp-med/entities.csv", "", false},
	{"GET", "/api/incidents/fp-med/entities.json", "", false},
	{"POST", "/api/incidents/fp-med/ack", `{"reason":"looking"}`, true},
	{"POST", "/api/incidents/fp-med/close", `{"note":"done"}`, true},
	{"GET", "/api/override", "", false},
	{"POST", "/api/override/on", `{"reason":"import","ttl":"5m"}`, true},
	{"POST", "/api/override/off", `{"reason":"done"}`, true},
	{"GET", "/api/migrations", "", false},
	{"POST", "/api/migrations", `{"name":"V1"}`, true},
	{"POST", "/api/migrations/1/approve", `{"reason":"ok"}`, true},
	{"POST", "/api/migrations/1/reject", `{"reason":"no"}`, true},
	{"POST", "/api/migrations/begin", `{"name":"V1"}`, true},
	{"POST", "/api/migrations/1/finish", `{"outcome":"succeeded"}`, true},
	{"GET", "/api/snapshots", "", false},
	{"POST", "/api/snapshots", `{"reason":"before deploy"}`, true},
	{"GET", "/api/incidents/fp-high/recovery", "", false},
	{"GET", "/api/restores", "", false},
	{"POST", "/api/restores", `{"snapshot":"x","new_name":"y","confirm":"app","reason":"drill"}`, true},
	{"GET", "/api/audit", "", false},
	{"POST", "/api/audit", `{"action":"restore.run","target":"x -> y","reason":"drill"}`, true},
	{"GET", "/api/deadletters", "", false},
	{"GET", "/api/deadletters/3", "", false},
	{"POST", "/api/deadletters/3/replay", `{"reason":"webhook rotated"}`, true},
	{"DELETE", "/api/deadletters/4", `{"reason":"duplicate"}`, true},
	{"POST", "/api/repairs/plan", `{"restore":"app_restored","incident":"fp-high"}`, true},
	{"POST", "/api/repairs/apply", `{"restore":"app_restored","confirm":"app","reason":"mass reset"}`, true},
}

// publicRoutes are the router's only patterns served without a token.
var publicRoutes = map[string]bool{
	"GET /healthz":     true, // a liveness probe
	"POST /api/login":  true, // takes the token in its body
	"POST /api/logout": true, // ends the caller's own session, if any
	"/api/":            true, // answers 404 to every other path
	"/":                true, // the panel's files (with a UI)
}

// TestEveryRouteIsInTheEndpointTable takes the routes from the router itself: each one that
// needs a token has a request in endpoints (which the token, body and fuzz tests use), with
// the router's own mutating flag, and every other one is a known public route.
func TestEveryRouteIsInTheEndpointTable(t *testing.T) {
	f := newFixture(t, http.NotFoundHandler(), withRepairs)
	covered := map[string]bool{}
	for _, e := range endpoints {
		req := httptest.NewRequest(e.method, e.path, nil)
		_, pattern := f.server.mux.Handler(req)
		covered[pattern] = true
		found := false
		for _, r := range f.server.mux.routes {
			if r.pattern != pattern {
				continue
			}
			found = true
			if r.name == "" {
				t.Errorf("%s %s goes to %q, which is served without a token", e.method, e.path, pattern)
			} else if r.mutating != e.mutating {
				t.Errorf("%s %s: the router says mutating=%v, the table %v", e.method, e.path, r.mutating, e.mutating)
			}
		}
		if !found {
			t.Errorf("%s %s matches no listed route (pattern %q)", e.method, e.path, pattern)
		}
	}
	if len(f.server.mux.routes) < len(endpoints) {
		t.Fatalf("the router lists %d routes for %d endpoints", len(f.server.mux.routes), len(endpoints))
	}
	for _, r := range f.server.mux.routes {
		switch {
		case r.name == "" && !publicRoutes[r.pattern]:
			t.Errorf("route %q is served without a token", r.pattern)
		case r.name != "" && !covered[r.pattern]:
			t.Errorf("route %q needs a token but has no request in endpoints: add one, so the token, body and fuzz tests reach it", r.pattern)
		}
	}
}

func TestEveryEndpointNeedsAToken(t *testing.T) {
	f := newFixture(t, nil, withRepairs)
	f.letters.add(testLetters...)
	for _, e := range endpoints {
		t.Run(e.method+" "+e.path, func(t *testing.T) {
			if r := f.do(t, nil, e.method, e.path, "", e.body); r.status != http.StatusUnauthorized ||
				!strings.Contains(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("without a token: %d %s", r.status, r.body)
			}
			if r := f.do(t, nil, e.method, e.path, "wrong-token-0123456789", e.body); r.status != http.StatusUnauthorized {
				t.Errorf("with a wrong token: %d %s", r.status, r.body)
			}
			if r := f.do(t, nil, e.method, e.path, "", e.body, "Authorization", "Basic YWxpY2U6eA=="); r.status != http.StatusUnauthorized {
				t.Errorf("with basic auth: %d %s", r.status, r.body)
			}
			r := f.do(t, nil, e.method, e.path, viewerToken, e.body)
			if e.mutating && r.status != http.StatusForbidden {
				t.Errorf("viewer on a mutation: %d %s", r.status, r.body)
			}
			if !e.mutating && r.status != http.StatusOK {
				t.Errorf("viewer on a read: %d %s", r.status, r.body)
			}
		})
	}
	// Every route the router lists is refused without a token, whether or not the table
	// above has a request for it: the path parameters are filled with placeholders.
	for _, rt := range f.server.mux.routes {
		if publicRoutes[rt.pattern] {
			continue
		}
		method, path, ok := strings.Cut(rt.pattern, " ")
		if !ok {
			t.Errorf("route %q names no method", rt.pattern)
			continue
		}
		path = regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(path, "x")
		if r := f.do(t, nil, method, path, "", "{}"); r.status != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d %s", rt.pattern, r.status, r.body)
		}
	}
	// Nothing was changed, and nothing needs a token but /healthz.
	if r := f.do(t, nil, "GET", "/healthz", "", ""); r.status != 200 {
		t.Fatalf("healthz: %d", r.status)
	}
	// (What the system recorded by itself, the incidents the rules opened, is not a change.)
	got, _ := f.svc.Audit(context.Background(), ops.AuditFilter{})
	for _, e := range got {
		if e.Via != ops.SystemVia {
			t.Fatalf("refused requests changed something: %+v", got)
		}
	}
}

func TestOperatorFlows(t *testing.T) {
	f := newFixture(t, nil)
	var st ops.SystemState
	r := f.do(t, nil, "GET", "/api/state", aliceToken, "")
	r.decode(t, &st)
	if st.Status != ops.StatusBlocked || len(st.Blocking) != 1 || st.Blocking[0].Fingerprint != "fp-high" {
		t.Fatalf("state: %s", r.body)
	}

	// Alerts with filters.
	var alerts []ops.Incident
	f.do(t, nil, "GET", "/api/alerts?severity=HIGH", aliceToken, "").decode(t, &alerts)
	if len(alerts) != 1 || alerts[0].Rule != "mass_password_reset" || alerts[0].Explanation == "" || len(alerts[0].Excerpt) != 1 {
		t.Fatalf("HIGH alerts: %+v", alerts)
	}
	for q, want := range map[string]int{"state=open": 2, "state=resolved": 0, "rule=auth_failures": 1, "acknowledged=yes": 0, "limit=1": 1,
		"since=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339): 0} {
		f.do(t, nil, "GET", "/api/alerts?"+q, viewerToken, "").decode(t, &alerts)
		if len(alerts) != want {
			t.Errorf("alerts?%s: %d, want %d", q, len(alerts), want)
		}
	}
	for _, q := range []string{"state=burning", "limit=-1", "since=yesterday", "acknowledged=maybe"} {
		if r := f.do(t, nil, "GET", "/api/alerts?"+q, viewerToken, ""); r.status != http.StatusBadRequest {
			t.Errorf("alerts?%s: %d", q, r.status)
		}
	}

	// While blocked, a restore needs an override.
	restore := `{"snapshot":"app-manual-1","new_name":"app_restored","confirm":"app","reason":"drill"}`
	if r := f.do(t, nil, "POST", "/api/snapshots", aliceToken, `{"reason":"before the drill"}`); r.status != http.StatusCreated {
		t.Fatalf("snapshot: %d %s", r.status, r.body)
	}
	if r := f.do(t, nil, "POST", "/api/restores", aliceToken, restore); r.status != http.StatusForbidden || !strings.Contains(r.body, "blocked") {
		t.Fatalf("restore while blocked: %d %s", r.status, r.body)
	}
	if r := f.do(t, nil, "POST", "/api/override/on", aliceToken, `{"reason":"restore drill","ttl":"10m"}`); r.status != 200 {
		t.Fatalf("override on: %d %s", r.status, r.body)
	}
	var ov ops.OverrideStatus
	f.do(t, nil, "GET", "/api/override", viewerToken, "").decode(t, &ov)
	if ov.Active == nil || ov.Active.Actor != "alice" || ov.Active.Reason != "restore drill" {
		t.Fatalf("override: %+v", ov)
	}
	for body, want := range map[string]int{
		`{"snapshot":"app-manual-1","new_name":"app_restored","confirm":"ap","reason":"drill"}`: 400, // wrong confirmation
		`{"snapshot":"app-manual-1","new_name":"app","confirm":"app","reason":"drill"}`:         400, // in place
		`{"snapshot":"app-manual-1","new_name":"x","confirm":"app"}`:                            400, // no reason
		`{"target":"other","snapshot":"s","new_name":"x","confirm":"app","reason":"r"}`:         404,
	} {
		if r := f.do(t, nil, "POST", "/api/restores", aliceToken, body); r.status != want {
			t.Errorf("restore %s: %d %s", body, r.status, r.body)
		}
	}
	if r := f.do(t, nil, "POST", "/api/restores", aliceToken, restore); r.status != http.StatusAccepted {
		t.Fatalf("restore: %d %s", r.status, r.body)
	}
	if req := <-f.snaps.done; req.SnapshotID != "app-manual-1" || req.NewName != "app_restored" || req.Target != "guard" {
		t.Fatalf("restore request: %+v", req)
	}
	deadline := time.Now().Add(5 * time.Second)
	var targets []ops.SnapshotTarget
	for {
		f.do(t, nil, "GET", "/api/snapshots", viewerToken, "").decode(t, &targets)
		if lr := targets[0].LastRestore; lr != nil && lr.Status == ops.RestoreSucceeded {
			if lr.RTOSeconds != 2 || lr.By != "alice" {
				t.Fatalf("last restore: %+v", lr)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restore did not finish: %+v", targets)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r := f.do(t, nil, "POST", "/api/override/off", aliceToken, `{}`); r.status != 200 {
		t.Fatalf("override off: %d %s", r.status, r.body)
	}

	// Acknowledge the HIGH alert: the block lifts.
	if r := f.do(t, nil, "POST", "/api/alerts/fp-high/ack", bobToken, `{"comment":""}`); r.status != 400 {
		t.Fatalf("ack without comment: %d %s", r.status, r.body)
	}
	if r := f.do(t, nil, "POST", "/api/alerts/nope/ack", bobToken, `{"comment":"x"}`); r.status != 404 {
		t.Fatalf("ack unknown: %d %s", r.status, r.body)
	}
	if r := f.do(t, nil, "POST", "/api/alerts/fp-high/ack", bobToken, `{"comment":"resetting from backup"}`); r.status != 200 {
		t.Fatalf("ack: %d %s", r.status, r.body)
	}
	f.do(t, nil, "GET", "/api/state", aliceToken, "").decode(t, &st)
	if st.Status != ops.StatusAcknowledged || len(st.Blocking) != 0 || len(st.Acknowledged) != 1 {
		t.Fatalf("state after ack: %+v", st)
	}

	// Migrations: request, self-approval refused, approval, run, finish.
	var m ops.Migration
	r = f.do(t, nil, "POST", "/api/migrations", aliceToken, `{"name":"3ab8b2dfb055","reason":"add phone"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("request: %d %s", r.status, r.body)
	}
	r.decode(t, &m)
	if r := f.do(t, nil, "POST", "/api/migrations/"+m.ID+"/approve", aliceToken, `{"reason":"mine"}`); r.status != http.StatusForbidden ||
		!strings.Contains(r.body, "cannot approve") {
		t.Fatalf("self approval: %d %s", r.status, r.body)
	}
	if r := f.do(t, nil, "POST", "/api/migrations/"+m.ID+"/approve", bobToken, `{"reason":""}`); r.status != 400 {
		t.Fatalf("approval without reason: %d %s", r.status, r.body)
	}
	if r := f.do(t, nil, "POST", "/api/migrations/"+m.ID+"/approve", bobToken, `{"reason":"reviewed","valid_for":"2h"}`); r.status != 200 {
		t.Fatalf("approval: %d %s", r.status, r.body)
	}
	if r := f.do(t, nil, "POST", "/api/migrations/"+m.ID+"/reject", bobToken, `{"reason":"changed my mind"}`); r.status != http.StatusConflict {
		t.Fatalf("second decision: %d %s", r.status, r.body)
	}
	if r := f.do(t, nil, "POST", "/api/migrations/99/approve", bobToken, `{"reason":"x"}`); r.status != 404 {
		t.Fatalf("unknown request: %d %s", r.status, r.body)
	}
	if r := f.do(t, nil, "POST", "/api/migrations/begin", aliceToken, `{"name":"3ab8b2dfb055","command":["flask","db","upgrade"]}`); r.status != 200 {
		t.Fatalf("begin: %d %s", r.status, r.body)
	}
	r = f.do(t, nil, "POST", "/api/migrations/"+m.ID+"/finish", aliceToken, `{"snapshot":"app-pre-1","outcome":"failed","exit_code":3,"error":"exit 3"}`)
	r.decode(t, &m)
	if r.status != 200 || m.Status != ops.MigrationFailed || m.Runs[0].Snapshot != "app-pre-1" {
		t.Fatalf("finish: %d %s", r.status, r.body)
	}
	var list []ops.Migration
	f.do(t, nil, "GET", "/api/migrations?status=failed", viewerToken, "").decode(t, &list)
	if len(list) != 1 {
		t.Fatalf("failed migrations: %+v", list)
	}
	// The approval reached the pipelines.
	last := f.agent.got[len(f.agent.got)-1]
	if last.Field("event") != ops.EventMigrationApproved || last.Field("migration") != "3ab8b2dfb055" {
		t.Fatalf("announcement: %+v", last)
	}

	// The audit log has every mutation with who and why, refusals included.
	var audit []ops.AuditEntry
	f.do(t, nil, "GET", "/api/audit?action=migration.approve&target="+m.ID, viewerToken, "").decode(t, &audit)
	if len(audit) != 3 || audit[0].Actor != "bob" || audit[0].Via != "token bob" || audit[0].Outcome != "ok" || audit[0].Reason != "reviewed" ||
		audit[1].Outcome != "refused" || audit[2].Actor != "alice" || audit[2].Outcome != "refused" || !strings.Contains(audit[2].Error, "cannot approve") {
		t.Fatalf("approval audit: %+v", audit)
	}
	f.do(t, nil, "GET", "/api/audit?actor=alice&limit=2", viewerToken, "").decode(t, &audit)
	if len(audit) != 2 || audit[0].Action != ops.ActionMigrationFinish {
		t.Fatalf("alice's audit: %+v", audit)
	}

	// Metrics: the API's and the state's.
	r = f.do(t, nil, "GET", "/metrics", viewerToken, "")
	for _, want := range []string{`tda_system_status{status="acknowledged"} 1`, `tda_api_requests_total{code="403",route="migrations.approve"} 1`,
		"tda_migrations_pending 0", "tda_override_active 0"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestTokensActAsTheirHolder(t *testing.T) {
	f := newFixture(t, nil)
	if r := f.do(t, nil, "POST", "/api/alerts/fp-high/ack", oncallToken, `{"comment":"on it","by":"erin"}`); r.status != 200 {
		t.Fatalf("ack: %d %s", r.status, r.body)
	}
	// A personal token cannot act under another name.
	if r := f.do(t, nil, "POST", "/api/migrations", aliceToken, `{"name":"V1","by":"bob"}`); r.status != http.StatusForbidden {
		t.Fatalf("impersonation: %d %s", r.status, r.body)
	}
	// A shared token must name the person, who is then the requester.
	if r := f.do(t, nil, "POST", "/api/migrations", oncallToken, `{"name":"V1"}`); r.status != http.StatusBadRequest {
		t.Fatalf("shared token without by: %d %s", r.status, r.body)
	}
	var m ops.Migration
	f.do(t, nil, "POST", "/api/migrations", oncallToken, `{"name":"V1","by":"carol"}`).decode(t, &m)
	if m.RequestedBy != "carol" {
		t.Fatalf("requester: %+v", m)
	}
	if r := f.do(t, nil, "POST", "/api/migrations/"+m.ID+"/approve", oncallToken, `{"reason":"ok","by":"carol"}`); r.status != http.StatusForbidden {
		t.Fatalf("self approval through the shared token: %d %s", r.status, r.body)
	}
	if r := f.do(t, nil, "POST", "/api/migrations/"+m.ID+"/approve", oncallToken, `{"reason":"ok","by":"dave"}`); r.status != http.StatusOK {
		t.Fatalf("approval by dave: %d %s", r.status, r.body)
	}
	var audit []ops.AuditEntry
	f.do(t, nil, "GET", "/api/audit?actor=dave", viewerToken, "").decode(t, &audit)
	if len(audit) != 1 || audit[0].Via != "token oncall" {
		t.Fatalf("audit: %+v", audit)
	}
}

func TestBadBodies(t *testing.T) {
	f := newFixture(t, nil)
	big := `{"name":"` + strings.Repeat("x", 2<<20) + `"}`
	for body, want := range map[string]int{
		`{"name":"V1","surprise":true}`: 400,
		`{"name":`:                      400,
		`["V1"]`:                        400,
		big:                             413,
	} {
		if r := f.do(t, nil, "POST", "/api/migrations", aliceToken, body); r.status != want {
			t.Errorf("body %.40q: %d %s", body, r.status, r.body)
		}
	}
	if r := f.do(t, nil, "GET", "/api/nothing", aliceToken, ""); r.status != 404 || !strings.Contains(r.body, "no such API endpoint") {
		t.Errorf("unknown endpoint: %d %s", r.status, r.body)
	}
	if r := f.do(t, nil, "DELETE", "/api/state", aliceToken, ""); r.status != http.StatusMethodNotAllowed && r.status != 404 {
		t.Errorf("wrong method: %d", r.status)
	}
}

func TestBrowserSessionAndCSRF(t *testing.T) {
	f := newFixture(t, nil)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	origin := f.srv.URL
	if r := f.do(t, browser, "POST", "/api/login", "", `{"token":"nope"}`, "Origin", origin); r.status != 401 {
		t.Fatalf("login with a wrong token: %d", r.status)
	}
	if r := f.do(t, browser, "POST", "/api/login", "", `{"token":"`+aliceToken+`"}`, "Origin", "https://evil.example"); r.status != 403 {
		t.Fatalf("cross-site login: %d", r.status)
	}
	r := f.do(t, browser, "POST", "/api/login", "", `{"token":"`+aliceToken+`"}`, "Origin", origin)
	if r.status != 200 {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	cookie := r.header.Get("Set-Cookie")
	for _, want := range []string{SessionCookie + "=", "HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("cookie %q lacks %s", cookie, want)
		}
	}
	var info SessionInfo
	r.decode(t, &info)
	if info.Name != "alice" || info.Role != RoleOperator || len(info.CSRF) != 64 {
		t.Fatalf("session: %+v", info)
	}
	// Reads work with the cookie alone; so does reading the session's CSRF token again.
	if r := f.do(t, browser, "GET", "/api/state", "", ""); r.status != 200 {
		t.Fatalf("read with the session: %d", r.status)
	}
	var again SessionInfo
	f.do(t, browser, "GET", "/api/session", "", "").decode(t, &again)
	if again.CSRF != info.CSRF {
		t.Fatalf("session CSRF changed")
	}
	body := `{"name":"V7"}`
	for name, hdr := range map[string][]string{
		"no CSRF header":    {"Origin", origin},
		"wrong CSRF header": {"Origin", origin, CSRFHeader, strings.Repeat("0", 64)},
		"cross-site origin": {"Origin", "https://evil.example", CSRFHeader, info.CSRF},
		"cross-site fetch":  {"Sec-Fetch-Site", "cross-site", CSRFHeader, info.CSRF},
	} {
		if r := f.do(t, browser, "POST", "/api/migrations", "", body, hdr...); r.status != 403 || !strings.Contains(r.body, "csrf") {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	if got, _ := f.svc.Migrations(context.Background(), ops.MigrationFilter{}); len(got) != 0 {
		t.Fatalf("a refused request changed something: %+v", got)
	}
	if r := f.do(t, browser, "POST", "/api/migrations", "", body, "Origin", origin, CSRFHeader, info.CSRF); r.status != 201 {
		t.Fatalf("request with CSRF: %d %s", r.status, r.body)
	}
	if r := f.do(t, browser, "POST", "/api/logout", "", `{}`, "Origin", origin); r.status != 403 {
		t.Fatalf("logout without CSRF: %d", r.status)
	}
	if r := f.do(t, browser, "POST", "/api/logout", "", `{}`, "Origin", origin, CSRFHeader, info.CSRF); r.status != 200 {
		t.Fatalf("logout: %d", r.status)
	}
	if r := f.do(t, browser, "GET", "/api/state", "", ""); r.status != 401 {
		t.Fatalf("after logout: %d", r.status)
	}
	// A viewer's session can read but not act.
	f.do(t, browser, "POST", "/api/login", "", `{"token":"`+viewerToken+`"}`, "Origin", origin).decode(t, &info)
	if r := f.do(t, browser, "POST", "/api/migrations", "", body, "Origin", origin, CSRFHeader, info.CSRF); r.status != 403 {
		t.Fatalf("viewer session mutation: %d", r.status)
	}
}

func TestSessionsExpire(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ss := newSessions(time.Hour, clock)
	s := ss.create(testTokens[0])
	if ss.get(s.id) == nil {
		t.Fatal("fresh session missing")
	}
	mu.Lock()
	now = now.Add(61 * time.Minute)
	mu.Unlock()
	if ss.get(s.id) != nil {
		t.Fatal("expired session still valid")
	}
}

func TestMatchToken(t *testing.T) {
	for given, want := range map[string]string{aliceToken: "alice", viewerToken: "wall", "": "", aliceToken + "x": "", aliceToken[:10]: ""} {
		tok, ok := matchToken(testTokens, given)
		if ok != (want != "") || tok.Name != want {
			t.Errorf("matchToken(%q) = %q %v", given, tok.Name, ok)
		}
	}
}

func TestClientMapsErrors(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	alice := NewHTTPClient(f.srv.URL, aliceToken)
	m, err := alice.RequestMigration(ctx, ops.Actor{}, ops.MigrationRequest{Name: "V5", Reason: "index"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = alice.DecideMigration(ctx, ops.Actor{}, ops.Decision{ID: m.ID, Approve: true, Reason: "mine"})
	if ops.KindOf(err) != ops.KindForbidden || !strings.Contains(err.Error(), "cannot approve") {
		t.Fatalf("self approval through the client: %v", err)
	}
	bob := NewHTTPClient(f.srv.URL, bobToken)
	if _, err := bob.DecideMigration(ctx, ops.Actor{}, ops.Decision{ID: "42", Approve: true, Reason: "x"}); ops.KindOf(err) != ops.KindNotFound {
		t.Fatalf("unknown id: %v", err)
	}
	if _, err := NewHTTPClient(f.srv.URL, "bad-token-0123456789").State(ctx); err == nil || !strings.Contains(err.Error(), "TDA_TOKEN") {
		t.Fatalf("bad token: %v", err)
	}
	st, err := bob.State(ctx)
	if err != nil || st.Status != ops.StatusBlocked {
		t.Fatalf("state: %+v %v", st, err)
	}
	alerts, err := bob.Alerts(ctx, ops.AlertFilter{State: "open", Severity: "HIGH"})
	if err != nil || len(alerts) != 1 {
		t.Fatalf("alerts: %+v %v", alerts, err)
	}
	if _, err := bob.Acknowledge(ctx, ops.Actor{}, ops.AckRequest{Fingerprint: alerts[0].Fingerprint, Comment: "on it"}); err != nil {
		t.Fatal(err)
	}
	audit, err := bob.Audit(ctx, ops.AuditFilter{Actor: "bob", Action: "incident"})
	if err != nil || len(audit) != 1 || audit[0].Action != ops.ActionIncidentAck || audit[0].Detail["rule"] != alerts[0].Rule {
		t.Fatalf("audit: %+v %v", audit, err)
	}
}

func TestUIServedWithoutAToken(t *testing.T) {
	ui := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "page") })
	f := newFixture(t, ui)
	if r := f.do(t, nil, "GET", "/", "", ""); r.status != 200 || r.body != "page" {
		t.Fatalf("panel page: %d %q", r.status, r.body)
	}
	if r := f.do(t, nil, "POST", "/", "", "x"); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("POST /: %d", r.status)
	}
}
