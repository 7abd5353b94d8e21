package sdk

import (
	"encoding/json"
	"strconv"
	"time"
)

// EventIncidentUpdate is the "event" field of an audit event that reports an open incident's
// progress between its alert records: the count so far and the entities its events named.
// Sinks that page (Slack, email, webhook) accept alerts only and never see it; the jsonl sink
// writes it to the audit trail, where the agent's incident records read it.
const EventIncidentUpdate = "incident_update"

// Fields of an incident update.
const (
	FieldIncidentFingerprint = "fingerprint"
	FieldIncidentRule        = "rule"
	FieldIncidentKey         = "key"
	FieldIncidentCount       = "count"
	// FieldIncidentEntities holds a JSON object of field name -> values.
	FieldIncidentEntities  = "entities"
	FieldIncidentTruncated = "entities_truncated"
)

// IncidentUpdate is what a detection processor reports about an open incident.
type IncidentUpdate struct {
	Fingerprint string
	Rule        string
	Key         string
	// Count is the number of events the incident counted so far.
	Count int64
	// Entities are values first seen since the previous update of the incident (user_id,
	// actor, ip, ...): a reader merges them into what it has.
	Entities map[string][]string
	// Truncated: the processor stopped collecting entities at its bound.
	Truncated bool
}

// Event returns the update as an audit event.
func (u IncidentUpdate) Event(t time.Time, source, origin string) Event {
	f := map[string]string{
		"event":                  EventIncidentUpdate,
		FieldIncidentFingerprint: u.Fingerprint,
		FieldIncidentRule:        u.Rule,
		FieldIncidentCount:       strconv.FormatInt(u.Count, 10),
	}
	if u.Key != "" {
		f[FieldIncidentKey] = u.Key
	}
	if len(u.Entities) > 0 {
		b, err := json.Marshal(u.Entities)
		if err == nil {
			f[FieldIncidentEntities] = string(b)
		}
	}
	if u.Truncated {
		f[FieldIncidentTruncated] = "true"
	}
	return Event{Time: t.UTC(), Kind: KindAudit, Source: source, Origin: origin, Fields: f}
}

// ParseIncidentUpdate reads an incident update from an audit event's fields; ok is false
// for any other event or one without a fingerprint. Malformed entities are ignored.
func ParseIncidentUpdate(e *Event) (u IncidentUpdate, ok bool) {
	if e.Kind != KindAudit || e.Field("event") != EventIncidentUpdate {
		return u, false
	}
	u.Fingerprint = e.Field(FieldIncidentFingerprint)
	if u.Fingerprint == "" {
		return u, false
	}
	u.Rule, u.Key = e.Field(FieldIncidentRule), e.Field(FieldIncidentKey)
	if n, err := strconv.ParseInt(e.Field(FieldIncidentCount), 10, 64); err == nil && n >= 0 {
		u.Count = n
	}
	if s := e.Field(FieldIncidentEntities); s != "" {
		var m map[string][]string
		if json.Unmarshal([]byte(s), &m) == nil {
			u.Entities = m
		}
	}
	u.Truncated = e.Field(FieldIncidentTruncated) == "true"
	return u, true
}
