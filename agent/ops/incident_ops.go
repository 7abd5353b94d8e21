package ops

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/sdk"
)

// maxIncidentText bounds an acknowledgement's reason and a closing note.
const maxIncidentText = 4000

// allIncidents brings the records up to date and returns copies of them, most recently
// updated first, with their status and explanation in parts.
func (s *Service) allIncidents() ([]Incident, error) {
	s.incMu.Lock()
	defer s.incMu.Unlock()
	if err := s.syncIncidents(); err != nil {
		return nil, err
	}
	return s.book.sorted(func(*Incident) bool { return true }), nil
}

// sorted returns copies of the records keep selects, most recently updated first. It sorts
// pointers and copies once: records are a few hundred bytes each.
func (b *incidentBook) sorted(keep func(*Incident) bool) []Incident {
	ptrs := make([]*Incident, 0, len(b.byFP))
	for _, in := range b.byFP {
		if keep(in) {
			ptrs = append(ptrs, in)
		}
	}
	sort.Slice(ptrs, func(i, j int) bool {
		if !ptrs[i].Updated.Equal(ptrs[j].Updated) {
			return ptrs[i].Updated.After(ptrs[j].Updated)
		}
		return ptrs[i].Fingerprint < ptrs[j].Fingerprint
	})
	out := make([]Incident, len(ptrs))
	for i, in := range ptrs {
		out[i] = presentBare(*in)
	}
	return out
}

// present is a copy of a record as callers see it; explained adds the explanation's parts
// (left out where only the state is computed: the state is read every few seconds).
func present(in Incident) Incident {
	in = presentBare(in)
	in.Explained = ExplainParts(in.Explanation)
	return in
}

func presentBare(in Incident) Incident {
	in.Excerpt = append([]string{}, in.Excerpt...)
	in.Status = in.lifecycle()
	if in.EntityCounts != nil {
		m := make(map[string]int, len(in.EntityCounts))
		for k, v := range in.EntityCounts {
			m[k] = v
		}
		in.EntityCounts = m
	}
	return in
}

// Incidents implements Operations.
func (s *Service) Incidents(_ context.Context, f IncidentFilter) ([]Incident, error) {
	switch f.Status {
	case "", "active", IncidentOpen, IncidentAcknowledged, IncidentResolved, IncidentClosed:
	default:
		return nil, errorf(KindInvalid, "status must be open, acknowledged, resolved, closed or active, not %q", f.Status)
	}
	switch strings.ToUpper(f.Severity) {
	case "", sdk.SeverityHigh, sdk.SeverityMedium, sdk.SeverityLow:
	default:
		return nil, errorf(KindInvalid, "severity must be HIGH, MEDIUM or LOW, not %q", f.Severity)
	}
	limit := clampLimit(f.Limit)
	all, err := s.allIncidents()
	if err != nil {
		return nil, err
	}
	q := strings.ToLower(strings.TrimSpace(f.Query))
	out := []Incident{}
	for _, in := range all {
		switch {
		case f.Status == "active" && in.Status == IncidentClosed,
			f.Status != "" && f.Status != "active" && in.Status != f.Status,
			f.Severity != "" && !strings.EqualFold(in.Severity, f.Severity),
			f.Rule != "" && in.Rule != f.Rule,
			!f.Since.IsZero() && in.Updated.Before(f.Since),
			q != "" && !in.matches(q):
			continue
		}
		in.Explained = ExplainParts(in.Explanation)
		out = append(out, in)
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

// matches reports whether the lower-case text q is in what people search incidents by.
func (i Incident) matches(q string) bool {
	fields := []string{i.ID, i.Fingerprint, i.Rule, i.Key, i.Origin, i.Source, i.Severity, i.Status}
	if i.Ack != nil {
		fields = append(fields, i.Ack.By, i.Ack.Comment)
	}
	if i.Close != nil {
		fields = append(fields, i.Close.By, i.Close.Note)
	}
	fields = append(fields, i.Excerpt...)
	for _, f := range fields {
		if strings.Contains(strings.ToLower(f), q) {
			return true
		}
	}
	return false
}

// Incident implements Operations.
func (s *Service) Incident(ctx context.Context, id string) (IncidentDetail, error) {
	d, err := s.incidentDetail(strings.TrimSpace(id))
	if err != nil {
		return d, err
	}
	s.addSnapshots(ctx, &d)
	return d, nil
}

func (s *Service) incidentDetail(id string) (IncidentDetail, error) {
	s.incMu.Lock()
	defer s.incMu.Unlock()
	if err := s.syncIncidents(); err != nil {
		return IncidentDetail{}, err
	}
	in, ok := s.book.lookup(id)
	if !ok {
		return IncidentDetail{}, notFoundIncident(id)
	}
	d := IncidentDetail{Incident: present(*in), Timeline: []TimelineEntry{}}
	err := s.store.View(func(tx *state.Tx) error {
		if _, err := getJSON(tx, bucketTimelines, []byte(in.Fingerprint), &d.Timeline); err != nil {
			return err
		}
		_, err := getJSON(tx, bucketEntities, []byte(in.Fingerprint), &d.Entities)
		return err
	})
	if d.Entities.Fields == nil {
		d.Entities.Fields = map[string][]string{}
	}
	return d, err
}

// tagAlertFingerprint is the snapshot tag that names the alert a snapshot was taken for (the
// snapshot sink's anomaly snapshots carry it).
const tagAlertFingerprint = "alert_fingerprint"

// addSnapshots puts the snapshots taken for the incident (tagged with its fingerprint) into
// its timeline, in time order, unless an entry already names them. A target that cannot be
// listed adds nothing: its health is in the snapshot list.
func (s *Service) addSnapshots(ctx context.Context, d *IncidentDetail) {
	if s.snapshots == nil {
		return
	}
	targets, err := s.snapshots.List(ctx)
	if err != nil {
		return
	}
	named := map[string]bool{}
	for _, e := range d.Timeline {
		if e.Snapshot != "" {
			named[e.Snapshot] = true
		}
	}
	for _, t := range targets {
		for _, tier := range t.Tiers {
			for _, snap := range tier.Snapshots {
				if snap.Tags[tagAlertFingerprint] != d.Fingerprint || named[snap.ID] {
					continue
				}
				named[snap.ID] = true
				trigger := snap.Trigger
				if trigger == "" {
					trigger = tier.Name
				}
				e := TimelineEntry{At: snap.Time, What: TimelineSnapshot, Count: 0, Snapshot: snap.ID,
					Text: fmt.Sprintf("%s snapshot of %s taken for this incident (%s)", trigger, t.Target, snap.Status)}
				i := sort.Search(len(d.Timeline), func(i int) bool { return d.Timeline[i].At.After(e.At) })
				d.Timeline = append(d.Timeline, TimelineEntry{})
				copy(d.Timeline[i+1:], d.Timeline[i:])
				d.Timeline[i] = e
			}
		}
	}
}

func notFoundIncident(id string) error {
	if id == "" {
		return errorf(KindInvalid, "which incident? give its id (tda incidents lists them)")
	}
	return errorf(KindNotFound, "no incident %q: tda incidents lists them, with their ids", id)
}

// AcknowledgeIncident implements Operations.
func (s *Service) AcknowledgeIncident(_ context.Context, by Actor, req IncidentAction) (Incident, error) {
	by, err := s.actor(by)
	if err != nil {
		return Incident{}, err
	}
	if err := checkLine("reason", req.Reason); err != nil {
		return Incident{}, err
	}
	reason := strings.TrimSpace(req.Reason)
	var out Incident
	err = func() error {
		return s.changeIncident(req.ID, &out, func(tx *state.Tx, in *Incident) (TimelineEntry, error) {
			if len(reason) > maxIncidentText {
				return TimelineEntry{}, errorf(KindInvalid, "the reason is longer than %d characters", maxIncidentText)
			}
			if reason == "" {
				return TimelineEntry{}, errorf(KindInvalid, "a reason is required: say what you are doing about it (-reason)")
			}
			if in.Close != nil {
				return TimelineEntry{}, errorf(KindConflict, "incident %s is closed (by %s)", in.ID, in.Close.By)
			}
			if in.Ack != nil {
				return TimelineEntry{}, errorf(KindConflict, "incident %s is already acknowledged by %s at %s",
					in.ID, in.Ack.By, in.Ack.At.Format("15:04:05 MST"))
			}
			a := Ack{Incident: in.ID, Fingerprint: in.Fingerprint, By: by.Name, Comment: reason, At: s.now().UTC()}
			in.Ack = &a
			// The acknowledgement by fingerprint is what older agents read.
			if err := putJSON(tx, bucketAcks, []byte(in.Fingerprint), a); err != nil {
				return TimelineEntry{}, err
			}
			return TimelineEntry{At: a.At, What: TimelineAcknowledged, Count: in.Count, By: by.Name, Text: reason}, nil
		})
	}()
	s.auditIncident(by, ActionIncidentAck, req.ID, out, reason, err)
	return out, err
}

// CloseIncident implements Operations.
func (s *Service) CloseIncident(_ context.Context, by Actor, req IncidentAction) (Incident, error) {
	by, err := s.actor(by)
	if err != nil {
		return Incident{}, err
	}
	if err := checkLine("note", req.Note); err != nil {
		return Incident{}, err
	}
	note := strings.TrimSpace(req.Note)
	var out Incident
	err = func() error {
		return s.changeIncident(req.ID, &out, func(_ *state.Tx, in *Incident) (TimelineEntry, error) {
			switch {
			case len(note) > maxIncidentText:
				return TimelineEntry{}, errorf(KindInvalid, "the note is longer than %d characters", maxIncidentText)
			case note == "":
				return TimelineEntry{}, errorf(KindInvalid, "a note is required: what happened and what was done, for the post-incident review (-note)")
			case in.Close != nil:
				return TimelineEntry{}, errorf(KindConflict, "incident %s is already closed (by %s)", in.ID, in.Close.By)
			case in.Open():
				return TimelineEntry{}, errorf(KindConflict, "incident %s is still %s: the rule has not seen the burst end; "+
					"close it once it has resolved", in.ID, in.State)
			case in.Ack == nil:
				return TimelineEntry{}, errorf(KindConflict, "incident %s was never acknowledged: acknowledge it first, "+
					"saying who handled it", in.ID)
			}
			c := Closure{By: by.Name, Note: note, At: s.now().UTC()}
			in.Close = &c
			return TimelineEntry{At: c.At, What: TimelineClosed, Count: in.Count, By: by.Name, Text: note}, nil
		})
	}()
	s.auditIncident(by, ActionIncidentClose, req.ID, out, note, err)
	return out, err
}

// changeIncident syncs, applies change to the incident named ref and stores it with the
// timeline entry change returns, all in one transaction.
func (s *Service) changeIncident(ref string, out *Incident, change func(*state.Tx, *Incident) (TimelineEntry, error)) error {
	ref = strings.TrimSpace(ref)
	s.incMu.Lock()
	defer s.incMu.Unlock()
	if err := s.syncIncidents(); err != nil {
		return err
	}
	cur, ok := s.book.lookup(ref)
	if !ok {
		return notFoundIncident(ref)
	}
	in := *cur
	*out = present(in)
	err := s.store.Update(func(tx *state.Tx) error {
		e, err := change(tx, &in)
		if err != nil {
			return err
		}
		in.Status = in.lifecycle()
		var tl []TimelineEntry
		if _, err := getJSON(tx, bucketTimelines, []byte(in.Fingerprint), &tl); err != nil {
			return err
		}
		if err := putJSON(tx, bucketTimelines, []byte(in.Fingerprint), addTimeline(tl, e)); err != nil {
			return err
		}
		return putJSON(tx, bucketIncidents, []byte(in.Fingerprint), in)
	})
	if err != nil {
		return err
	}
	s.book.byFP[in.Fingerprint] = &in
	*out = present(in)
	return nil
}

// auditIncident records an operator's action on an incident, naming it (id, rule, key) even
// when the action was refused.
func (s *Service) auditIncident(by Actor, action, ref string, in Incident, reason string, err error) {
	target, detail := strings.TrimSpace(ref), map[string]string(nil)
	if in.ID != "" {
		target, detail = in.ID, incidentDetail(in)
	}
	s.audit(by, action, target, reason, detail, err)
}

// NoteIncident adds an entry to an incident's timeline (a snapshot taken for it, say), by id
// or fingerprint.
func (s *Service) NoteIncident(ref string, e TimelineEntry) error {
	if e.What == "" {
		return fmt.Errorf("a timeline entry needs its kind")
	}
	if e.At.IsZero() {
		e.At = s.now().UTC()
	}
	var out Incident
	return s.changeIncident(ref, &out, func(*state.Tx, *Incident) (TimelineEntry, error) { return e, nil })
}

// blockingAndAcknowledged returns the HIGH incidents that block and those acknowledged and
// not closed.
func (s *Service) blockingAndAcknowledged() (blocking, acked []Incident, err error) {
	s.incMu.Lock()
	defer s.incMu.Unlock()
	if err := s.syncIncidents(); err != nil {
		return nil, nil, err
	}
	blocking = s.book.sorted(func(in *Incident) bool { return in.Blocking() })
	acked = s.book.sorted(func(in *Incident) bool {
		return in.Severity == sdk.SeverityHigh && in.Fired && in.Ack != nil && in.Close == nil
	})
	return blocking, acked, nil
}
