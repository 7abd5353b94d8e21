package sdk

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Action is an operator command a component serves outside the data flow: take a snapshot,
// list them, restore one, plan a repair. The agent configures an instance of the component
// from the user's block (as `tda run` would, but without starting it), runs one action on it
// and closes it. `tda plugins` lists every component's actions.
type Action struct {
	// Name is dotted, e.g. "snapshot.create" or "explain": lower-case letters, digits, '_'
	// and '.'.
	Name    string
	Summary string
	// Starts: the instance's Start (Starter) runs before Run (opens connections). An action
	// that only reads its config leaves it false.
	Starts bool
	// Run does the work. component is the value the component's constructor returned (the
	// Source, Processor or Sink); req.Args is the action's JSON request. It returns the JSON
	// result, or an error: one made with ActionInvalid, ActionNotFound, ActionConflict or
	// ActionUnavailable says what kind of failure it is (the agent maps the kind to its exit
	// status and to HTTP 400, 404, 409 or 503), any other is a failure of the action itself.
	// ctx is cancelled when the operator gives up (Ctrl-C, a closed HTTP request).
	Run func(ctx context.Context, component any, req ActionRequest) ([]byte, error)
}

// ActionRequest is what an action is called with.
type ActionRequest struct {
	// Args is the JSON the action defines as its request (may be empty).
	Args []byte
	// Actor is who asked (the CLI user, an API token's name), for the audit trail.
	Actor string
	// Progress sends one line to the operator while the action runs; never nil. Lines are
	// cut at MaxProgressLine bytes.
	Progress func(line string)
}

// MaxProgressLine bounds one progress line of an action.
const MaxProgressLine = 4096

// ActionDescription is an action as a Description lists it.
type ActionDescription struct {
	Name    string `json:"name"`
	Summary string `json:"summary,omitempty"`
}

// WithActions returns the component serving these operator actions besides its data flow.
func (c Component) WithActions(actions ...Action) Component {
	c.Actions = append(append([]Action(nil), c.Actions...), actions...)
	return c
}

// Action returns the component's action of that name.
func (c Component) Action(name string) (Action, bool) {
	for _, a := range c.Actions {
		if a.Name == name {
			return a, true
		}
	}
	return Action{}, false
}

// checkActions reports an action without a name, a valid name or a Run, and a name declared
// twice.
func checkActions(actions []Action) error {
	seen := map[string]bool{}
	for _, a := range actions {
		if !validActionName(a.Name) {
			return fmt.Errorf("action name %q: use lower-case letters, digits, '_' and '.' (e.g. \"snapshot.create\")", a.Name)
		}
		if a.Run == nil {
			return fmt.Errorf("action %s has no Run", a.Name)
		}
		if seen[a.Name] {
			return fmt.Errorf("action %s declared twice", a.Name)
		}
		seen[a.Name] = true
	}
	return nil
}

func validActionName(name string) bool {
	if name == "" || len(name) > 64 || name[0] == '.' || name[len(name)-1] == '.' || strings.Contains(name, "..") {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// ActionErrorKind says what kind of failure an action reports.
type ActionErrorKind string

// The kinds of action failures. The agent maps them to HTTP 400, 404, 409 and 503.
const (
	// ActionErrInvalid: the request is wrong (a missing argument, a bad id); asking again
	// the same way fails again.
	ActionErrInvalid ActionErrorKind = "invalid"
	// ActionErrNotFound: what the request names does not exist (a snapshot, an incident).
	ActionErrNotFound ActionErrorKind = "not_found"
	// ActionErrConflict: the request clashes with the current state (a database of that name
	// exists already, another restore runs).
	ActionErrConflict ActionErrorKind = "conflict"
	// ActionErrUnavailable: something the action needs cannot be reached now (the database,
	// the cloud API); the same request may succeed later.
	ActionErrUnavailable ActionErrorKind = "unavailable"
)

// ActionError is an action's failure with its kind. The agent rebuilds it from the wire, so
// errors.As finds it on the host side too.
type ActionError struct {
	Kind ActionErrorKind
	Err  error
}

func (e *ActionError) Error() string { return e.Err.Error() }
func (e *ActionError) Unwrap() error { return e.Err }

func actionError(kind ActionErrorKind, format string, a ...any) error {
	return &ActionError{Kind: kind, Err: fmt.Errorf(format, a...)}
}

// ActionInvalid is an action's error for a request that is wrong.
func ActionInvalid(format string, a ...any) error {
	return actionError(ActionErrInvalid, format, a...)
}

// ActionNotFound is an action's error for a request naming something that does not exist.
func ActionNotFound(format string, a ...any) error {
	return actionError(ActionErrNotFound, format, a...)
}

// ActionConflict is an action's error for a request that clashes with the current state.
func ActionConflict(format string, a ...any) error {
	return actionError(ActionErrConflict, format, a...)
}

// ActionUnavailable is an action's error when something it needs cannot be reached now.
func ActionUnavailable(format string, a ...any) error {
	return actionError(ActionErrUnavailable, format, a...)
}

// ActionErrorKindOf is the kind of an action's error ("" for an error without one).
func ActionErrorKindOf(err error) ActionErrorKind {
	var ae *ActionError
	if errors.As(err, &ae) {
		return ae.Kind
	}
	return ""
}
