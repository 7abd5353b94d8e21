package ops

import (
	"context"
	"errors"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/sdk"
)

// first is the first event of the incidents these tests recover from.
var first = time.Date(2026, 11, 29, 22, 57, 5, 300_000_000, time.UTC)

func snap(id, trigger, status string, at time.Time, tags ...string) SnapshotInfo {
	s := SnapshotInfo{ID: id, Target: "app", Time: at, Status: status, Trigger: trigger,
		Tags: map[string]string{"created_by": "tda", "trigger": trigger}}
	for i := 0; i+1 < len(tags); i += 2 {
		s.Tags[tags[i]] = tags[i+1]
	}
	return s
}

func pgTarget(snaps ...SnapshotInfo) SnapshotTarget {
	return SnapshotTarget{Name: "guard", Kind: "postgres", Target: "app",
		Tiers: []SnapshotTier{{Name: "scheduled", Snapshots: snaps}}}
}

func incidentRef(state string) IncidentRef {
	return IncidentRef{Fingerprint: "3f9a0c1d5e6f7a8b", Rule: "mass_password_reset", Severity: "HIGH", State: state,
		Key: "mallory", FirstEvent: first, LastEvent: first.Add(14 * time.Second)}
}

func TestRelativeToAnIncident(t *testing.T) {
	anomaly := snap("tda-app-anomaly-20261129t225705z-3f9a0c1d", "anomaly", "available", first.Add(4200*time.Millisecond),
		"alert_fingerprint", "3f9a0c1d5e6f7a8b", "alert_rule", "mass_password_reset")
	other := snap("tda-app-anomaly-20261128t100000z-00000000", "anomaly", "available", first.Add(-36*time.Hour),
		"alert_fingerprint", "0000000011111111")
	nightly := snap("tda-app-scheduled-20261129t030000z", "scheduled", "available", first.Add(-20*time.Hour))
	manual := snap("tda-app-manual-20261129t225655z", "manual", "available", first.Add(-10*time.Second))
	creating := snap("tda-app-manual-20261129t225700z", "manual", "creating", first.Add(-5*time.Second))
	later := snap("tda-app-manual-20261129t230000z", "manual", "available", first.Add(3*time.Minute))
	atFirst := snap("tda-app-manual-at-first", "manual", "available", first)

	tests := []struct {
		name        string
		state       string
		target      SnapshotTarget
		wantDefault string // snapshot id, "pit:RFC3339" or ""
		phases      map[string]string
		relations   map[string]string
		evidence    []string
		note        string
	}{
		{name: "postgres: the newest available snapshot before the first event", state: sdk.StateFiring,
			target:      pgTarget(nightly, anomaly, creating, manual, other, later),
			wantDefault: manual.ID,
			phases: map[string]string{nightly.ID: PhaseBefore, manual.ID: PhaseBefore, creating.ID: PhaseBefore,
				anomaly.ID: PhaseDuring, later.ID: PhaseDuring, other.ID: PhaseBefore},
			relations: map[string]string{anomaly.ID: "taken 4.2 s after the first event", manual.ID: "taken 10 s before the first event",
				nightly.ID: "taken 20 h 0 min before the first event", later.ID: "taken 3 min 0 s after the first event"},
			evidence: []string{anomaly.ID}},
		{name: "a snapshot at the first event itself is during", state: sdk.StateFiring,
			target: pgTarget(atFirst, nightly), wantDefault: nightly.ID,
			phases: map[string]string{atFirst.ID: PhaseDuring}, relations: map[string]string{atFirst.ID: "taken at the first event"}},
		{name: "after a resolved incident's last event", state: sdk.StateResolved,
			target: pgTarget(anomaly, later, manual), wantDefault: manual.ID,
			phases: map[string]string{anomaly.ID: PhaseDuring, later.ID: PhaseAfter}, evidence: []string{anomaly.ID}},
		{name: "nothing before the incident", state: sdk.StateFiring,
			target: pgTarget(anomaly, later), wantDefault: "",
			note: "no snapshot was taken before the first event", evidence: []string{anomaly.ID}},
		{name: "aurora: point in time just before the first event", state: sdk.StateFiring,
			target: SnapshotTarget{Name: "guard", Kind: "aurora", Target: "prod", Tiers: []SnapshotTier{
				{Name: "point-in-time", Earliest: first.Add(-7 * 24 * time.Hour), Newest: first.Add(2 * time.Minute)},
				{Name: "anomaly", Snapshots: []SnapshotInfo{anomaly}},
				{Name: "scheduled", Snapshots: []SnapshotInfo{nightly}}}},
			wantDefault: "pit:2026-11-29T22:57:05Z", evidence: []string{anomaly.ID},
			relations: map[string]string{"pit": "point in time 0.30 s before the first event"}},
		{name: "aurora: the window ends before the incident", state: sdk.StateFiring,
			target: SnapshotTarget{Name: "guard", Kind: "aurora", Target: "prod", Tiers: []SnapshotTier{
				{Name: "point-in-time", Earliest: first.Add(-7 * 24 * time.Hour), Newest: first.Add(-90 * time.Second)},
				{Name: "scheduled", Snapshots: []SnapshotInfo{nightly}}}},
			wantDefault: "pit:2026-11-29T22:55:35Z"},
		{name: "aurora: the window begins after the first event", state: sdk.StateFiring,
			target: SnapshotTarget{Name: "guard", Kind: "aurora", Target: "prod", Tiers: []SnapshotTier{
				{Name: "point-in-time", Earliest: first.Add(time.Minute), Newest: first.Add(5 * time.Minute)},
				{Name: "scheduled", Snapshots: []SnapshotInfo{nightly}}}},
			wantDefault: nightly.ID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := relativeTo(incidentRef(tc.state), tc.target)
			got := ""
			if d := tr.Default; d != nil {
				got = d.SnapshotID
				if d.PointInTime {
					got = "pit:" + d.Time.Format(time.RFC3339Nano)
				}
				if d.Phase != PhaseBefore || !d.Restorable() {
					t.Errorf("default %+v is not a restorable point before the incident", d)
				}
			}
			if got != tc.wantDefault {
				t.Fatalf("default %q, want %q (note %q)", got, tc.wantDefault, tr.Note)
			}
			if tc.note != "" && !strings.Contains(tr.Note, tc.note) {
				t.Errorf("note %q lacks %q", tr.Note, tc.note)
			}
			var evidence []string
			defaults := 0
			for i, p := range tr.Points {
				if i > 0 && p.Time.After(tr.Points[i-1].Time) {
					t.Errorf("points not newest first at %d", i)
				}
				if p.Default {
					defaults++
				}
				if p.Evidence {
					evidence = append(evidence, p.SnapshotID)
				}
				id := p.SnapshotID
				if p.PointInTime {
					id = "pit"
				}
				if want, ok := tc.phases[id]; ok && p.Phase != want {
					t.Errorf("%s: phase %s, want %s", id, p.Phase, want)
				}
				if want, ok := tc.relations[id]; ok && p.Relation != want {
					t.Errorf("%s: relation %q, want %q", id, p.Relation, want)
				}
				switch {
				case p.Phase == PhaseBefore && p.Warning != "":
					t.Errorf("%s: a point before the incident carries a warning %q", id, p.Warning)
				case p.Phase == PhaseDuring && !strings.Contains(p.Warning, "may hold changes made by the incident"):
					t.Errorf("%s: warning %q", id, p.Warning)
				case p.Phase == PhaseAfter && !strings.Contains(p.Warning, "holds the changes made by the incident"):
					t.Errorf("%s: warning %q", id, p.Warning)
				}
			}
			if (tr.Default != nil) != (defaults == 1) || defaults > 1 {
				t.Errorf("%d points marked default, default %v", defaults, tr.Default)
			}
			if strings.Join(evidence, ",") != strings.Join(tc.evidence, ",") {
				t.Errorf("evidence %v, want %v", evidence, tc.evidence)
			}
		})
	}
}

// TestRelativeToIgnoresOrder: the default and the order of the points do not depend on the
// order the provider listed the snapshots or the tiers in.
func TestRelativeToIgnoresOrder(t *testing.T) {
	rng := rand.New(rand.NewSource(19))
	var snaps []SnapshotInfo
	for i := 0; i < 40; i++ {
		at := first.Add(time.Duration(rng.Intn(7200)-3600) * time.Second)
		status := "available"
		if rng.Intn(4) == 0 {
			status = "creating"
		}
		snaps = append(snaps, snap("s-"+at.Format("150405")+"-"+string(rune('a'+i%26)), "scheduled", status, at))
	}
	in := incidentRef(sdk.StateFiring)
	want := relativeTo(in, pgTarget(snaps...))
	for round := 0; round < 50; round++ {
		shuffled := append([]SnapshotInfo(nil), snaps...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		half := len(shuffled) / 2
		target := SnapshotTarget{Name: "guard", Kind: "postgres", Target: "app", Tiers: []SnapshotTier{
			{Name: "manual", Snapshots: shuffled[:half]}, {Name: "scheduled", Snapshots: shuffled[half:]}}}
		got := relativeTo(in, target)
		if want.Default == nil || got.Default == nil || got.Default.SnapshotID != want.Default.SnapshotID {
			t.Fatalf("round %d: default %+v, want %+v", round, got.Default, want.Default)
		}
		for i := range got.Points {
			if got.Points[i].SnapshotID != want.Points[i].SnapshotID {
				t.Fatalf("round %d: point %d is %s, want %s", round, i, got.Points[i].SnapshotID, want.Points[i].SnapshotID)
			}
		}
	}
}

func TestSpell(t *testing.T) {
	for d, want := range map[time.Duration]string{
		350 * time.Millisecond: "0.35 s", 4200 * time.Millisecond: "4.2 s", 4 * time.Second: "4 s",
		42 * time.Second: "42 s", 185 * time.Second: "3 min 5 s", 130 * time.Minute: "2 h 10 min",
		76 * time.Hour: "3 d 4 h", -4200 * time.Millisecond: "4.2 s",
	} {
		if got := spell(d); got != want {
			t.Errorf("spell(%v) = %q, want %q", d, got, want)
		}
	}
}

// fakeTargets is one PostgreSQL snapshot target whose snapshots, probe result and restores
// the test controls.
type fakeTargets struct {
	mu       sync.Mutex
	target   SnapshotTarget
	probeErr error
	probes   int
	listErr  error
	restored []RestoreRequest
	interval time.Duration
}

func (f *fakeTargets) List(context.Context) ([]SnapshotTarget, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return nil, f.listErr
	}
	return []SnapshotTarget{f.target}, nil
}

func (*fakeTargets) ValidID(string) error { return nil }

func (f *fakeTargets) Resolve(_ context.Context, target string) (string, string, error) {
	if target != "" && target != f.target.Name {
		return "", "", errorf(KindNotFound, "no snapshot target %q", target)
	}
	return f.target.Name, f.target.Target, nil
}

func (f *fakeTargets) Create(context.Context, string) (SnapshotInfo, error) {
	return SnapshotInfo{}, errors.New("not in this test")
}

func (f *fakeTargets) Restore(_ context.Context, req RestoreRequest) (Restore, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.restored = append(f.restored, req)
	return Restore{RecoveryPoint: first.Add(-10 * time.Second), RPOSeconds: 612.25, RTOSeconds: 0.734,
		Connection: &Connection{Kind: "postgres", Host: "127.0.0.1", Port: 5432, Database: req.NewName, User: "tda"}}, nil
}

func (f *fakeTargets) ProbeIntervals() map[string]time.Duration {
	return map[string]time.Duration{f.target.Name: f.interval}
}

func (f *fakeTargets) Probe(context.Context, string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.probes++
	return f.probeErr
}

func (f *fakeTargets) set(fn func(*fakeTargets)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func newRecoveryFixture(t *testing.T, targets *fakeTargets) *fixture {
	t.Helper()
	f := newFixture(t, false)
	f.svc.Close(context.Background())
	f.agent = &fakeAgent{pipelines: map[string][]string{"detect": {"processor.rules.anomalies"}}}
	svc, err := NewService(Options{Store: f.store, Trail: NewTrail(f.trail), Now: f.clock.Now, Agent: f.agent, Snapshots: targets})
	if err != nil {
		t.Fatal(err)
	}
	f.agent.svc = svc
	t.Cleanup(func() { svc.Close(context.Background()) })
	f.svc = svc
	return f
}

func incidentLine(st string) string {
	ev := sdk.Event{Time: first.Add(15 * time.Second), Kind: sdk.KindAlert, Source: "file.app",
		Alert: &sdk.Alert{Rule: "mass_password_reset", Severity: "HIGH", State: st, Key: "mallory", Count: 15, Threshold: 10,
			Window: time.Minute, FirstSeen: first, LastSeen: first.Add(14 * time.Second), Fingerprint: "3f9a0c1d5e6f7a8b"}}
	b, _ := ev.MarshalJSON()
	return string(b) + "\n"
}

// TestRestoreFromAnIncident: a restore naming an incident defaults to the newest snapshot
// before its first event, refuses one taken during it unless confirmed, and reports the
// connection details, RPO and RTO to the millisecond and the next steps; the audit log names
// the snapshot, the target and the new database.
func TestRestoreFromAnIncident(t *testing.T) {
	ctx := context.Background()
	anomaly := snap("tda-app-anomaly-20261129t225705z-3f9a0c1d", "anomaly", "available", first.Add(4200*time.Millisecond),
		"alert_fingerprint", "3f9a0c1d5e6f7a8b", "alert_rule", "mass_password_reset")
	before := snap("tda-app-manual-20261129t225655z", "manual", "available", first.Add(-10*time.Second))
	targets := &fakeTargets{target: pgTarget(anomaly, before), interval: time.Hour}
	f := newRecoveryFixture(t, targets)
	f.clock.Set(first.Add(10 * time.Minute))
	f.appendTrail(t, incidentLine(sdk.StateFiring))

	rec := must(f.svc.Recovery(ctx, "3f9a0c1d"))(t)
	if rec.Incident.Fingerprint != "3f9a0c1d5e6f7a8b" || len(rec.Targets) != 1 || rec.Targets[0].Default == nil ||
		rec.Targets[0].Default.SnapshotID != before.ID || strings.Join(rec.Evidence, ",") != anomaly.ID {
		t.Fatalf("recovery: %+v", rec)
	}
	_, err := f.svc.Recovery(ctx, "nosuchincident")
	wantKind(t, err, KindNotFound)

	base := RestoreRequest{NewName: "app_restored", Confirm: "app", Reason: "undo the password resets", Incident: "3f9a0c1d5e6f7a8b"}
	// Blocked until acknowledged.
	_, err = f.svc.StartRestore(ctx, alice, base)
	wantKind(t, err, KindForbidden)
	must(f.svc.Acknowledge(ctx, alice, AckRequest{Fingerprint: "3f9a0c1d5e6f7a8b", Comment: "restoring"}))(t)

	during := base
	during.SnapshotID = anomaly.ID
	_, err = f.svc.StartRestore(ctx, alice, during)
	wantKind(t, err, KindInvalid)
	for _, want := range []string{anomaly.ID, "4.2 s after the first event", "may hold changes made by the incident",
		"Restore snapshot " + before.ID, "confirm_during"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q lacks %q", err, want)
		}
	}
	_, err = f.svc.StartRestore(ctx, alice, RestoreRequest{NewName: "x", Confirm: "app", Reason: "r", Incident: "nosuchincident"})
	wantKind(t, err, KindNotFound)

	r := must(f.svc.StartRestore(ctx, alice, base))(t)
	if r.SnapshotID != before.ID || r.Phase != PhaseBefore || r.Relation != "taken 10 s before the first event" ||
		r.Incident == "" || r.Incident != rec.Incident.ID {
		t.Fatalf("restore: %+v", r)
	}
	done := waitRestore(t, f.svc, r.ID)
	if done.Connection == nil || done.Connection.String() != "host 127.0.0.1, port 5432, database app_restored, user tda" ||
		done.RTOSeconds != 0.734 || len(done.NextSteps) != 2 ||
		!strings.Contains(done.NextSteps[0], "the password hashes of the affected users hold what they held before 2026-11-29T22:57:05.3Z") ||
		!strings.Contains(done.NextSteps[1], "tda repair -config FILE -restore app_restored -incident 3f9a0c1d5e6f7a8b") ||
		done.IncidentFingerprint != "3f9a0c1d5e6f7a8b" {
		t.Fatalf("finished restore: %+v", done)
	}

	confirmed := during
	confirmed.NewName, confirmed.ConfirmDuring = "app_restored2", true
	r2 := must(f.svc.StartRestore(ctx, alice, confirmed))(t)
	if r2.SnapshotID != anomaly.ID || r2.Phase != PhaseDuring {
		t.Fatalf("confirmed restore: %+v", r2)
	}
	waitRestore(t, f.svc, r2.ID)

	entries := must(f.svc.Audit(ctx, AuditFilter{Action: "restore"}))(t)
	var got []string
	for _, e := range entries {
		got = append(got, e.Action+" "+e.Outcome+" "+e.Target)
		if e.Outcome == "ok" && (e.Detail["target"] != "guard" || e.Detail["source"] != "app") {
			t.Errorf("%s lacks the target: %v", e.Action, e.Detail)
		}
	}
	want := []string{
		"restore.finish ok " + anomaly.ID + " -> app_restored2",
		"restore.start ok " + anomaly.ID + " -> app_restored2",
		"restore.finish ok " + before.ID + " -> app_restored",
		"restore.start ok " + before.ID + " -> app_restored",
		"restore.start refused (no recovery point) -> x",
		"restore.start refused " + anomaly.ID + " -> app_restored",
		"restore.start refused " + before.ID + " -> app_restored",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(entries[1].Detail["confirmed"], "may hold changes") || entries[3].Detail["phase"] != PhaseBefore ||
		entries[3].Detail["confirmed"] != "" {
		t.Errorf("confirmation not recorded: %v / %v", entries[1].Detail, entries[3].Detail)
	}
	if entries[2].Detail["rto_seconds"] != "0.734" || entries[2].Detail["connection"] == "" {
		t.Errorf("finish detail: %v", entries[2].Detail)
	}
}

func waitRestore(t *testing.T, svc *Service, id string) Restore {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range must(svc.Restores(context.Background()))(t) {
			if r.ID == id && r.Status != RestoreRunning {
				return r
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("restore %s did not finish", id)
	return Restore{}
}

// TestProbesDegradeAndRecover: a failing probe makes the state degraded with its reason, and
// the next passing probe clears it.
func TestProbesDegradeAndRecover(t *testing.T) {
	ctx := context.Background()
	targets := &fakeTargets{target: pgTarget(), interval: 20 * time.Millisecond,
		probeErr: errors.New(`probe database app: password authentication failed for user "tda". fix user and password in the postgres block`)}
	f := newRecoveryFixture(t, targets)
	waitState(t, f.svc, func(st SystemState) bool { return st.Status == StatusDegraded }, "degraded")
	st := must(f.svc.State(ctx))(t)
	reasons := strings.Join(st.Reasons, "\n")
	if !strings.Contains(reasons, `snapshot target guard: probe database app: password authentication failed for user "tda". fix user and password`) ||
		len(st.SnapshotTargets) != 1 || st.SnapshotTargets[0].Healthy {
		t.Fatalf("state: %+v", st)
	}
	targets.set(func(f *fakeTargets) { f.probeErr = nil })
	waitState(t, f.svc, func(st SystemState) bool { return st.Status == StatusNormal }, "normal again")
	st = must(f.svc.State(ctx))(t)
	if len(st.SnapshotTargets) != 1 || !st.SnapshotTargets[0].Healthy || len(st.Degraded) != 0 {
		t.Fatalf("state after the fix: %+v", st)
	}
	// The service stops probing once closed.
	f.svc.Close(ctx)
	targets.mu.Lock()
	n := targets.probes
	targets.mu.Unlock()
	time.Sleep(100 * time.Millisecond)
	targets.mu.Lock()
	defer targets.mu.Unlock()
	if targets.probes != n {
		t.Fatalf("probed %d times after Close", targets.probes-n)
	}
}

func waitState(t *testing.T, svc *Service, ok func(SystemState) bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := svc.State(context.Background()); err == nil && ok(st) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	st, _ := svc.State(context.Background())
	t.Fatalf("state never %s: %+v", what, st)
}

// TestAnomalySnapshotsAudited: an anomaly snapshot the sink took is recorded once, by the
// system, naming the snapshot, the target and the incident; a snapshot that no longer exists
// is forgotten; an unreadable list records nothing and loses nothing.
func TestAnomalySnapshotsAudited(t *testing.T) {
	ctx := context.Background()
	targets := &fakeTargets{target: pgTarget(), interval: time.Hour, listErr: errors.New("database unreachable")}
	f := newRecoveryFixture(t, targets)
	f.appendTrail(t, incidentLine(sdk.StateFiring))
	anomaly := snap("tda-app-anomaly-20261129t225705z-3f9a0c1d", "anomaly", "available", first.Add(4200*time.Millisecond),
		"alert_fingerprint", "3f9a0c1d5e6f7a8b", "alert_rule", "mass_password_reset")
	alert := sdk.Event{Kind: sdk.KindAlert, Alert: &sdk.Alert{Rule: "mass_password_reset", Severity: "HIGH",
		State: sdk.StateFiring, Fingerprint: "3f9a0c1d5e6f7a8b"}}
	f.svc.Observe("detect", alert)
	time.Sleep(50 * time.Millisecond)
	if n := len(must(f.svc.Audit(ctx, AuditFilter{Action: ActionSnapshotAnomaly}))(t)); n != 0 {
		t.Fatalf("%d entries while the list is unreadable", n)
	}
	// The sink's snapshot shows up: the scan that follows the alert records it.
	targets.set(func(f *fakeTargets) {
		f.listErr = nil
		f.target = pgTarget(anomaly, snap("tda-app-manual-x", "manual", "available", first.Add(-time.Hour)))
	})
	var entries []AuditEntry
	deadline := time.Now().Add(10 * time.Second)
	for len(entries) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		entries = must(f.svc.Audit(ctx, AuditFilter{Action: ActionSnapshotAnomaly}))(t)
	}
	if len(entries) != 1 {
		t.Fatalf("%d anomaly entries", len(entries))
	}
	e := entries[0]
	if e.Actor != "tda" || e.Via != "system" || e.Target != anomaly.ID || e.Outcome != "ok" ||
		e.Detail["target"] != "guard" || e.Detail["source"] != "app" || e.Detail["fingerprint"] != "3f9a0c1d5e6f7a8b" ||
		e.Detail["incident"] == "" || e.Detail["relation"] != "taken 4.2 s after the first event" ||
		!strings.Contains(e.Reason, "for incident "+e.Detail["incident"]+" mass_password_reset (key mallory)") {
		t.Fatalf("entry: %+v", e)
	}
	// The snapshot is on the incident's timeline.
	d := must(f.svc.Incident(ctx, e.Detail["incident"]))(t)
	noted := false
	for _, tl := range d.Timeline {
		noted = noted || (tl.What == TimelineSnapshot && tl.Snapshot == anomaly.ID && strings.Contains(tl.Text, "4.2 s after the first event"))
	}
	if !noted {
		t.Errorf("timeline lacks the anomaly snapshot: %+v", d.Timeline)
	}
	// Scanning again records nothing twice.
	f.svc.auditAnomalySnapshots(map[string]time.Time{})
	f.svc.Observe("detect", alert)
	time.Sleep(50 * time.Millisecond)
	if n := len(must(f.svc.Audit(ctx, AuditFilter{Action: ActionSnapshotAnomaly}))(t)); n != 1 {
		t.Fatalf("%d entries after more scans", n)
	}
	// Pruned: its id is forgotten.
	targets.set(func(f *fakeTargets) { f.target = pgTarget() })
	f.svc.auditAnomalySnapshots(map[string]time.Time{})
	if n := countBucket(t, f, bucketAuditedSnapshots); n != 0 {
		t.Fatalf("%d ids kept for snapshots that no longer exist", n)
	}
}

func countBucket(t *testing.T, f *fixture, bucket []string) int {
	t.Helper()
	n := 0
	if err := f.store.View(func(tx *state.Tx) error {
		var err error
		n, err = tx.Count(bucket)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFailedSnapshotNamesItsTarget: a snapshot that could not be taken is audited with what it
// was to be of, not an empty target.
func TestFailedSnapshotNamesItsTarget(t *testing.T) {
	ctx := context.Background()
	f := newRecoveryFixture(t, &fakeTargets{target: pgTarget(), interval: time.Hour})
	_, err := f.svc.CreateSnapshot(ctx, alice, SnapshotRequest{Reason: "before the release"})
	if err == nil {
		t.Fatal("the fake target took a snapshot")
	}
	e := must(f.svc.Audit(ctx, AuditFilter{Action: ActionSnapshotCreate}))(t)
	if len(e) != 1 || e[0].Target != "new snapshot of app" || e[0].Outcome != "failed" || e[0].Detail["target"] != "guard" {
		t.Fatalf("audit: %+v", e)
	}
}
