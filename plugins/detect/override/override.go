// Package override keeps override mode: the state in which approved bulk work (an import, a
// cleanup, a migration) is declared, so that the alerts of overridable rules are recorded as
// suppressed instead of paging. An override is declared by the app's own audit line
// (`override_enabled actor=carol reason="partner bulk import" ttl=30m`) or by an operator
// (`tda override on`), lasts until it is disabled or its TTL expires, and every change is an
// audit record: who, why, until when.
package override

import (
	"time"

	"github.com/tda-dev/tda/sdk"
)

// Audit event types of override changes.
const (
	Enabled  = "override_enabled"
	Disabled = "override_disabled"
	Expired  = "override_expired"
)

// OriginOperator is the Origin of overrides an operator declared through the agent.
const OriginOperator = "operator"

// Fields of override audit records.
const (
	FieldActor  = "actor"
	FieldReason = "reason"
	FieldTTL    = "ttl"
	FieldUntil  = "until"
	FieldOrigin = "origin"
)

// Config bounds override durations.
type Config struct {
	// DefaultTTL applies when the declaration gives no (valid) ttl.
	DefaultTTL time.Duration
	// MaxTTL caps any ttl.
	MaxTTL time.Duration
}

// DefaultConfig is used when a processor does not say otherwise.
var DefaultConfig = Config{DefaultTTL: time.Hour, MaxTTL: 24 * time.Hour}

// Override is an active override.
type Override struct {
	Actor  string    `json:"actor"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
	Origin string    `json:"origin"`
	Source string    `json:"source,omitempty"`
}

// State is the current override, if any. The zero value is "no override".
type State struct {
	Current *Override `json:"current,omitempty"`
}

// IsChange reports whether ev declares an override change (a log line parsed as one, or an
// audit event from an operator or an upstream override processor).
func IsChange(ev *sdk.Event) bool {
	if ev.Kind != sdk.KindLog && ev.Kind != sdk.KindAudit {
		return false
	}
	switch ev.Field("event") {
	case Enabled, Disabled:
		return true
	}
	return false
}

// Active returns the override in force at t.
func (s *State) Active(t time.Time) (*Override, bool) {
	if s.Current == nil || !t.Before(s.Current.Until) {
		return nil, false
	}
	return s.Current, true
}

// Apply applies an override change at the event's time and returns the audit record of the
// change, or nil when nothing changed (the same declaration seen twice, or a disable with no
// override in force).
func (s *State) Apply(ev *sdk.Event, cfg Config) *sdk.Event {
	at := ev.Time
	origin := ev.Origin
	if o := ev.Field(FieldOrigin); o != "" && ev.Kind == sdk.KindAudit {
		origin = o
	}
	actor := ev.Field(FieldActor)
	if actor == "" {
		actor = "unknown"
	}
	switch ev.Field("event") {
	case Enabled:
		until := time.Time{}
		if u := ev.Field(FieldUntil); u != "" {
			if t, err := time.Parse(time.RFC3339Nano, u); err == nil {
				until = t.UTC()
			}
		}
		if until.IsZero() {
			until = at.Add(ttl(ev.Field(FieldTTL), cfg))
		}
		next := &Override{Actor: actor, Reason: ev.Field(FieldReason), Since: at, Until: until,
			Origin: origin, Source: ev.Source}
		if c := s.Current; c != nil && c.Actor == next.Actor && c.Reason == next.Reason && c.Until.Equal(next.Until) {
			return nil
		}
		s.Current = next
		return record(Enabled, next, at, ev)
	case Disabled:
		c := s.Current
		if c == nil {
			return nil
		}
		s.Current = nil
		ended := *c
		ended.Until, ended.Origin, ended.Source = at, origin, ev.Source
		rec := record(Disabled, &ended, at, ev)
		rec.Fields[FieldActor] = actor
		rec.Fields["enabled_by"] = c.Actor
		if r := ev.Field(FieldReason); r != "" {
			rec.Fields[FieldReason] = r
		}
		return rec
	}
	return nil
}

// Expire ends an override whose TTL has passed by now and returns the audit record, or nil.
func (s *State) Expire(now time.Time) *sdk.Event {
	c := s.Current
	if c == nil || now.Before(c.Until) {
		return nil
	}
	s.Current = nil
	return record(Expired, c, c.Until, &sdk.Event{Origin: c.Origin, Source: c.Source})
}

func ttl(s string, cfg Config) time.Duration {
	d, err := sdk.ParseDuration(s)
	if s == "" || err != nil || d <= 0 {
		d = cfg.DefaultTTL
	}
	if cfg.MaxTTL > 0 && d > cfg.MaxTTL {
		d = cfg.MaxTTL
	}
	return d
}

func record(event string, o *Override, at time.Time, cause *sdk.Event) *sdk.Event {
	src := cause.Source
	if src == "" {
		src = o.Source
	}
	return &sdk.Event{Time: at, Kind: sdk.KindAudit, Source: src, Origin: o.Origin,
		Fields: map[string]string{
			"event":     event,
			FieldActor:  o.Actor,
			FieldReason: o.Reason,
			FieldUntil:  sdk.FormatTime(o.Until),
			FieldOrigin: o.Origin,
			"since":     sdk.FormatTime(o.Since),
		}}
}
