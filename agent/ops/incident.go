package ops

import (
	"time"

	"github.com/tda-dev/tda/sdk"
)

// Incident lifecycle statuses. A rule opens an incident; a person acknowledges it (who, why);
// the rule resolves it when the burst has drained; a person closes it with a note for the
// post-incident review. Acknowledging and resolving may happen in either order: Status is the
// furthest step reached (closed > resolved > acknowledged > open), and Ack and ResolvedAt say
// which steps happened.
const (
	IncidentOpen         = "open"
	IncidentAcknowledged = "acknowledged"
	IncidentResolved     = "resolved"
	IncidentClosed       = "closed"
)

// Incident is one burst of a rule (one alert fingerprint) with its lifecycle. The rule's
// records in the audit trail open it and move its count, state and entities on; operators
// acknowledge and close it. The record is kept in the state store, so past incidents outlive
// the audit trail's rotation (see MaxIncidentRecords for the retention).
type Incident struct {
	// ID is the stable short name people use (8 characters, URL-safe), derived from the
	// fingerprint.
	ID string `json:"id"`
	// Status is the lifecycle status: open, acknowledged, resolved or closed.
	Status      string `json:"status"`
	Fingerprint string `json:"fingerprint"`
	Rule        string `json:"rule"`
	Severity    string `json:"severity"`
	// State is the rule's last word on the burst: firing, suppressed or resolved.
	State string `json:"state"`
	Key   string `json:"key,omitempty"`
	// Count is the number of events the incident counted so far (the live total while it
	// fires, never less than the window's peak).
	Count     int64  `json:"count"`
	Threshold int64  `json:"threshold"`
	Window    string `json:"window"`
	// FirstSeen is the time of the incident's first event: what happened before it is from
	// before the incident. LastSeen is its newest event.
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Updated is the time of the newest record about the incident.
	Updated        time.Time `json:"updated"`
	Origin         string    `json:"origin,omitempty"`
	Source         string    `json:"source,omitempty"`
	Excerpt        []string  `json:"excerpt"`
	Explanation    string    `json:"explanation"`
	SuppressedBy   string    `json:"suppressed_by,omitempty"`
	OverrideReason string    `json:"override_reason,omitempty"`
	Realert        int       `json:"realert,omitempty"`
	// Records is how many records of the incident the trail held when it was last read.
	Records int `json:"records"`
	// Fired is set once the rule reported the incident firing (not only suppressed): only a
	// HIGH incident that fired blocks.
	Fired bool `json:"fired"`
	// Opened is when tda recorded the incident; ResolvedAt when the rule resolved it.
	Opened     time.Time `json:"opened,omitzero"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	Ack        *Ack      `json:"ack,omitempty"`
	Close      *Closure  `json:"close,omitempty"`
	// EntityCounts is how many distinct values of each field (user_id, actor, ip, table, ...)
	// the incident's events carried; the values are in IncidentDetail.Entities.
	EntityCounts      map[string]int `json:"entity_counts,omitempty"`
	EntitiesTruncated bool           `json:"entities_truncated,omitempty"`
	// Explained is Explanation in parts, with the panel's control for each step that has one.
	Explained Explanation `json:"explained,omitzero"`

	// alertCount is the count of the newest alert record the trail read (the count at
	// opening, for the timeline), as opposed to Count, which updates move on.
	alertCount int64
}

// Open reports whether the rule has not resolved the incident.
func (i Incident) Open() bool { return i.State != sdk.StateResolved }

// Blocking reports whether the incident keeps the system blocked: a HIGH incident that fired
// blocks until someone acknowledges it, whether or not the burst has ended since.
func (i Incident) Blocking() bool {
	return i.Severity == sdk.SeverityHigh && i.Fired && i.Ack == nil && i.Close == nil
}

// lifecycle returns the status the incident's steps amount to.
func (i Incident) lifecycle() string {
	switch {
	case i.Close != nil:
		return IncidentClosed
	case !i.Open():
		return IncidentResolved
	case i.Ack != nil:
		return IncidentAcknowledged
	}
	return IncidentOpen
}

// Closure is a person closing an incident, with the note for the post-incident review.
type Closure struct {
	By   string    `json:"by"`
	Note string    `json:"note"`
	At   time.Time `json:"at"`
}

// Timeline entry kinds.
const (
	TimelineOpened       = "opened"
	TimelineCount        = "count"
	TimelineFiring       = "firing"
	TimelineSuppressed   = "suppressed"
	TimelineReminder     = "reminder"
	TimelineAcknowledged = "acknowledged"
	TimelineResolved     = "resolved"
	TimelineClosed       = "closed"
	TimelineSnapshot     = "snapshot"
)

// TimelineEntry is one step of an incident.
type TimelineEntry struct {
	At   time.Time `json:"at"`
	What string    `json:"what"`
	// Count is the incident's count at that step.
	Count int64  `json:"count,omitempty"`
	By    string `json:"by,omitempty"`
	Text  string `json:"text,omitempty"`
	// Snapshot names the snapshot an entry of kind "snapshot" is about.
	Snapshot string `json:"snapshot,omitempty"`
}

// MaxTimeline bounds an incident's timeline: beyond it, count updates replace the newest
// count update instead of adding entries (the steps people took are always kept).
const MaxTimeline = 200

// IncidentDetail is one incident with its timeline and affected entities.
type IncidentDetail struct {
	Incident
	Timeline []TimelineEntry `json:"timeline"`
	Entities Entities        `json:"entities"`
}

// IncidentFilter selects incidents. Empty fields match everything.
type IncidentFilter struct {
	// Status is open, acknowledged, resolved, closed, or active (anything not closed).
	Status   string `json:"status,omitempty"`
	Severity string `json:"severity,omitempty"`
	Rule     string `json:"rule,omitempty"`
	// Since keeps incidents updated at or after it.
	Since time.Time `json:"since,omitzero"`
	// Query is text found (case-insensitively) in the id, fingerprint, rule, key, origin,
	// source, excerpt, acknowledgement or closing note.
	Query string `json:"q,omitempty"`
	// Limit caps the result (default 100, at most 1000).
	Limit int `json:"limit,omitempty"`
}

// IncidentAction acknowledges (Reason) or closes (Note) an incident, named by its id or
// fingerprint.
type IncidentAction struct {
	ID     string `json:"id"`
	Reason string `json:"reason,omitempty"`
	Note   string `json:"note,omitempty"`
}

// Audit actions of incidents. The system's own actions are recorded as SystemActor.
const (
	ActionIncidentOpen    = "incident.open"
	ActionIncidentAck     = "incident.acknowledge"
	ActionIncidentResolve = "incident.resolve"
	ActionIncidentClose   = "incident.close"
)

// The actor of what tda does by itself (an incident opened or resolved by a rule), as the
// audit log names it.
const (
	SystemActorName = "tda"
	SystemVia       = "system"
)

func systemActor() Actor { return Actor{Name: SystemActorName, Via: SystemVia} }
