package ops

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/plugins/detect/override"
	"github.com/tda-dev/tda/sdk"
)

// fakeAgent stands in for the runtime: it runs injected override declarations through the
// real override state machine of plugins/detect and reports the records to the service.
type fakeAgent struct {
	mu        sync.Mutex
	svc       *Service
	pipelines map[string][]string
	injected  map[string][]sdk.Event
	health    []ComponentHealth
	state     override.State
}

func (a *fakeAgent) Pipelines() map[string][]string { return a.pipelines }

func (a *fakeAgent) Components() []ComponentHealth {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]ComponentHealth(nil), a.health...)
}

func (a *fakeAgent) Inject(_ context.Context, pipeline string, events []sdk.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.injected == nil {
		a.injected = map[string][]sdk.Event{}
	}
	a.injected[pipeline] = append(a.injected[pipeline], events...)
	for _, ev := range events {
		if override.IsChange(&ev) {
			if rec := a.state.Apply(&ev, override.DefaultConfig); rec != nil {
				a.svc.Observe(pipeline, *rec)
			}
		}
	}
	return nil
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

type window struct{ from, to time.Time }

func (w window) Contains(t time.Time) bool { return !t.Before(w.from) && t.Before(w.to) }
func (w window) Describe() string          { return "test window" }

type fixture struct {
	svc   *Service
	agent *fakeAgent
	clock *clock
	store *state.Store
	trail string
}

func newFixture(t *testing.T, withAgent bool, windows ...Window) *fixture {
	t.Helper()
	dir := t.TempDir()
	store, err := state.Open(filepath.Join(dir, "data"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &fixture{clock: &clock{t: time.Date(2026, 11, 29, 22, 0, 0, 0, time.UTC)}, store: store,
		trail: filepath.Join(dir, "alerts.jsonl")}
	opts := Options{Store: store, Trail: NewTrail(f.trail), Now: f.clock.Now, Windows: StaticWindows(windows...)}
	if withAgent {
		f.agent = &fakeAgent{pipelines: map[string][]string{
			"detect":  {"processor.override.flags", "processor.rules.anomalies"},
			"capture": nil,
		}}
		opts.Agent = f.agent
	}
	svc, err := NewService(opts)
	if err != nil {
		t.Fatal(err)
	}
	if f.agent != nil {
		f.agent.svc = svc
	}
	t.Cleanup(func() { svc.Close(context.Background()) })
	f.svc = svc
	return f
}

func alertLine(fp, rule, severity, st string, at time.Time) string {
	ev := sdk.Event{Time: at, Kind: sdk.KindAlert, Source: "file.app", Origin: "/var/log/app.log",
		Alert: &sdk.Alert{Rule: rule, Severity: severity, State: st, Key: "", Count: 11, Threshold: 10,
			Window: time.Minute, FirstSeen: at.Add(-time.Minute), LastSeen: at, Fingerprint: fp,
			Excerpt: []string{"password_changed user_id=1 actor=mallory"}, Explanation: "Many passwords changed."}}
	b, _ := ev.MarshalJSON()
	return string(b) + "\n"
}

func (f *fixture) appendTrail(t *testing.T, lines ...string) {
	t.Helper()
	fh, err := os.OpenFile(f.trail, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	for _, l := range lines {
		if _, err := fh.WriteString(l); err != nil {
			t.Fatal(err)
		}
	}
}

// must(call())(t) returns call's value and fails the test on its error.
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func wantKind(t *testing.T, err error, kind string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want a %s error, got none", kind)
	}
	if KindOf(err) != kind {
		t.Fatalf("want a %s error, got %v (%q)", kind, err, KindOf(err))
	}
}

var (
	alice = Actor{Name: "alice"}
	bob   = Actor{Name: "bob"}
)

func TestMigrationApprovalRules(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, false)
	m := must(f.svc.RequestMigration(ctx, alice, MigrationRequest{Name: "3ab8b2dfb055", Reason: "add phone column"}))(t)
	if m.ID != "1" || m.Status != MigrationPending || m.RequestedBy != "alice" {
		t.Fatalf("request: %+v", m)
	}
	tests := []struct {
		name string
		by   Actor
		d    Decision
		kind string
	}{
		{"no reason", bob, Decision{ID: m.ID, Approve: true}, KindInvalid},
		{"self approval", alice, Decision{ID: m.ID, Approve: true, Reason: "looks fine"}, KindForbidden},
		{"self approval, other case", Actor{Name: "ALICE"}, Decision{ID: m.ID, Approve: true, Reason: "ok"}, KindForbidden},
		{"unknown id", bob, Decision{ID: "99", Approve: true, Reason: "ok"}, KindNotFound},
		{"bad id", bob, Decision{ID: "x", Approve: true, Reason: "ok"}, KindInvalid},
		{"no actor", Actor{}, Decision{ID: m.ID, Approve: true, Reason: "ok"}, KindInvalid},
		{"bad validity", bob, Decision{ID: m.ID, Approve: true, Reason: "ok", ValidFor: "soon"}, KindInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.DecideMigration(ctx, tc.by, tc.d)
			wantKind(t, err, tc.kind)
		})
	}
	approved := must(f.svc.DecideMigration(ctx, bob, Decision{ID: m.ID, Approve: true, Reason: "reviewed the SQL", ValidFor: "2h"}))(t)
	if approved.Status != MigrationApproved || approved.DecidedBy != "bob" || !approved.ValidUntil.Equal(f.clock.Now().Add(2*time.Hour)) {
		t.Fatalf("approved: %+v", approved)
	}
	_, err := f.svc.DecideMigration(ctx, Actor{Name: "carol"}, Decision{ID: m.ID, Approve: false, Reason: "too late"})
	wantKind(t, err, KindConflict)

	// Every decision, refused ones included, is in the audit log.
	entries := must(f.svc.Audit(ctx, AuditFilter{Action: "migration"}))(t)
	var outcomes []string
	for _, e := range entries {
		outcomes = append(outcomes, e.Action+":"+e.Actor+":"+e.Outcome)
	}
	got := strings.Join(outcomes, " ")
	for _, want := range []string{"migration.approve:bob:ok", "migration.approve:alice:refused", "migration.reject:carol:refused", "migration.request:alice:ok"} {
		if !strings.Contains(got, want) {
			t.Errorf("audit log lacks %s: %s", want, got)
		}
	}
	if entries[0].Action != ActionMigrationReject || entries[0].Reason != "too late" {
		t.Errorf("newest entry first: %+v", entries[0])
	}
	list := must(f.svc.Migrations(ctx, MigrationFilter{Status: MigrationApproved}))(t)
	if len(list) != 1 || list[0].ID != m.ID {
		t.Fatalf("approved list: %+v", list)
	}
}

func TestBeginMigration(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2026, 11, 29, 22, 0, 0, 0, time.UTC)
	win := window{from: base.Add(time.Hour), to: base.Add(2 * time.Hour)}
	f := newFixture(t, true, win)
	req := must(f.svc.RequestMigration(ctx, alice, MigrationRequest{Name: "V2"}))(t)

	_, err := f.svc.BeginMigration(ctx, alice, BeginMigration{Name: "V2"})
	wantKind(t, err, KindForbidden) // not approved
	must(f.svc.DecideMigration(ctx, bob, Decision{ID: req.ID, Approve: true, Reason: "ok"}))(t)

	_, err = f.svc.BeginMigration(ctx, alice, BeginMigration{Name: "V2"})
	wantKind(t, err, KindForbidden) // outside the window
	if !strings.Contains(err.Error(), "outside the maintenance window") {
		t.Fatalf("error: %v", err)
	}

	// Override makes it possible, and the run records it.
	must(f.svc.OverrideOn(ctx, bob, OverrideRequest{Reason: "hotfix", TTL: "30m"}))(t)
	m := must(f.svc.BeginMigration(ctx, alice, BeginMigration{Name: "V2", Command: []string{"flyway", "migrate"}}))(t)
	if m.Status != MigrationRunning || len(m.Runs) != 1 || !strings.Contains(m.Runs[0].Override, "hotfix") {
		t.Fatalf("run: %+v", m)
	}
	_, err = f.svc.BeginMigration(ctx, alice, BeginMigration{ID: m.ID})
	wantKind(t, err, KindConflict)
	m = must(f.svc.FinishMigration(ctx, alice, FinishMigration{ID: m.ID, Snapshot: "snap-1", Outcome: MigrationSucceeded}))(t)
	if m.Status != MigrationSucceeded || m.Runs[0].Snapshot != "snap-1" || m.Runs[0].Finished.IsZero() {
		t.Fatalf("finish: %+v", m)
	}
	_, err = f.svc.FinishMigration(ctx, alice, FinishMigration{ID: m.ID, Outcome: "maybe"})
	wantKind(t, err, KindInvalid)

	// Inside the window no override is needed; an expired approval is refused.
	must(f.svc.OverrideOff(ctx, bob, OverrideRequest{}))(t)
	f.clock.Set(base.Add(90 * time.Minute))
	req2 := must(f.svc.RequestMigration(ctx, alice, MigrationRequest{Name: "V3"}))(t)
	must(f.svc.DecideMigration(ctx, bob, Decision{ID: req2.ID, Approve: true, Reason: "ok", ValidFor: "10m"}))(t)
	must(f.svc.BeginMigration(ctx, alice, BeginMigration{ID: req2.ID}))(t)
	req3 := must(f.svc.RequestMigration(ctx, alice, MigrationRequest{Name: "V4"}))(t)
	must(f.svc.DecideMigration(ctx, bob, Decision{ID: req3.ID, Approve: true, Reason: "ok", ValidFor: "10m"}))(t)
	f.clock.Set(base.Add(101 * time.Minute))
	_, err = f.svc.BeginMigration(ctx, alice, BeginMigration{ID: req3.ID})
	wantKind(t, err, KindForbidden)
	if !strings.Contains(err.Error(), "expired") {
		t.Fatalf("error: %v", err)
	}
}

func TestBlockedStateNeedsOverride(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, true)
	now := f.clock.Now()
	f.appendTrail(t, alertLine("fp-high", "mass_password_reset", "HIGH", "firing", now))
	st := must(f.svc.State(ctx))(t)
	if st.Status != StatusBlocked || len(st.Blocking) != 1 || !strings.Contains(st.Reasons[0], "mass_password_reset") {
		t.Fatalf("state: %+v", st)
	}
	req := must(f.svc.RequestMigration(ctx, alice, MigrationRequest{Name: "V9"}))(t)
	_, err := f.svc.DecideMigration(ctx, bob, Decision{ID: req.ID, Approve: true, Reason: "ok"})
	wantKind(t, err, KindForbidden)
	if !strings.Contains(err.Error(), "blocked") {
		t.Fatalf("error: %v", err)
	}
	must(f.svc.OverrideOn(ctx, bob, OverrideRequest{Reason: "restoring users", TTL: "30m"}))(t)
	st = must(f.svc.State(ctx))(t)
	if st.Status != StatusOverride || st.Override == nil || st.Override.Actor != "bob" || st.Override.Origin != "operator" ||
		!st.Override.Until.Equal(now.Add(30*time.Minute)) || len(st.Blocking) != 1 {
		t.Fatalf("state under override: %+v", st)
	}
	must(f.svc.DecideMigration(ctx, bob, Decision{ID: req.ID, Approve: true, Reason: "ok"}))(t)

	// The injected declaration is the contract of the override processor.
	ev := f.agent.injected["detect"][0]
	if ev.Kind != sdk.KindAudit || ev.Origin != "operator" || ev.Field("event") != "override_enabled" ||
		ev.Field("actor") != "bob" || ev.Field("reason") != "restoring users" || ev.Field("ttl") != "30m" {
		t.Fatalf("injected: %+v", ev)
	}
	if _, ok := f.agent.injected["capture"]; ok {
		t.Fatal("override injected into a pipeline without an override processor")
	}
	// The approval was announced to the pipeline with the rules processor.
	last := f.agent.injected["detect"][len(f.agent.injected["detect"])-1]
	if last.Field("event") != EventMigrationApproved || last.Field("migration") != "V9" || last.Field("valid_until") == "" {
		t.Fatalf("announcement: %+v", last)
	}

	// Acknowledging clears the block; the comment is required.
	must(f.svc.OverrideOff(ctx, bob, OverrideRequest{Reason: "done"}))(t)
	_, err = f.svc.Acknowledge(ctx, alice, AckRequest{Fingerprint: "fp-high"})
	wantKind(t, err, KindInvalid)
	_, err = f.svc.Acknowledge(ctx, alice, AckRequest{Fingerprint: "nope", Comment: "x"})
	wantKind(t, err, KindNotFound)
	must(f.svc.Acknowledge(ctx, alice, AckRequest{Fingerprint: "fp-high", Comment: "restoring from snapshot"}))(t)
	st = must(f.svc.State(ctx))(t)
	if st.Status != StatusAcknowledged || len(st.Blocking) != 0 || len(st.Acknowledged) != 1 {
		t.Fatalf("state after ack: %+v", st)
	}
	alerts := must(f.svc.Alerts(ctx, AlertFilter{Acknowledged: "yes"}))(t)
	if len(alerts) != 1 || alerts[0].Ack.By != "alice" {
		t.Fatalf("acknowledged alerts: %+v", alerts)
	}
}

func TestStateDegradedAndOffline(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, true)
	f.agent.health = []ComponentHealth{{Address: "source.file.app", Healthy: false, Reason: "no file matches"},
		{Address: "sink.jsonl.audit", Healthy: true}}
	st := must(f.svc.State(ctx))(t)
	if st.Status != StatusDegraded || len(st.Degraded) != 1 || st.Degraded[0] != "source.file.app: no file matches" {
		t.Fatalf("state: %+v", st)
	}
	off := newFixture(t, false)
	st = must(off.svc.State(ctx))(t)
	if st.Status != StatusDegraded || st.Agent || !strings.Contains(st.Reasons[0], "no agent is running") {
		t.Fatalf("offline: %+v", st)
	}
	_, err := off.svc.OverrideOn(ctx, alice, OverrideRequest{Reason: "x", TTL: "1h"})
	wantKind(t, err, KindUnavailable)
}

func TestOverrideValidation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, true)
	for _, req := range []OverrideRequest{{TTL: "30m"}, {Reason: "x"}, {Reason: "x", TTL: "-5m"}, {Reason: "x", TTL: "soon"}} {
		_, err := f.svc.OverrideOn(ctx, alice, req)
		wantKind(t, err, KindInvalid)
	}
	st := must(f.svc.OverrideOn(ctx, alice, OverrideRequest{Reason: "bulk import", TTL: "45m"}))(t)
	if st.Active == nil || st.Active.Reason != "bulk import" || len(st.Pipelines) != 1 {
		t.Fatalf("status: %+v", st)
	}
	// The app's own override line is tracked the same way.
	f.svc.Observe("detect", sdk.Event{Kind: sdk.KindAudit, Fields: map[string]string{"event": "override_disabled"}})
	f.svc.Observe("detect", sdk.Event{Kind: sdk.KindAudit, Origin: "/var/log/app.log", Fields: map[string]string{
		"event": "override_enabled", "actor": "carol", "reason": "partner import", "origin": "/var/log/app.log",
		"since": sdk.FormatTime(f.clock.Now()), "until": sdk.FormatTime(f.clock.Now().Add(time.Hour))}})
	cur := must(f.svc.Override(ctx))(t)
	if cur.Active == nil || cur.Active.Actor != "carol" || cur.Active.Origin != "/var/log/app.log" {
		t.Fatalf("app override: %+v", cur.Active)
	}
	f.clock.Set(f.clock.Now().Add(2 * time.Hour))
	if cur := must(f.svc.Override(ctx))(t); cur.Active != nil {
		t.Fatalf("override past its end: %+v", cur.Active)
	}
}

func TestOverridePersistsForTheCLI(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := state.Open(dir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	agent := &fakeAgent{pipelines: map[string][]string{"detect": {"processor.override.flags"}}}
	svc := must(NewService(Options{Store: store, Agent: agent}))(t)
	agent.svc = svc
	must(svc.OverrideOn(ctx, alice, OverrideRequest{Reason: "maintenance", TTL: "1h"}))(t)
	if err := svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	offline := must(NewService(Options{Store: store}))(t)
	st := must(offline.Override(ctx))(t)
	if st.Active == nil || st.Active.Actor != "alice" || st.Active.Until.Before(now.Add(59*time.Minute)) {
		t.Fatalf("persisted override: %+v", st.Active)
	}
	store.Close()
}

func TestAuditFilterAndLimit(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, false)
	for i := 0; i < 30; i++ {
		by := alice
		if i%3 == 0 {
			by = bob
		}
		must(f.svc.RequestMigration(ctx, by, MigrationRequest{Name: fmt.Sprintf("r%d", i)}))(t)
	}
	got := must(f.svc.Audit(ctx, AuditFilter{Actor: "bob", Limit: 4}))(t)
	if len(got) != 4 || got[0].Detail["name"] != "r27" || got[3].Detail["name"] != "r18" {
		t.Fatalf("bob's last 4: %+v", got)
	}
	all := must(f.svc.Audit(ctx, AuditFilter{}))(t)
	if len(all) != 30 || all[0].ID != 30 {
		t.Fatalf("all: %d, first %+v", len(all), all[0])
	}
	migs := must(f.svc.Migrations(ctx, MigrationFilter{Limit: 2}))(t)
	if len(migs) != 2 || migs[0].Name != "r29" {
		t.Fatalf("migrations: %+v", migs)
	}
	_, err := f.svc.Migrations(ctx, MigrationFilter{Status: "done"})
	wantKind(t, err, KindInvalid)
	_, err = f.svc.RequestMigration(ctx, alice, MigrationRequest{Name: "bad\x00name"})
	wantKind(t, err, KindInvalid)
}

// TestOverrideReachesTheDetectionPipelines: an operator's declaration goes to every pipeline
// with an override processor or a rules processor (the default config runs rules alone with
// record_overrides), and to none other; without any, the agent says what to add.
func TestOverrideReachesTheDetectionPipelines(t *testing.T) {
	tests := []struct {
		name      string
		pipelines map[string][]string
		want      []string
	}{
		{"two steps", map[string][]string{"detect": {"processor.override.flags", "processor.rules.anomalies"}}, []string{"detect"}},
		{"one step", map[string][]string{"detect": {"processor.rules.anomalies"}}, []string{"detect"}},
		{"override alone", map[string][]string{"detect": {"processor.override.flags"}}, []string{"detect"}},
		{"beside a capture", map[string][]string{"detect": {"processor.rules.anomalies"}, "capture": nil,
			"b": {"processor.override.x"}}, []string{"b", "detect"}},
		{"none", map[string][]string{"capture": nil}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, err := state.Open(t.TempDir(), state.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			agent := &fakeAgent{pipelines: tt.pipelines}
			svc := must(NewService(Options{Store: store, Agent: agent}))(t)
			agent.svc = svc
			defer svc.Close(context.Background())
			st, err := svc.OverrideOn(context.Background(), alice, OverrideRequest{Reason: "reindex", TTL: "30m"})
			if tt.want == nil {
				if err == nil || !strings.Contains(err.Error(), "record_overrides = true") {
					t.Fatalf("want an error naming record_overrides, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for p := range agent.injected {
				got = append(got, p)
			}
			sort.Strings(got)
			if !slices.Equal(got, tt.want) || !slices.Equal(st.Pipelines, tt.want) {
				t.Fatalf("injected into %v, status lists %v; want %v", got, st.Pipelines, tt.want)
			}
		})
	}
}
