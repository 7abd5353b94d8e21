package repair

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/tda-dev/tda/plugins/detect/parse"
	"github.com/tda-dev/tda/sdk"
)

// EventFilter selects, among an application's log lines, the events of an incident.
type EventFilter struct {
	// Events are the event types that wrote the rows (password_changed, user_deleted).
	Events []string
	// Window is the incident; lines outside it (widened by Tolerance) are ignored.
	Window    Window
	Tolerance time.Duration
	// Actor, when set, keeps only the lines of that actor (the attacker the excerpt shows);
	// ExcludeAdmins drops lines with actor_role=admin, as the rules do.
	Actor         string
	ExcludeAdmins bool
	// Field names the row (default user_id).
	Field string
	// Location is the time zone of lines whose timestamps carry none (nil: UTC).
	Location *time.Location
	// MaxKeys bounds the keys collected (0: DefaultMaxRows).
	MaxKeys int
}

// EventKeys reads log lines in any format tda's parser knows (audit lines of the documented
// contract, access lines, framework messages, JSON) and returns the rows the incident's events
// name, each with the time of the last event naming it, in the order first seen. Lines that
// are not such events are passed over; a line longer than 1 MiB is an error.
func EventKeys(r io.Reader, f EventFilter) ([]Key, error) {
	if len(f.Events) == 0 {
		return nil, fmt.Errorf("no event types to look for")
	}
	field := f.Field
	if field == "" {
		field = parse.FieldUserID
	}
	tol := f.Tolerance
	if tol == 0 {
		tol = DefaultTolerance
	}
	max := f.MaxKeys
	if max <= 0 {
		max = DefaultMaxRows
	}
	p := parse.New(parse.Options{Location: f.Location})
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var keys []Key
	index := map[string]int{}
	for sc.Scan() {
		ev := sdk.Event{Kind: sdk.KindLog, Origin: "events", Line: slices.Clone(sc.Bytes())}
		typ := p.Apply(&ev)
		if typ == "" || !slices.Contains(f.Events, typ) {
			continue
		}
		if !f.Window.From.IsZero() && ev.Time.Before(f.Window.From.Add(-tol)) {
			continue
		}
		if !f.Window.Until.IsZero() && ev.Time.After(f.Window.Until.Add(tol)) {
			continue
		}
		if f.Actor != "" && ev.Fields[parse.FieldActor] != f.Actor {
			continue
		}
		if f.ExcludeAdmins && ev.Fields[parse.FieldActorRole] == "admin" {
			continue
		}
		v := ev.Fields[field]
		if v == "" {
			continue
		}
		if i, ok := index[v]; ok {
			if ev.Time.After(keys[i].At) {
				keys[i].At = ev.Time
			}
			continue
		}
		if len(keys) >= max {
			return nil, fmt.Errorf("more than %d rows named by the events: narrow the window or the actor", max)
		}
		index[v] = len(keys)
		keys = append(keys, Key{Value: v, At: ev.Time})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read the log lines: %w", err)
	}
	return keys, nil
}

// RuleEvents maps the bundled detection rules to the event types that damage rows.
var RuleEvents = map[string][]string{
	"mass_password_reset": {"password_changed"},
	"bulk_deletion":       {"user_deleted"},
}

// RuleExcludesAdmins names the bundled rules that leave admins' events out (unless =
// "actor_role == admin"): their incidents never include an admin's write.
var RuleExcludesAdmins = map[string]bool{"mass_password_reset": true}
