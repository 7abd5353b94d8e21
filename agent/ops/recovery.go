package ops

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tda-dev/tda/sdk"
)

// Phases of a recovery point relative to an incident.
const (
	// PhaseBefore: the point holds the data as it was before the incident's first event.
	PhaseBefore = "before"
	// PhaseDuring: taken at or after the first event while the incident went on; it may hold
	// changes the incident made.
	PhaseDuring = "during"
	// PhaseAfter: taken after the last event of a resolved incident; it holds what the
	// incident changed.
	PhaseAfter = "after"
)

// Snapshot tags the recovery view reads (written by the snapshot sink on anomaly snapshots).
const (
	tagSnapshotAlert = "alert_fingerprint"
	tagSnapshotRule  = "alert_rule"
	tagCreatedBy     = "created_by"
	createdByTDA     = "tda"
	tierPointInTime  = "point-in-time"
	triggerAnomaly   = "anomaly"
)

// IncidentRef is what the recovery view needs of an incident.
type IncidentRef struct {
	ID          string `json:"id"`
	Fingerprint string `json:"fingerprint"`
	Rule        string `json:"rule"`
	Severity    string `json:"severity"`
	State       string `json:"state"`
	Key         string `json:"key,omitempty"`
	Count       int64  `json:"count"`
	// FirstEvent is the incident's first event: the line between "before" and "during".
	FirstEvent time.Time `json:"first_event"`
	// LastEvent is the incident's latest event; once it resolved, points after it are "after".
	LastEvent time.Time `json:"last_event"`
}

func refOf(in Incident) IncidentRef {
	return IncidentRef{ID: in.ID, Fingerprint: in.Fingerprint, Rule: in.Rule, Severity: in.Severity, State: in.State,
		Key: in.Key, Count: in.Count, FirstEvent: in.FirstSeen.UTC(), LastEvent: in.LastSeen.UTC()}
}

// Describe names the incident for people: id, rule, key and first event.
func (r IncidentRef) Describe() string {
	key := ""
	if r.Key != "" {
		key = " (key " + r.Key + ")"
	}
	id := ""
	if r.ID != "" {
		id = r.ID + " "
	}
	return fmt.Sprintf("%s%s%s, first event %s", id, r.Rule, key, r.FirstEvent.Format(time.RFC3339Nano))
}

// RecoveryPoint is a snapshot, or a point in time, placed against an incident.
type RecoveryPoint struct {
	// SnapshotID is set for a snapshot; PointInTime for a point-in-time restore at Time.
	SnapshotID  string    `json:"snapshot,omitempty"`
	PointInTime bool      `json:"point_in_time,omitempty"`
	Time        time.Time `json:"time"`
	Trigger     string    `json:"trigger,omitempty"`
	Status      string    `json:"status,omitempty"`
	Phase       string    `json:"phase"`
	// OffsetSeconds is Time minus the first event (negative: before it).
	OffsetSeconds float64 `json:"offset_seconds"`
	// Relation says it for people: "taken 4.2 s after the first event".
	Relation string `json:"relation"`
	// Warning says what a point from during or after the incident may hold.
	Warning string `json:"warning,omitempty"`
	// Evidence marks the anomaly snapshot taken for this incident's alert.
	Evidence bool `json:"evidence,omitempty"`
	// Default marks the point a restore takes unless told otherwise.
	Default bool `json:"default,omitempty"`
}

// Restorable reports whether a restore can start from the point now.
func (p RecoveryPoint) Restorable() bool { return p.PointInTime || p.Status == "available" }

// TargetRecovery is one snapshot target's recovery points for an incident.
type TargetRecovery struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Target string `json:"target"`
	Error  string `json:"error,omitempty"`
	// Points are newest first: the snapshots of the target and, with point-in-time recovery,
	// the point just before the first event.
	Points []RecoveryPoint `json:"points"`
	// Default is the newest restorable point before the first event (nil: there is none).
	Default *RecoveryPoint `json:"default,omitempty"`
	// Note explains the default, or its absence.
	Note string `json:"note,omitempty"`
}

// IncidentRecovery is what recovering from an incident can start from.
type IncidentRecovery struct {
	Incident IncidentRef      `json:"incident"`
	Targets  []TargetRecovery `json:"targets"`
	// Evidence are the anomaly snapshots taken for the incident's alert.
	Evidence []string `json:"evidence"`
}

// Connection is where a restored database answers, without secrets. Aurora restores a
// cluster (Cluster) whose default database is Database; PostgreSQL a database.
type Connection struct {
	Kind     string `json:"kind"`
	Host     string `json:"host,omitempty"`
	Port     int    `json:"port,omitempty"`
	Cluster  string `json:"cluster,omitempty"`
	Database string `json:"database,omitempty"`
	User     string `json:"user,omitempty"`
}

// String is the connection for people: "host 127.0.0.1, port 5432, database app_restored, user tda".
func (c Connection) String() string {
	var parts []string
	add := func(k, v string) {
		if v != "" && v != "0" {
			parts = append(parts, k+" "+v)
		}
	}
	add("host", c.Host)
	add("port", strconv.Itoa(c.Port))
	add("cluster", c.Cluster)
	add("database", c.Database)
	add("user", c.User)
	return strings.Join(parts, ", ")
}

// justBefore is the point-in-time restore target for an incident: the last whole second
// strictly before its first event (RDS restores to whole seconds).
func justBefore(first time.Time) time.Time {
	return first.Add(-time.Nanosecond).Truncate(time.Second)
}

// phaseOf places t against the incident. Invariant: a point is "before" only when it is
// strictly earlier than the first event, so "before" never holds a change the incident made.
func phaseOf(in IncidentRef, t time.Time) string {
	switch {
	case t.Before(in.FirstEvent):
		return PhaseBefore
	case in.State == sdk.StateResolved && !in.LastEvent.IsZero() && t.After(in.LastEvent):
		return PhaseAfter
	}
	return PhaseDuring
}

// spell writes a duration for people with sub-second precision under ten seconds: "0.35 s",
// "4.2 s", "42 s", "3 min 5 s", "2 h 10 min", "3 d 4 h".
func spell(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d < time.Second:
		return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + " s"
	case d < 10*time.Second:
		return strconv.FormatFloat(math.Round(d.Seconds()*10)/10, 'f', -1, 64) + " s"
	case d < time.Minute:
		return strconv.Itoa(int(d.Round(time.Second).Seconds())) + " s"
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%d min %d s", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
	}
	d = d.Round(time.Hour)
	return fmt.Sprintf("%d d %d h", int(d.Hours())/24, int(d.Hours())%24)
}

// Place returns p with its phase, offset, relation and warning against the incident.
func (r IncidentRef) Place(p RecoveryPoint) RecoveryPoint {
	place(r, &p)
	return p
}

// place fills the phase, offset, relation and warning of a point.
func place(in IncidentRef, p *RecoveryPoint) {
	p.Phase = phaseOf(in, p.Time)
	off := p.Time.Sub(in.FirstEvent)
	p.OffsetSeconds = math.Round(off.Seconds()*1000) / 1000
	verb := "taken"
	if p.PointInTime {
		verb = "point in time"
	}
	switch {
	case off < 0:
		p.Relation = fmt.Sprintf("%s %s before the first event", verb, spell(off))
	case off == 0:
		p.Relation = verb + " at the first event"
	default:
		p.Relation = fmt.Sprintf("%s %s after the first event", verb, spell(off))
	}
	switch p.Phase {
	case PhaseDuring:
		p.Warning = p.Relation + "; may hold changes made by the incident"
	case PhaseAfter:
		p.Warning = p.Relation + ", after the incident's last event; holds the changes made by the incident"
	}
}

// relativeTo places every snapshot of t against the incident and picks the default: with
// point-in-time recovery the last whole second before the first event (or the end of the
// restorable window when that comes earlier), else the newest available snapshot taken before
// the first event.
func relativeTo(in IncidentRef, t SnapshotTarget) TargetRecovery {
	tr := TargetRecovery{Name: t.Name, Kind: t.Kind, Target: t.Target, Error: t.Error, Points: []RecoveryPoint{}}
	var pit *RecoveryPoint
	for _, tier := range t.Tiers {
		if tier.Name == tierPointInTime {
			if tier.Newest.IsZero() {
				continue
			}
			at := justBefore(in.FirstEvent)
			if tier.Newest.Before(at) {
				at = tier.Newest.UTC().Truncate(time.Second)
			}
			if !tier.Earliest.IsZero() && at.Before(tier.Earliest) {
				tr.Note = fmt.Sprintf("the restorable window begins at %s, after the first event: no point in time before the incident",
					tier.Earliest.UTC().Format(time.RFC3339))
				continue
			}
			pit = &RecoveryPoint{PointInTime: true, Time: at, Status: "available"}
			place(in, pit)
			continue
		}
		for _, s := range tier.Snapshots {
			p := RecoveryPoint{SnapshotID: s.ID, Time: s.Time.UTC(), Trigger: s.Trigger, Status: s.Status,
				Evidence: s.Trigger == triggerAnomaly && s.Tags[tagSnapshotAlert] == in.Fingerprint && in.Fingerprint != ""}
			place(in, &p)
			tr.Points = append(tr.Points, p)
		}
	}
	if pit != nil {
		tr.Points = append(tr.Points, *pit)
	}
	sort.SliceStable(tr.Points, func(i, j int) bool {
		if !tr.Points[i].Time.Equal(tr.Points[j].Time) {
			return tr.Points[i].Time.After(tr.Points[j].Time)
		}
		return tr.Points[i].SnapshotID > tr.Points[j].SnapshotID
	})
	// Points are newest first, so the first restorable one before the first event is the
	// newest; a point in time just before it is never older than a snapshot before it.
	for i := range tr.Points {
		if p := &tr.Points[i]; p.Phase == PhaseBefore && p.Restorable() {
			p.Default = true
			d := *p
			tr.Default = &d
			break
		}
	}
	switch {
	case tr.Default != nil && tr.Default.PointInTime:
		tr.Note = "point-in-time restore to " + tr.Default.Time.Format(time.RFC3339) + ", the last whole second before the first event"
	case tr.Default != nil:
		tr.Note = "the newest snapshot taken before the first event"
	case tr.Error == "" && tr.Note == "":
		tr.Note = "no snapshot was taken before the first event: only points that may hold the incident's changes remain"
	}
	return tr
}

// findIncident returns the incident named by ref: its id, its fingerprint, or a unique
// prefix of the fingerprint of at least 8 characters (the length snapshot identifiers carry).
func (s *Service) findIncident(ref string) (Incident, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return Incident{}, errorf(KindInvalid, "which incident? give its id")
	}
	all, err := s.allIncidents()
	if err != nil {
		return Incident{}, err
	}
	var match []Incident
	for _, in := range all {
		if in.ID == ref || in.Fingerprint == ref {
			return in, nil
		}
		if len(ref) >= 8 && strings.HasPrefix(in.Fingerprint, ref) {
			match = append(match, in)
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return Incident{}, notFoundIncident(ref)
	}
	return Incident{}, errorf(KindInvalid, "%q names %d incidents: give the incident's id", ref, len(match))
}

// Recovery implements Operations.
func (s *Service) Recovery(ctx context.Context, incident string) (IncidentRecovery, error) {
	in, err := s.findIncident(incident)
	if err != nil {
		return IncidentRecovery{}, err
	}
	ref := refOf(in)
	out := IncidentRecovery{Incident: ref, Targets: []TargetRecovery{}, Evidence: []string{}}
	targets, err := s.Snapshots(ctx)
	if err != nil {
		return out, err
	}
	for _, t := range targets {
		tr := relativeTo(ref, t)
		for _, p := range tr.Points {
			if p.Evidence {
				out.Evidence = append(out.Evidence, p.SnapshotID)
			}
		}
		out.Targets = append(out.Targets, tr)
	}
	return out, nil
}

// incidentRestore checks a restore that names an incident: it fills in the default point when
// none was chosen, and refuses a point from during or after the incident unless the request
// confirms it. It returns the chosen point.
func (s *Service) incidentRestore(ctx context.Context, req *RestoreRequest, target string) (IncidentRef, RecoveryPoint, error) {
	in, err := s.findIncident(req.Incident)
	if err != nil {
		return IncidentRef{}, RecoveryPoint{}, err
	}
	ref := refOf(in)
	targets, err := s.Snapshots(ctx)
	if err != nil {
		return ref, RecoveryPoint{}, err
	}
	var tr *TargetRecovery
	for _, t := range targets {
		if t.Name == target {
			r := relativeTo(ref, t)
			tr = &r
		}
	}
	if tr == nil {
		return ref, RecoveryPoint{}, errorf(KindNotFound, "no snapshot target %q", target)
	}
	var p RecoveryPoint
	switch {
	case req.SnapshotID == "" && req.ToTime.IsZero():
		if tr.Default == nil {
			return ref, p, errorf(KindInvalid, "%s has no recovery point before the first event of incident %s: %s; "+
				"choose a snapshot and confirm that it may hold the incident's changes", tr.Target, ref.Describe(), tr.Note)
		}
		p = *tr.Default
		if p.PointInTime {
			req.ToTime = p.Time
		} else {
			req.SnapshotID = p.SnapshotID
		}
	case req.SnapshotID != "":
		found := false
		for _, x := range tr.Points {
			if x.SnapshotID == req.SnapshotID {
				p, found = x, true
			}
		}
		if !found {
			return ref, p, errorf(KindNotFound, "no snapshot %q of %s", req.SnapshotID, tr.Target)
		}
	default:
		p = RecoveryPoint{PointInTime: true, Time: req.ToTime.UTC(), Status: "available"}
		place(ref, &p)
	}
	if p.Phase != PhaseBefore && !req.ConfirmDuring {
		what := "snapshot " + p.SnapshotID
		if p.PointInTime {
			what = "point in time " + p.Time.Format(time.RFC3339Nano)
		}
		alt := "restore the newest point before it"
		if tr.Default != nil {
			alt = "restore " + pointName(*tr.Default) + " (" + tr.Default.Relation + ")"
		}
		return ref, p, errorf(KindInvalid, "%s is %s of incident %s: it may hold changes made by the incident. "+
			"%s, or confirm that you want this one (confirm_during)", what, strings.TrimPrefix(strings.TrimPrefix(p.Relation, "taken "), "point in time "),
			ref.Describe(), upperFirst(alt))
	}
	return ref, p, nil
}

func pointName(p RecoveryPoint) string {
	if p.PointInTime {
		return "the point in time " + p.Time.Format(time.RFC3339)
	}
	return "snapshot " + p.SnapshotID
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// restoreTarget names what a restore acts on in the audit log: the snapshot or the point in
// time, and the new database.
func restoreTarget(r Restore) string {
	what := r.SnapshotID
	if what == "" && !r.ToTime.IsZero() {
		what = "point in time " + r.ToTime.UTC().Format(time.RFC3339Nano)
	}
	if what == "" {
		what = "(no recovery point)"
	}
	if r.NewName == "" {
		return what
	}
	return what + " -> " + r.NewName
}

// seconds formats a duration in seconds with millisecond precision for the audit log.
func seconds(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }

// NextSteps says what to do after a successful restore: verify the new database, then put
// back the rows the incident damaged with tda repair (or switch the application over).
func NextSteps(r Restore, in *IncidentRef) []string {
	where := "the new database " + r.NewName
	if r.Connection != nil {
		where = r.Connection.String()
	}
	verify := "Verify: connect to " + where + " and check the data you restored for"
	scope := "-keys ... -table ..."
	if in != nil {
		verify = fmt.Sprintf("Verify: connect to %s and check that %s hold what they held before %s",
			where, touched(in.Rule), in.FirstEvent.Format(time.RFC3339Nano))
		scope = "-incident " + in.Fingerprint
	}
	return []string{verify + "; the protected " + r.Source + " is unchanged.",
		"Then repair: tda repair -config FILE -restore " + r.NewName + " " + scope + " plans putting back the damaged rows of " +
			r.Source + " (nothing is written until -apply; the panel's repair page does the same; docs/recovery.md, \"Repair\"), " +
			"or switch the application over to " + r.NewName + " if the whole database must go back."}
}

// touched says which rows an incident of rule touched, for the verification step.
func touched(rule string) string {
	r := strings.ToLower(rule)
	switch {
	case strings.Contains(r, "password"):
		return "the password hashes of the affected users"
	case strings.Contains(r, "delet"):
		return "the deleted rows"
	case strings.Contains(r, "migration"):
		return "the tables the migration changed"
	case strings.Contains(r, "creat"):
		return "the rows created in bulk (they should be absent)"
	}
	return "the rows the incident touched"
}
