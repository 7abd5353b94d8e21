package ops

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/sdk"
)

// Buckets of the incident records: the record by fingerprint, the id index, and each
// incident's timeline and entities (kept apart so that listing reads only the records).
var (
	bucketIncidents   = []string{"ops", "incidents"}
	bucketIncidentIDs = []string{"ops", "incident_ids"}
	bucketTimelines   = []string{"ops", "incident_timelines"}
	bucketEntities    = []string{"ops", "incident_entities"}
)

// MaxIncidentRecords is the retention of incident records: beyond it the oldest closed
// incidents go first, then the oldest resolved and acknowledged ones, then the oldest of
// the rest. An incident that blocks is dropped only when every record blocks.
const MaxIncidentRecords = 5000

// incidentBook is the service's copy of the incident records (the store holds them; only one
// process has the store open at a time, so the copy stays true). incMu guards it.
type incidentBook struct {
	loaded bool
	byFP   map[string]*Incident
	byID   map[string]string
	// resync: a sync failed to write what the trail told; the next one compares every
	// incident the trail holds with its record.
	resync bool
}

func newIncidentBook() *incidentBook {
	return &incidentBook{byFP: map[string]*Incident{}, byID: map[string]string{}}
}

func (b *incidentBook) load(store *state.Store) error {
	if b.loaded {
		return nil
	}
	err := store.View(func(tx *state.Tx) error {
		return tx.ForEach(bucketIncidents, func(k, v []byte) error {
			var in Incident
			if err := json.Unmarshal(v, &in); err != nil || in.ID == "" {
				return nil // a corrupt record is skipped, never fatal
			}
			b.byFP[in.Fingerprint] = &in
			b.byID[in.ID] = in.Fingerprint
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("read incidents: %w", err)
	}
	b.loaded = true
	return nil
}

// lookup finds an incident by id or fingerprint.
func (b *incidentBook) lookup(ref string) (*Incident, bool) {
	if fp, ok := b.byID[ref]; ok {
		in, ok := b.byFP[fp]
		return in, ok
	}
	in, ok := b.byFP[ref]
	return in, ok
}

// newID returns the id of a fingerprint not yet in the book: IncidentIDLen characters, more
// when that is another incident's id.
func (b *incidentBook) newID(fp string) string {
	for n := IncidentIDLen; ; n++ {
		id := incidentID(fp, n)
		if other, taken := b.byID[id]; !taken || other == fp || n >= 51 {
			return id
		}
	}
}

// syncIncidents brings the incident records up to date with the audit trail: new incidents
// get a record (and an audit entry by the system), changes of state, count and entities are
// added to the record and its timeline. Callers hold incMu.
func (s *Service) syncIncidents() error {
	b := s.book
	if err := b.load(s.store); err != nil {
		return err
	}
	if s.trail == nil {
		return nil
	}
	if err := s.trail.Refresh(); err != nil {
		return err
	}
	changes := s.trail.takeChanges()
	if b.resync {
		seen := make(map[string]bool, len(changes))
		for _, c := range changes {
			seen[c.Fingerprint] = true
		}
		for _, in := range s.trail.Incidents() {
			if !seen[in.Fingerprint] {
				changes = append(changes, trailChange{Fingerprint: in.Fingerprint, Alert: true})
			}
		}
	}
	if len(changes) == 0 {
		return nil
	}
	now := s.now().UTC()
	var legacyAcks map[string]Ack
	// Work on copies: the book changes only once the transaction committed.
	updated := map[string]*Incident{}
	err := s.store.Update(func(tx *state.Tx) error {
		for _, c := range changes {
			cur, exists := b.byFP[c.Fingerprint]
			var from Incident
			fromTrail := false
			if c.Alert {
				from, fromTrail = s.trail.incident(c.Fingerprint)
			}
			if !exists && !fromTrail {
				continue // an update of an incident whose alert record is gone
			}
			var in Incident
			var tl []TimelineEntry
			if exists {
				in = *cur
				if _, err := getJSON(tx, bucketTimelines, []byte(in.Fingerprint), &tl); err != nil {
					return err
				}
			} else {
				if legacyAcks == nil {
					var err error
					if legacyAcks, err = readAcks(tx); err != nil {
						return err
					}
				}
				in = from
				in.ID = b.newID(from.Fingerprint)
				in.Opened = from.Updated
				if from.Records > 1 || from.Updated.IsZero() {
					in.Opened = from.FirstSeen
				}
				if a, ok := legacyAcks[from.Fingerprint]; ok {
					a.Incident = in.ID
					in.Ack = &a
				}
				opened := from
				if from.alertCount > 0 {
					opened.Count = from.alertCount
				}
				in.Count = opened.Count // updates read with the opening record follow as count entries
				tl = append(tl, TimelineEntry{At: in.Opened, What: TimelineOpened, Count: opened.Count,
					Text: fmt.Sprintf("%s %s: %s", in.Severity, in.Rule, openedText(opened))})
				if _, err := appendAudit(tx, s.systemEntry(now, ActionIncidentOpen, in, "the rule crossed its threshold")); err != nil {
					return err
				}
				if err := tx.Put(bucketIncidentIDs, []byte(in.ID), []byte(in.Fingerprint)); err != nil {
					return err
				}
			}
			if fromTrail && exists {
				var err error
				if tl, err = s.applyAlert(tx, now, &in, from, tl); err != nil {
					return err
				}
			}
			if fromTrail && !exists && from.State == sdk.StateResolved {
				in.ResolvedAt = from.Updated
				tl = addTimeline(tl, TimelineEntry{At: from.Updated, What: TimelineResolved, Count: in.Count,
					Text: "the burst ended"})
				if _, err := appendAudit(tx, s.systemEntry(now, ActionIncidentResolve, in, "the burst ended")); err != nil {
					return err
				}
			}
			if count := max(c.Count, from.Count); count > in.Count {
				in.Count = count
				at := c.CountAt
				if at.IsZero() || c.Count < from.Count {
					at = from.Updated
				}
				if at.IsZero() {
					at = now
				}
				tl = addTimeline(tl, TimelineEntry{At: at, What: TimelineCount, Count: in.Count})
			}
			if c.LastSeen.After(in.LastSeen) {
				in.LastSeen = c.LastSeen // an update is dated by the incident's newest event
			}
			if c.Entities != nil {
				if err := mergeEntities(tx, &in, c.Entities); err != nil {
					return err
				}
			}
			in.Status = in.lifecycle()
			if err := putJSON(tx, bucketIncidents, []byte(in.Fingerprint), in); err != nil {
				return err
			}
			if err := putJSON(tx, bucketTimelines, []byte(in.Fingerprint), tl); err != nil {
				return err
			}
			updated[in.Fingerprint] = &in
		}
		return nil
	})
	if err != nil {
		b.resync = true
		return fmt.Errorf("record incidents: %w", err)
	}
	b.resync = false
	for fp, in := range updated {
		b.byFP[fp] = in
		b.byID[in.ID] = fp
	}
	if len(b.byFP) > MaxIncidentRecords {
		if err := s.pruneIncidents(); err != nil {
			s.log.Error("could not drop old incident records", "error", err)
		}
	}
	return nil
}

func openedText(in Incident) string {
	key := ""
	if in.Key != "" {
		key = fmt.Sprintf(" for key %q", in.Key)
	}
	return fmt.Sprintf("%d events in %s%s (threshold %d)", in.Count, in.Window, key, in.Threshold)
}

// applyAlert moves a recorded incident on by the trail's newest alert record of it.
func (s *Service) applyAlert(tx *state.Tx, now time.Time, in *Incident, from Incident, tl []TimelineEntry) ([]TimelineEntry, error) {
	prevState, prevRealert := in.State, in.Realert
	keep := *in
	*in = from
	// What people did and what tda recorded stays; the rule's view is the trail's.
	in.ID, in.Opened, in.ResolvedAt, in.Ack, in.Close = keep.ID, keep.Opened, keep.ResolvedAt, keep.Ack, keep.Close
	in.EntityCounts, in.EntitiesTruncated = keep.EntityCounts, keep.EntitiesTruncated
	in.Count = max(keep.Count, from.Count)
	in.Fired = keep.Fired || from.Fired
	if len(in.Excerpt) == 0 {
		in.Excerpt = keep.Excerpt
	}
	switch {
	case from.State == prevState && from.Realert > prevRealert:
		tl = addTimeline(tl, TimelineEntry{At: from.Updated, What: TimelineReminder, Count: in.Count,
			Text: fmt.Sprintf("reminder %d: still going on", from.Realert)})
	case from.State == prevState:
	case from.State == sdk.StateResolved:
		in.ResolvedAt = from.Updated
		tl = addTimeline(tl, TimelineEntry{At: from.Updated, What: TimelineResolved, Count: in.Count, Text: "the burst ended"})
		if _, err := appendAudit(tx, s.systemEntry(now, ActionIncidentResolve, *in, "the burst ended")); err != nil {
			return tl, err
		}
	case from.State == sdk.StateSuppressed:
		tl = addTimeline(tl, TimelineEntry{At: from.Updated, What: TimelineSuppressed, Count: in.Count,
			By: from.SuppressedBy, Text: "override: " + from.OverrideReason})
	case from.State == sdk.StateFiring:
		tl = addTimeline(tl, TimelineEntry{At: from.Updated, What: TimelineFiring, Count: in.Count, Text: "the override ended while the burst went on"})
	}
	return tl, nil
}

// systemEntry is the audit entry of something tda did by itself to an incident.
func (s *Service) systemEntry(now time.Time, action string, in Incident, reason string) AuditEntry {
	return AuditEntry{Time: now, Actor: SystemActorName, Via: SystemVia, Action: action, Target: in.ID,
		Reason: reason, Outcome: "ok", Detail: incidentDetail(in)}
}

// incidentDetail names an incident in the audit log: rule, key, severity, count, fingerprint.
func incidentDetail(in Incident) map[string]string {
	d := map[string]string{"incident": in.ID, "rule": in.Rule, "severity": in.Severity,
		"count": strconv.FormatInt(in.Count, 10), "fingerprint": in.Fingerprint}
	if in.Key != "" {
		d["key"] = in.Key
	}
	return d
}

// addTimeline appends an entry within MaxTimeline: a count update replaces the newest count
// update when the timeline is full; other entries replace the oldest count update.
func addTimeline(tl []TimelineEntry, e TimelineEntry) []TimelineEntry {
	if len(tl) < MaxTimeline {
		return append(tl, e)
	}
	if e.What == TimelineCount {
		for i := len(tl) - 1; i >= 0; i-- {
			if tl[i].What == TimelineCount {
				tl[i] = e
				return tl
			}
		}
		return tl // full of steps: a count update is the least of them
	}
	for i := range tl {
		if tl[i].What == TimelineCount {
			copy(tl[i:], tl[i+1:])
			tl[len(tl)-1] = e
			return tl
		}
	}
	return append(tl[:len(tl)-1:len(tl)-1], e) // full of steps: the newest step replaces the last
}

func readAcks(tx *state.Tx) (map[string]Ack, error) {
	acks := map[string]Ack{}
	err := tx.ForEach(bucketAcks, func(k, v []byte) error {
		var a Ack
		if json.Unmarshal(v, &a) == nil {
			acks[string(k)] = a
		}
		return nil
	})
	return acks, err
}

// mergeEntities adds new values to an incident's stored entities.
func mergeEntities(tx *state.Tx, in *Incident, delta *entitySet) error {
	var cur Entities
	if _, err := getJSON(tx, bucketEntities, []byte(in.Fingerprint), &cur); err != nil {
		return err
	}
	set := newEntitySet(cur)
	changed := (delta.truncated && !set.truncated) || delta.dropped > 0
	set.truncated = set.truncated || delta.truncated
	set.dropped += delta.dropped
	for f, vals := range delta.fields {
		list := make([]string, 0, len(vals))
		for v := range vals {
			list = append(list, v)
		}
		sort.Strings(list)
		if set.add(f, list) {
			changed = true
		}
	}
	if !changed {
		return nil
	}
	in.EntityCounts, in.EntitiesTruncated = set.counts(), set.truncated
	return putJSON(tx, bucketEntities, []byte(in.Fingerprint), set.entities())
}

// pruneIncidents keeps MaxIncidentRecords records (see its comment for the order).
func (s *Service) pruneIncidents() error {
	b := s.book
	all := make([]*Incident, 0, len(b.byFP))
	for _, in := range b.byFP {
		all = append(all, in)
	}
	rank := func(in *Incident) int {
		switch {
		case in.Close != nil:
			return 0
		case !in.Open() && in.Ack != nil:
			return 1
		case !in.Blocking():
			return 2
		}
		return 3
	}
	sort.Slice(all, func(i, j int) bool {
		if ri, rj := rank(all[i]), rank(all[j]); ri != rj {
			return ri < rj
		}
		if !all[i].Updated.Equal(all[j].Updated) {
			return all[i].Updated.Before(all[j].Updated)
		}
		return all[i].Fingerprint < all[j].Fingerprint
	})
	drop := all[:len(all)-MaxIncidentRecords]
	err := s.store.Update(func(tx *state.Tx) error {
		for _, in := range drop {
			fp := []byte(in.Fingerprint)
			for _, bk := range [][]string{bucketIncidents, bucketTimelines, bucketEntities, bucketAcks} {
				if err := tx.Delete(bk, fp); err != nil {
					return err
				}
			}
			if err := tx.Delete(bucketIncidentIDs, []byte(in.ID)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, in := range drop {
		delete(b.byFP, in.Fingerprint)
		delete(b.byID, in.ID)
	}
	return nil
}
