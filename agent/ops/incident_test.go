package ops

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/sdk"
)

func updateLine(fp string, count int64, at time.Time, entities map[string][]string) string {
	ev := sdk.IncidentUpdate{Fingerprint: fp, Rule: "mass_password_reset", Count: count, Entities: entities}.
		Event(at, "file.app", "/var/log/app.log")
	b, _ := ev.MarshalJSON()
	return string(b) + "\n"
}

func whats(tl []TimelineEntry) string {
	var w []string
	for _, e := range tl {
		w = append(w, e.What)
	}
	return strings.Join(w, ",")
}

// TestIncidentLifecycle walks one HIGH incident from open to closed: it blocks until someone
// acknowledges it even after its burst ended, an acknowledged incident is never "normal",
// and every step is in the timeline and the audit log with the incident it acted on.
func TestIncidentLifecycle(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, false)
	at := f.clock.Now()
	f.appendTrail(t, alertLine("fp-1", "mass_password_reset", "HIGH", "firing", at))

	list := must(f.svc.Incidents(ctx, IncidentFilter{}))(t)
	if len(list) != 1 || len(list[0].ID) != IncidentIDLen || list[0].Status != IncidentOpen || !list[0].Fired {
		t.Fatalf("incidents: %+v", list)
	}
	id := list[0].ID
	if st := must(f.svc.State(ctx))(t); st.Status != StatusBlocked || len(st.Blocking) != 1 || st.Blocking[0].ID != id {
		t.Fatalf("state while firing: %+v", st)
	}

	// The rule reports the live count and the entities; the count never goes back.
	f.appendTrail(t, updateLine("fp-1", 15, at.Add(5*time.Second), map[string][]string{
		"user_id": {"1", "2", "3"}, "ip": {"203.0.113.9"}}))
	f.appendTrail(t, updateLine("fp-1", 12, at.Add(6*time.Second), map[string][]string{"user_id": {"3", "4"}}))
	d := must(f.svc.Incident(ctx, id))(t)
	if d.Count != 15 || !d.LastSeen.Equal(at.Add(6*time.Second)) || d.EntityCounts["user_id"] != 4 || d.EntityCounts["ip"] != 1 ||
		strings.Join(d.Entities.Fields["user_id"], " ") != "1 2 3 4" || d.Entities.Total != 5 {
		t.Fatalf("after updates: count %d, entities %+v %+v", d.Count, d.EntityCounts, d.Entities)
	}

	// The burst ends: still blocked, because nobody acknowledged it.
	f.clock.Set(at.Add(2 * time.Minute))
	f.appendTrail(t, alertLine("fp-1", "mass_password_reset", "HIGH", "resolved", at.Add(90*time.Second)))
	st := must(f.svc.State(ctx))(t)
	if st.Status != StatusBlocked || len(st.Blocking) != 1 || !strings.Contains(st.Reasons[0], "never acknowledged") {
		t.Fatalf("state after the burst ended unacknowledged: %+v", st)
	}
	if in := must(f.svc.Incident(ctx, id))(t); in.Status != IncidentResolved || in.ResolvedAt.IsZero() {
		t.Fatalf("resolved: %+v", in)
	}

	alice := Actor{Name: "alice"}
	_, err := f.svc.CloseIncident(ctx, alice, IncidentAction{ID: id, Note: "done"})
	wantKind(t, err, KindConflict)
	_, err = f.svc.AcknowledgeIncident(ctx, alice, IncidentAction{ID: id})
	wantKind(t, err, KindInvalid)
	_, err = f.svc.AcknowledgeIncident(ctx, alice, IncidentAction{ID: "nope0000", Reason: "x"})
	wantKind(t, err, KindNotFound)
	in := must(f.svc.AcknowledgeIncident(ctx, alice, IncidentAction{ID: id, Reason: "restoring users"}))(t)
	if in.Status != IncidentResolved || in.Ack == nil || in.Ack.By != "alice" || in.Ack.Incident != id {
		t.Fatalf("acknowledged: %+v", in)
	}
	_, err = f.svc.AcknowledgeIncident(ctx, Actor{Name: "bob"}, IncidentAction{ID: id, Reason: "me too"})
	wantKind(t, err, KindConflict)
	st = must(f.svc.State(ctx))(t)
	if st.Status != StatusAcknowledged || len(st.Blocking) != 0 || len(st.Acknowledged) != 1 {
		t.Fatalf("state after ack: %+v", st)
	}

	_, err = f.svc.CloseIncident(ctx, alice, IncidentAction{ID: id})
	wantKind(t, err, KindInvalid)
	in = must(f.svc.CloseIncident(ctx, alice, IncidentAction{ID: id, Note: "attacker token revoked; 15 users restored"}))(t)
	if in.Status != IncidentClosed || in.Close.Note == "" {
		t.Fatalf("closed: %+v", in)
	}
	if st := must(f.svc.State(ctx))(t); st.Status != StatusDegraded || len(st.Acknowledged) != 0 {
		// degraded: no agent runs in this fixture; what matters is that no incident shows.
		t.Fatalf("state after close: %+v", st)
	}
	_, err = f.svc.CloseIncident(ctx, alice, IncidentAction{ID: id, Note: "again"})
	wantKind(t, err, KindConflict)

	d = must(f.svc.Incident(ctx, id))(t)
	if got := whats(d.Timeline); got != "opened,count,resolved,acknowledged,closed" {
		t.Fatalf("timeline: %s\n%+v", got, d.Timeline)
	}
	// The audit log names the incident, its rule, and who acted: the system for what the rule did.
	entries := must(f.svc.Audit(ctx, AuditFilter{Action: "incident"}))(t)
	var got []string
	for _, e := range entries {
		if e.Target == "nope0000" && e.Outcome == "refused" {
			got = append(got, "not-found")
			continue // an unknown id is named as given
		}
		if e.Target != id || e.Detail["rule"] != "mass_password_reset" || e.Detail["incident"] != id {
			t.Fatalf("audit entry does not name the incident: %+v", e)
		}
		got = append(got, e.Action+"/"+e.Actor+"/"+e.Outcome)
	}
	want := "incident.close/alice/refused,incident.close/alice/ok,incident.close/alice/refused," +
		"incident.acknowledge/bob/refused,incident.acknowledge/alice/ok,not-found,incident.acknowledge/alice/refused," +
		"incident.close/alice/refused,incident.resolve/tda/ok,incident.open/tda/ok"
	if strings.Join(got, ",") != want {
		t.Fatalf("audit:\n got %s\nwant %s", strings.Join(got, ","), want)
	}

	// A new service over the same store (an agent restart) reads the trail again: the
	// incident keeps its id and status, and nothing is recorded twice.
	svc2, err := NewService(Options{Store: f.store, Trail: NewTrail(f.trail), Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer svc2.Close(ctx)
	again := must(svc2.Incidents(ctx, IncidentFilter{}))(t)
	if len(again) != 1 || again[0].ID != id || again[0].Status != IncidentClosed || again[0].Count != 15 {
		t.Fatalf("after restart: %+v", again)
	}
	if n := len(must(svc2.Audit(ctx, AuditFilter{Action: "incident"}))(t)); n != len(entries) {
		t.Fatalf("audit entries after restart: %d, want %d", n, len(entries))
	}
	if d := must(svc2.Incident(ctx, id))(t); whats(d.Timeline) != "opened,count,resolved,acknowledged,closed" {
		t.Fatalf("timeline after restart: %s", whats(d.Timeline))
	}
}

// TestIncidentAckAndResolveInEitherOrder: acknowledging before or after the burst ends gives
// the same incident and the same state.
func TestIncidentAckAndResolveInEitherOrder(t *testing.T) {
	ctx := context.Background()
	final := map[string]string{}
	for _, order := range []string{"ack-first", "resolve-first"} {
		f := newFixture(t, false)
		at := f.clock.Now()
		f.appendTrail(t, alertLine("fp-2", "bulk_deletion", "HIGH", "firing", at))
		id := must(f.svc.Incidents(ctx, IncidentFilter{}))(t)[0].ID
		steps := []func(){
			func() {
				must(f.svc.AcknowledgeIncident(ctx, Actor{Name: "bob"}, IncidentAction{ID: id, Reason: "on it"}))(t)
			},
			func() {
				f.appendTrail(t, alertLine("fp-2", "bulk_deletion", "HIGH", "resolved", at.Add(time.Minute)))
			},
		}
		if order == "resolve-first" {
			steps[0], steps[1] = steps[1], steps[0]
		}
		steps[0]()
		st := must(f.svc.State(ctx))(t)
		if order == "ack-first" && (st.Status != StatusAcknowledged || !strings.Contains(st.Reasons[0], "still firing")) {
			t.Fatalf("acknowledged while firing: %+v", st)
		}
		if order == "resolve-first" && st.Status != StatusBlocked {
			t.Fatalf("resolved unacknowledged: %+v", st)
		}
		steps[1]()
		st = must(f.svc.State(ctx))(t)
		in := must(f.svc.Incident(ctx, id))(t)
		final[order] = fmt.Sprintf("%s %s %d %v", st.Status, in.Status, len(st.Acknowledged), in.Ack != nil)
	}
	if final["ack-first"] != final["resolve-first"] || final["ack-first"] != "acknowledged resolved 1 true" {
		t.Fatalf("final states differ: %v", final)
	}
}

// TestIncidentSuppressedNeverBlocks: an incident recorded under override that never fired
// does not block, and one that did fire after the override ended does.
func TestIncidentSuppressedNeverBlocks(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, false)
	at := f.clock.Now()
	f.appendTrail(t, alertLine("fp-s", "mass_password_reset", "HIGH", "suppressed", at),
		alertLine("fp-s", "mass_password_reset", "HIGH", "resolved", at.Add(time.Minute)))
	if st := must(f.svc.State(ctx))(t); len(st.Blocking) != 0 {
		t.Fatalf("a suppressed incident blocks: %+v", st)
	}
	f.appendTrail(t, alertLine("fp-t", "mass_password_reset", "HIGH", "suppressed", at))
	must(f.svc.Incidents(ctx, IncidentFilter{}))(t)
	f.appendTrail(t, alertLine("fp-t", "mass_password_reset", "HIGH", "firing", at.Add(time.Second)))
	st := must(f.svc.State(ctx))(t)
	if len(st.Blocking) != 1 || st.Blocking[0].Fingerprint != "fp-t" {
		t.Fatalf("fired after the override: %+v", st)
	}
	d := must(f.svc.Incident(ctx, "fp-t"))(t)
	if got := whats(d.Timeline); got != "opened,firing" {
		t.Fatalf("timeline: %s", got)
	}
}

// TestIncidentFilters: status, rule, severity, since and free text.
func TestIncidentFilters(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, false)
	at := f.clock.Now()
	f.appendTrail(t, alertLine("fp-a", "mass_password_reset", "HIGH", "firing", at),
		alertLine("fp-b", "auth_failures", "MEDIUM", "firing", at.Add(time.Second)),
		alertLine("fp-b", "auth_failures", "MEDIUM", "resolved", at.Add(time.Minute)))
	a := must(f.svc.Incidents(ctx, IncidentFilter{Rule: "mass_password_reset"}))(t)[0]
	cases := []struct {
		f    IncidentFilter
		want string
	}{
		{IncidentFilter{}, "fp-b,fp-a"},
		{IncidentFilter{Status: "open"}, "fp-a"},
		{IncidentFilter{Status: "resolved"}, "fp-b"},
		{IncidentFilter{Status: "active"}, "fp-b,fp-a"},
		{IncidentFilter{Status: "closed"}, ""},
		{IncidentFilter{Severity: "high"}, "fp-a"},
		{IncidentFilter{Rule: "auth_failures"}, "fp-b"},
		{IncidentFilter{Since: at.Add(30 * time.Second)}, "fp-b"},
		{IncidentFilter{Query: "MALLORY"}, "fp-b,fp-a"},
		{IncidentFilter{Query: a.ID}, "fp-a"},
		{IncidentFilter{Query: "nothing like it"}, ""},
		{IncidentFilter{Limit: 1}, "fp-b"},
	}
	for _, c := range cases {
		var got []string
		for _, in := range must(f.svc.Incidents(ctx, c.f))(t) {
			got = append(got, in.Fingerprint)
		}
		if strings.Join(got, ",") != c.want {
			t.Errorf("%+v: got %v, want %s", c.f, got, c.want)
		}
	}
	_, err := f.svc.Incidents(ctx, IncidentFilter{Status: "firing"})
	wantKind(t, err, KindInvalid)
	_, err = f.svc.Incidents(ctx, IncidentFilter{Severity: "urgent"})
	wantKind(t, err, KindInvalid)
}

// TestIncidentBounds: entities stop at MaxEntities with the truncated flag, the timeline at
// MaxTimeline keeping every step people took, the records at MaxIncidentRecords dropping
// closed ones first and never one that blocks.
func TestIncidentBounds(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, false)
	at := f.clock.Now()
	f.appendTrail(t, alertLine("fp-big", "bulk_deletion", "HIGH", "firing", at))
	var lines []string
	for i := 0; i < 3; i++ {
		vals := make([]string, MaxEntities/2)
		for j := range vals {
			vals[j] = fmt.Sprintf("user-%d-%d", i, j)
		}
		lines = append(lines, updateLine("fp-big", int64((i+1)*MaxEntities/2), at, map[string][]string{"user_id": vals}))
	}
	f.appendTrail(t, lines...)
	d := must(f.svc.Incident(ctx, "fp-big"))(t)
	if d.Entities.Total != MaxEntities || !d.Entities.Truncated || !d.EntitiesTruncated ||
		d.Entities.Dropped != MaxEntities/2 || d.Count != int64(3*MaxEntities/2) {
		t.Fatalf("entities: total %d truncated %v dropped %d count %d", d.Entities.Total, d.Entities.Truncated,
			d.Entities.Dropped, d.Count)
	}

	var tl []TimelineEntry
	tl = addTimeline(tl, TimelineEntry{What: TimelineOpened})
	for i := 0; i < 3*MaxTimeline; i++ {
		tl = addTimeline(tl, TimelineEntry{What: TimelineCount, Count: int64(i)})
	}
	tl = addTimeline(tl, TimelineEntry{What: TimelineAcknowledged})
	if len(tl) != MaxTimeline || tl[0].What != TimelineOpened || tl[len(tl)-1].What != TimelineAcknowledged ||
		tl[len(tl)-2].Count != int64(3*MaxTimeline-1) {
		t.Fatalf("timeline: %d entries, first %+v, last two %+v", len(tl), tl[0], tl[len(tl)-2:])
	}
}

func TestIncidentRetention(t *testing.T) {
	if testing.Short() {
		t.Skip("writes MaxIncidentRecords records")
	}
	ctx := context.Background()
	f := newFixture(t, false)
	at := f.clock.Now()
	// Two old HIGH incidents: one blocks, one is closed; then enough newer ones to overflow.
	f.appendTrail(t, alertLine("fp-blocks", "mass_password_reset", "HIGH", "firing", at.Add(-time.Hour)),
		alertLine("fp-closed", "mass_password_reset", "HIGH", "firing", at.Add(-time.Hour)),
		alertLine("fp-closed", "mass_password_reset", "HIGH", "resolved", at.Add(-time.Hour)))
	bob := Actor{Name: "bob"}
	must(f.svc.AcknowledgeIncident(ctx, bob, IncidentAction{ID: "fp-closed", Reason: "x"}))(t)
	must(f.svc.CloseIncident(ctx, bob, IncidentAction{ID: "fp-closed", Note: "y"}))(t)
	var sb strings.Builder
	for i := 0; i < MaxIncidentRecords; i++ {
		sb.WriteString(alertLine(fmt.Sprintf("fp-%05d", i), "auth_failures", "MEDIUM", "firing", at.Add(time.Duration(i)*time.Millisecond)))
	}
	f.appendTrail(t, sb.String())
	list := must(f.svc.Incidents(ctx, IncidentFilter{Limit: 1000, Rule: "mass_password_reset"}))(t)
	if len(list) != 1 || list[0].Fingerprint != "fp-blocks" {
		t.Fatalf("kept of the old ones: %+v", list)
	}
	var n int
	if err := f.store.View(func(tx *state.Tx) error {
		var err error
		n, err = tx.Count(bucketIncidents)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if n != MaxIncidentRecords {
		t.Fatalf("%d records kept, want %d", n, MaxIncidentRecords)
	}
}

// TestIncidentIDs: ids are short, stable, URL-safe and distinct.
func TestIncidentIDs(t *testing.T) {
	seen := map[string]string{}
	for i := 0; i < 20000; i++ {
		fp := fmt.Sprintf("%032x", i)
		id := incidentID(fp, IncidentIDLen)
		if len(id) != IncidentIDLen || strings.Trim(id, idAlphabet) != "" || id != incidentID(fp, IncidentIDLen) {
			t.Fatalf("id %q of %s", id, fp)
		}
		if other, ok := seen[id]; ok {
			t.Fatalf("%s and %s share id %s", fp, other, id)
		}
		seen[id] = fp
	}
	b := newIncidentBook()
	id := b.newID("a")
	b.byID[id] = "b" // taken by another fingerprint
	if longer := b.newID("a"); len(longer) != IncidentIDLen+1 || !strings.HasPrefix(longer, id) {
		t.Fatalf("id after a collision: %q (first %q)", longer, id)
	}
}

// TestIncidentSyncFailureLosesNothing: when the store cannot be written, the sync reports it
// and the next one records what the trail said.
func TestIncidentSyncFailureLosesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := state.Open(filepath.Join(dir, "data"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{clock: &clock{t: time.Date(2026, 11, 29, 22, 0, 0, 0, time.UTC)}, store: store,
		trail: filepath.Join(dir, "alerts.jsonl")}
	svc, err := NewService(Options{Store: store, Trail: NewTrail(f.trail), Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close(ctx)
	f.svc = svc
	f.appendTrail(t, alertLine("fp-x", "mass_password_reset", "HIGH", "firing", f.clock.Now()))
	must(svc.Incidents(ctx, IncidentFilter{}))(t) // loads the book
	f.appendTrail(t, alertLine("fp-y", "mass_password_reset", "HIGH", "firing", f.clock.Now()))
	store.Close()
	if _, err := svc.Incidents(ctx, IncidentFilter{}); err == nil {
		t.Fatal("a sync into a closed store succeeded")
	}
	store2, err := state.Open(filepath.Join(dir, "data"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store2.Close()
	svc.store = store2
	list := must(svc.Incidents(ctx, IncidentFilter{}))(t)
	if len(list) != 2 {
		t.Fatalf("after the failed sync: %+v", list)
	}
}

// listedSnapshots is a snapshot target that only lists.
type listedSnapshots struct {
	targets []SnapshotTarget
	err     error
}

func (l listedSnapshots) List(context.Context) ([]SnapshotTarget, error) { return l.targets, l.err }
func (listedSnapshots) ValidID(string) error                             { return nil }
func (listedSnapshots) Resolve(context.Context, string) (string, string, error) {
	return "", "", fmt.Errorf("not here")
}
func (listedSnapshots) Create(context.Context, string) (SnapshotInfo, error) {
	return SnapshotInfo{}, fmt.Errorf("not here")
}
func (listedSnapshots) Restore(context.Context, RestoreRequest) (Restore, error) {
	return Restore{}, fmt.Errorf("not here")
}

// TestIncidentTimelineSnapshots: a snapshot tagged with the incident's fingerprint is in its
// timeline at its time, once even when the recovery side noted it too; a target that cannot
// be listed leaves the timeline as it is.
func TestIncidentTimelineSnapshots(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := state.Open(filepath.Join(dir, "data"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	at := time.Date(2026, 11, 29, 22, 0, 0, 0, time.UTC)
	snaps := listedSnapshots{targets: []SnapshotTarget{{Name: "guard", Kind: "postgres", Target: "app", Tiers: []SnapshotTier{
		{Name: "anomaly", Snapshots: []SnapshotInfo{
			{ID: "tda-anomaly-1", Time: at.Add(4 * time.Second), Status: "available", Trigger: "anomaly",
				Tags: map[string]string{tagAlertFingerprint: "fp-1"}},
			{ID: "tda-anomaly-0", Time: at.Add(-time.Hour), Status: "available", Trigger: "anomaly",
				Tags: map[string]string{tagAlertFingerprint: "fp-other"}}}},
	}}}}
	f := &fixture{clock: &clock{t: at.Add(time.Minute)}, store: store, trail: filepath.Join(dir, "alerts.jsonl")}
	svc, err := NewService(Options{Store: store, Trail: NewTrail(f.trail), Now: f.clock.Now, Snapshots: snaps})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close(ctx)
	f.svc = svc
	f.appendTrail(t, alertLine("fp-1", "mass_password_reset", "HIGH", "firing", at),
		alertLine("fp-1", "mass_password_reset", "HIGH", "resolved", at.Add(time.Minute)))
	d := must(svc.Incident(ctx, "fp-1"))(t)
	if got := whats(d.Timeline); got != "opened,snapshot,resolved" || d.Timeline[1].Snapshot != "tda-anomaly-1" {
		t.Fatalf("timeline: %s %+v", got, d.Timeline)
	}
	if err := svc.NoteIncident("fp-1", TimelineEntry{What: TimelineSnapshot, Snapshot: "tda-anomaly-1", Text: "evidence"}); err != nil {
		t.Fatal(err)
	}
	d = must(svc.Incident(ctx, "fp-1"))(t)
	if got := whats(d.Timeline); got != "opened,resolved,snapshot" {
		t.Fatalf("timeline after the note: %s", got)
	}
	svc.snapshots = listedSnapshots{err: fmt.Errorf("connection refused")}
	if d := must(svc.Incident(ctx, "fp-1"))(t); whats(d.Timeline) != "opened,resolved,snapshot" {
		t.Fatalf("timeline with an unreachable target: %s", whats(d.Timeline))
	}
}
