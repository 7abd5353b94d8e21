package ops

import (
	"errors"
	"fmt"
)

// Kinds of errors the operations return; the API maps each to an HTTP status and the client
// maps the status back, so the CLI prints the same message whether it talked to a running
// agent or opened the store itself.
const (
	KindInvalid     = "invalid"     // 400: a required value is missing or malformed
	KindForbidden   = "forbidden"   // 403: a rule forbids it (self-approval, blocked state)
	KindNotFound    = "not_found"   // 404
	KindConflict    = "conflict"    // 409: the object is not in a state that allows it
	KindUnavailable = "unavailable" // 503: needs something absent (a running agent, a snapshot target)
)

// Error is an operation refused or failed for a reason the operator can act on.
type Error struct {
	Kind    string
	Message string
}

func (e *Error) Error() string { return e.Message }

func errorf(kind, format string, args ...any) error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of err ("" for unexpected errors).
func KindOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}
