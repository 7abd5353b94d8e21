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
	// Refused records an override line from an origin that may not declare overrides.
	Refused = "override_refused"
)

// OriginOperator is the Origin of overrides an operator declared through the agent.
const OriginOperator = "operator"

// How an override was declared (field FieldVia of its audit records). Only an operator's
// override may stand in for an operator elsewhere (agent/ops lifts "blocked" for nothing
// else); a record without the field is treated as a log line's.
const (
	ViaOperator = "operator"
	ViaLogLine  = "log_line"
)

// Fields of override audit records.
const (
	FieldActor  = "actor"
	FieldReason = "reason"
	FieldTTL    = "ttl"
	FieldUntil  = "until"
	FieldOrigin = "origin"
	FieldVia    = "via"
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
	// Via is ViaOperator or ViaLogLine.
	Via string `json:"via,omitempty"`
}

// State is the current override, if any, and the changes that made it. The zero value is "no
// override".
//
// Decisions are taken in event time from History: the override in force at t is the one the
// newest change at or before t enabled, if its Until is after t. So a line is judged by the
// override of its own time whatever order the lines of several origins arrive in, and
// reading the same history again (a lost checkpoint, a restored file) finds every change
// already known: it changes nothing and records nothing twice.
type State struct {
	Current *Override `json:"current,omitempty"`
	// History holds the newest changes, oldest first, at most maxHistory.
	History []Change `json:"history,omitempty"`
	// expired is the Until of the last override whose expiry was recorded (so that a replay
	// does not record it again).
	ExpiredUntil time.Time `json:"expired_until,omitempty"`
	// Refusals are the newest refused declarations, so that a replay reports none twice.
	Refusals []Change `json:"refusals,omitempty"`
}

// Change is one declared change: an override enabled (Until set) or disabled.
type Change struct {
	Event  string    `json:"event"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Reason string    `json:"reason,omitempty"`
	Until  time.Time `json:"until,omitempty"`
	Origin string    `json:"origin"`
	Source string    `json:"source,omitempty"`
	Via    string    `json:"via,omitempty"`
}

// maxHistory bounds the changes kept: enough to judge the lines of an origin that lags
// behind by a few changes, and to recognise a replay of them.
const maxHistory = 32

func (c Change) same(o Change) bool {
	return c.Event == o.Event && c.At.Equal(o.At) && c.Actor == o.Actor && c.Reason == o.Reason &&
		c.Origin == o.Origin && c.Until.Equal(o.Until)
}

func (c Change) override() *Override {
	return &Override{Actor: c.Actor, Reason: c.Reason, Since: c.At, Until: c.Until, Origin: c.Origin,
		Source: c.Source, Via: c.Via}
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
	if len(s.History) == 0 {
		// A state restored from a snapshot that kept only the current override.
		if s.Current == nil || t.Before(s.Current.Since) || !t.Before(s.Current.Until) {
			return nil, false
		}
		return s.Current, true
	}
	for i := len(s.History) - 1; i >= 0; i-- {
		c := s.History[i]
		if c.At.After(t) {
			continue
		}
		if c.Event != Enabled || !t.Before(c.Until) {
			return nil, false
		}
		return c.override(), true
	}
	return nil, false
}

// record adds a change to the history in time order and reports whether it is new.
func (s *State) record(c Change) bool {
	i := len(s.History)
	for i > 0 && s.History[i-1].At.After(c.At) {
		i--
	}
	for j := i - 1; j >= 0 && s.History[j].At.Equal(c.At); j-- {
		if s.History[j].same(c) {
			return false
		}
	}
	if len(s.History) >= maxHistory && i == 0 {
		return false // older than everything kept: a replay of forgotten history
	}
	s.History = append(s.History, Change{})
	copy(s.History[i+1:], s.History[i:])
	s.History[i] = c
	if len(s.History) > maxHistory {
		s.History = append(s.History[:0], s.History[len(s.History)-maxHistory:]...)
	}
	return true
}

// latest sets Current from the newest change.
func (s *State) latest() {
	s.Current = nil
	if n := len(s.History); n > 0 && s.History[n-1].Event == Enabled {
		s.Current = s.History[n-1].override()
	}
}

// Apply applies an override change at the event's time and returns the audit record of the
// change, or nil when nothing changed: the same declaration seen twice (a replay), a disable
// with no override in force, or a change older than every change kept.
func (s *State) Apply(ev *sdk.Event, cfg Config) *sdk.Event {
	at := ev.Time.UTC()
	origin := ev.Origin
	via := ViaLogLine
	if ev.Kind == sdk.KindAudit {
		// An audit event is an operator's declaration (origin "operator", from the agent) or
		// the record of an override processor upstream, which says how it was declared. Log
		// sources never emit audit events, so no log line reaches this branch.
		if o := ev.Field(FieldOrigin); o != "" {
			origin = o
		}
		switch v := ev.Field(FieldVia); {
		case v == ViaOperator:
			via = ViaOperator
		case v == "" && ev.Origin == OriginOperator:
			via = ViaOperator
		}
	}
	actor := ev.Field(FieldActor)
	if actor == "" {
		actor = "unknown"
	}
	c := Change{Event: ev.Field("event"), At: at, Actor: actor, Reason: ev.Field(FieldReason), Origin: origin,
		Source: ev.Source, Via: via}
	switch c.Event {
	case Enabled:
		// An explicit until comes only from an override processor's record upstream (it
		// applied its max_ttl); an app's line gives a ttl, capped here.
		if u := ev.Field(FieldUntil); u != "" && ev.Kind == sdk.KindAudit {
			if t, err := time.Parse(time.RFC3339Nano, u); err == nil {
				c.Until = t.UTC()
			}
		}
		if c.Until.IsZero() {
			c.Until = at.Add(ttl(ev.Field(FieldTTL), cfg))
		}
		if cur := s.Current; cur != nil && cur.Actor == c.Actor && cur.Reason == c.Reason && cur.Until.Equal(c.Until) {
			return nil
		}
		if !s.record(c) {
			return nil
		}
		s.latest()
		return record(Enabled, c.override(), at, ev)
	case Disabled:
		prev, ok := s.Active(at)
		if !ok {
			return nil
		}
		if !s.record(c) {
			return nil
		}
		s.latest()
		ended := *prev
		ended.Until, ended.Origin, ended.Source, ended.Via = at, origin, ev.Source, via
		rec := record(Disabled, &ended, at, ev)
		rec.Fields[FieldActor] = actor
		rec.Fields["enabled_by"] = prev.Actor
		if r := ev.Field(FieldReason); r != "" {
			rec.Fields[FieldReason] = r
		}
		return rec
	}
	return nil
}

// Refuse returns the audit record of an override line refused because its origin may not
// declare overrides (allowed names the patterns that may), or nil when the same line was
// refused before.
func (s *State) Refuse(ev *sdk.Event, allowed string) *sdk.Event {
	c := Change{Event: ev.Field("event"), At: ev.Time.UTC(), Actor: ev.Field(FieldActor), Reason: ev.Field(FieldReason),
		Origin: ev.Origin, Source: ev.Source, Via: ViaLogLine}
	for _, r := range s.Refusals {
		if r.same(c) {
			return nil
		}
	}
	s.Refusals = append(s.Refusals, c)
	if len(s.Refusals) > maxHistory {
		s.Refusals = append(s.Refusals[:0], s.Refusals[len(s.Refusals)-maxHistory:]...)
	}
	return &sdk.Event{Time: c.At, Kind: sdk.KindAudit, Source: ev.Source, Origin: ev.Origin,
		Fields: map[string]string{
			"event":     Refused,
			"declared":  c.Event,
			FieldActor:  c.Actor,
			FieldReason: c.Reason,
			FieldOrigin: ev.Origin,
			FieldVia:    ViaLogLine,
			"why": "origin " + ev.Origin + " may not declare overrides (allow_origins: " + allowed +
				"); an operator can (tda override on), or add the origin to allow_origins",
		}}
}

// Expire ends an override whose TTL has passed by now and returns the audit record, or nil.
// The override stays in History, so lines of its time that arrive later (a lagging origin, a
// replay) are still judged by it, and its expiry is recorded once.
func (s *State) Expire(now time.Time) *sdk.Event {
	c := s.Current
	if c == nil || now.Before(c.Until) {
		return nil
	}
	s.Current = nil
	if !s.ExpiredUntil.IsZero() && !c.Until.After(s.ExpiredUntil) {
		return nil
	}
	s.ExpiredUntil = c.Until
	return record(Expired, c, c.Until, &sdk.Event{Origin: c.Origin, Source: c.Source})
}

// Sanitize drops what no real clock can have produced: changes outside [min, max] (a state
// written before lines from the future were held to their arrival time). It reports whether
// anything was dropped.
func (s *State) Sanitize(min, max time.Time) bool {
	kept := s.History[:0]
	for _, c := range s.History {
		if !c.At.Before(min) && !c.At.After(max) {
			kept = append(kept, c)
		}
	}
	dropped := len(kept) != len(s.History)
	s.History = kept
	if c := s.Current; c != nil && (c.Since.Before(min) || c.Since.After(max)) {
		s.Current, dropped = nil, true
	}
	if s.ExpiredUntil.After(max) {
		s.ExpiredUntil = time.Time{}
	}
	if dropped && len(s.History) > 0 {
		s.latest()
		if c := s.Current; c != nil && !s.ExpiredUntil.IsZero() && !c.Until.After(s.ExpiredUntil) {
			s.Current = nil
		}
	}
	return dropped
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
			FieldVia:    orLogLine(o.Via),
			"since":     sdk.FormatTime(o.Since),
		}}
}

func orLogLine(via string) string {
	if via == "" {
		return ViaLogLine
	}
	return via
}
