// Package sdk is everything a tda plugin author needs: the event model, the Source, Processor
// and Sink interfaces, a config schema that is also documentation and lint, and Serve, which
// turns a set of components into a plugin binary the tda agent can launch.
//
// A minimal plugin:
//
//	func main() {
//		sdk.Serve(sdk.PluginInfo{Name: "hello", Version: "0.1.0"},
//			sdk.ProcessorComponent("upper", spec, newUpper))
//	}
//
// Test it without the agent with package sdk/sdktest.
package sdk

import (
	"sort"
	"time"
)

// Event kinds. Sources emit log, tick and heartbeat events; processors emit alerts and audit
// records.
const (
	KindLog       = "log"
	KindAlert     = "alert"
	KindTick      = "tick"
	KindHeartbeat = "heartbeat"
	KindAudit     = "audit"
)

// Event is one unit of data moving through a pipeline: a raw line plus where it came from and
// the fields a parser extracted. An alert is an Event of kind "alert" with Alert set.
type Event struct {
	// Time is the event time. Sources set the best time they know (arrival time, Docker's
	// timestamp); parsers replace it with the line's own timestamp. Zero means unknown.
	Time time.Time
	// Kind is one of the Kind constants.
	Kind string
	// Source is the config address of the source without its kind prefix, e.g. "file.hosts".
	Source string
	// Origin is the file path or container name the line came from.
	Origin string
	// Stream is "stdout" or "stderr" for containers, empty for files.
	Stream string
	// Line is the raw line without its line terminator. It may hold invalid UTF-8.
	Line []byte
	// Fields holds what parsers and sources extracted, e.g. "event", "actor", "ip".
	Fields map[string]string
	// Alert is set on events of kind "alert".
	Alert *Alert
}

// Field returns the named field or "".
func (e *Event) Field(name string) string {
	if e.Fields == nil {
		return ""
	}
	return e.Fields[name]
}

// SetField sets a field, creating the map when needed.
func (e *Event) SetField(name, value string) {
	if e.Fields == nil {
		e.Fields = make(map[string]string, 4)
	}
	e.Fields[name] = value
}

// Clone returns a deep copy of the event.
func (e Event) Clone() Event {
	c := e
	if e.Line != nil {
		c.Line = append([]byte(nil), e.Line...)
	}
	if e.Fields != nil {
		c.Fields = make(map[string]string, len(e.Fields))
		for k, v := range e.Fields {
			c.Fields[k] = v
		}
	}
	if e.Alert != nil {
		a := *e.Alert
		a.Excerpt = append([]string(nil), e.Alert.Excerpt...)
		c.Alert = &a
	}
	return c
}

// Alert states.
const (
	StateFiring     = "firing"
	StateSuppressed = "suppressed"
	StateResolved   = "resolved"
)

// Severities, from most to least urgent.
const (
	SeverityHigh   = "HIGH"
	SeverityMedium = "MEDIUM"
	SeverityLow    = "LOW"
)

// Alert is what a detection rule reports. One incident (a rule and key crossing its threshold)
// has one Fingerprint; its first record has Realert 0, reminders after the rule's realert
// interval count up, and a resolved record closes it.
type Alert struct {
	Rule      string
	Severity  string
	State     string
	Key       string
	Count     int64
	Threshold int64
	Window    time.Duration
	FirstSeen time.Time
	LastSeen  time.Time
	// Excerpt holds the lines that made the incident, oldest first, bounded by the rule.
	Excerpt     []string
	Fingerprint string
	// SuppressedBy and OverrideReason say who declared the override that suppressed the alert.
	SuppressedBy   string
	OverrideReason string
	// Explanation tells an operator what the rule means, the likely cause and what to do first.
	Explanation string
	// Realert numbers the reminders of a still-firing incident (0 for the first record).
	Realert int
}

// DeliveryKey identifies one alert record for de-duplication: replays of the same record after
// a restart have the same key, a reminder or a resolution has a new one.
func (a *Alert) DeliveryKey() string {
	return a.Fingerprint + "/" + a.State + "/" + itoa(a.Realert)
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// Checkpoint is one entry of a source's saved position, e.g. a file's identity and offset.
// The host stores it once every sink fed by the batch that carried it has accepted that batch,
// and hands all stored entries back when the source starts again.
type Checkpoint struct {
	Key    string
	Value  []byte
	Delete bool
}

// Status reports a source's health; an unhealthy source marks the system degraded.
type Status struct {
	Healthy bool
	Reason  string
}

// Watermark is the host's notion of time passed to processors with every batch.
type Watermark struct {
	// Time is a lower bound on the current time: the wall clock when running live, zero when
	// replaying (the events' own times rule then).
	Time time.Time
	// Final is set once, after the last batch of a replay: flush everything pending.
	Final bool
}

// Batch is what a sink receives.
type Batch struct {
	// ID is the same for every retry of this batch to this sink while the agent runs, so a
	// sink can make a retried write idempotent.
	ID     uint64
	Events []Event
}

// SortedFieldNames returns the event's field names in order.
func (e *Event) SortedFieldNames() []string {
	names := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
