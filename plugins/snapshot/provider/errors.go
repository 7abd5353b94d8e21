package provider

import (
	"errors"
	"strings"
)

// Error classes. Provider errors match one of them with errors.Is.
var (
	// ErrAlreadyExists: a snapshot or restore target with that name exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrNotFound: the snapshot or the source target does not exist.
	ErrNotFound = errors.New("not found")
	// ErrQuota: an account limit is reached.
	ErrQuota = errors.New("quota exceeded")
	// ErrBusy: the target or snapshot is in a state that does not allow the operation now;
	// the same request may succeed later.
	ErrBusy = errors.New("busy")
	// ErrNotSupported: the provider cannot do this (e.g. point in time on PostgreSQL).
	ErrNotSupported = errors.New("not supported")
	// ErrCorrupt: a snapshot's content does not match its recorded checksum.
	ErrCorrupt = errors.New("corrupt")
	// ErrInvalid: the request itself is wrong (bad name, time outside the window).
	ErrInvalid = errors.New("invalid request")
)

// Error is a provider failure explained for an operator: what failed, why, and what to do.
type Error struct {
	// Op is the operation, e.g. "create snapshot tda-prod-manual-20261129t225705z".
	Op string
	// Class is one of the Err* classes (nil when none applies).
	Class error
	// Err is the underlying error (an API fault, an exit status).
	Err error
	// Advice tells the operator what to do.
	Advice string
}

// Error implements error: "op: cause. advice".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	} else if e.Class != nil {
		b.WriteString(": ")
		b.WriteString(e.Class.Error())
	}
	if e.Advice != "" {
		b.WriteString(". ")
		b.WriteString(e.Advice)
	}
	return b.String()
}

// Unwrap exposes both the class and the cause to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Class != nil {
		errs = append(errs, e.Class)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// Transient reports whether retrying the same request later may succeed.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	for _, permanent := range []error{ErrAlreadyExists, ErrNotFound, ErrQuota, ErrNotSupported, ErrCorrupt, ErrInvalid} {
		if errors.Is(err, permanent) {
			return false
		}
	}
	return true
}
