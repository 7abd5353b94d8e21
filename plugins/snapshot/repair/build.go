package repair

import (
	"fmt"
	"strings"
	"time"
)

// Request is a scope as an operator gives it (the CLI's flags, the API's body), before the
// incident's events are read.
type Request struct {
	// Rule, From, Until and Resolved describe the incident, when there is one: an open
	// incident's range stays open unless Until is set.
	Rule     string
	From     time.Time
	Until    time.Time
	Resolved bool

	Table, Key, UpdatedAt string
	Columns               []string
	Keys                  []string
	// Events are the app's log lines (the caller read them: a repair reads no file on
	// anyone's behalf), EventsSource says where they came from (for messages);
	// EventTypes (default: the rule's), Actor, IncludeAdmins and Field select the
	// incident's events in them (see EventFilter).
	Events        []string
	EventsSource  string
	EventTypes    []string
	Actor         string
	IncludeAdmins bool
	Field         string
	Tolerance     time.Duration
	MaxRows       int
}

// BuildScope turns a request into a scope, with the rows the events name.
func BuildScope(r Request) (Scope, error) {
	s := Scope{Table: r.Table, Key: r.Key, UpdatedAt: r.UpdatedAt, Columns: r.Columns, Tolerance: r.Tolerance,
		MaxRows: r.MaxRows, Window: Window{From: r.From, Until: r.Until}}
	if s.Table == "" {
		s.Table = "users"
	}
	for _, k := range r.Keys {
		if k = strings.TrimSpace(k); k != "" {
			s.Keys = append(s.Keys, Key{Value: k})
		}
	}
	if len(r.Events) == 0 {
		return s, nil
	}
	source := r.EventsSource
	if source == "" {
		source = "the log lines given"
	}
	types := r.EventTypes
	if len(types) == 0 {
		types = RuleEvents[r.Rule]
	}
	if len(types) == 0 {
		return s, fmt.Errorf("events: which events wrote the rows? name the event types (e.g. password_changed, user_deleted)")
	}
	keys, err := EventKeys(strings.NewReader(strings.Join(r.Events, "\n")), EventFilter{Events: types, Window: s.Window, Tolerance: s.Tolerance, Actor: r.Actor,
		ExcludeAdmins: RuleExcludesAdmins[r.Rule] && !r.IncludeAdmins, Field: r.Field, MaxKeys: r.MaxRows})
	if err != nil {
		return s, fmt.Errorf("events %s: %w", source, err)
	}
	if len(keys) == 0 {
		return s, fmt.Errorf("events %s: no %s event in the incident's time range names a row; check the range, the actor and the event types", source, strings.Join(types, ", "))
	}
	s.Keys = append(s.Keys, keys...)
	return s, nil
}
