package actions

import (
	"errors"
	"net/http"

	"github.com/hashicorp/hcl/v2"

	"github.com/tda-dev/tda/sdk"
)

// Kind says what kind of failure an operator action met, so that the CLI and the API can
// answer it the right way.
type Kind string

// The kinds of failure. The first four are the ones an action itself reports
// (sdk.ActionInvalid and the others); the agent's own checks use them too.
const (
	// Invalid: the request is wrong (no such block, a missing argument).
	Invalid = Kind(sdk.ActionErrInvalid)
	// NotFound: what the request names does not exist (a snapshot, an action).
	NotFound = Kind(sdk.ActionErrNotFound)
	// Conflict: the request clashes with the current state.
	Conflict = Kind(sdk.ActionErrConflict)
	// Unavailable: something the action needs cannot be reached now; retry later.
	Unavailable = Kind(sdk.ActionErrUnavailable)
	// Failed: the action ran and failed without saying more.
	Failed Kind = "failed"
	// PluginFailed: the plugin could not run the action: it did not start, crashed, hung,
	// or serves no actions.
	PluginFailed Kind = "plugin"
)

// Error is an operator action's failure: which instance and action, and its kind.
type Error struct {
	Kind Kind
	// Address is the instance ("sink.snapshot.db"), Action the action's name; either may be
	// empty for a request that named none.
	Address, Action string
	Err             error
	// Diagnostics are the plugin's objections to the block, positioned in the config, when
	// it refused its configuration.
	Diagnostics hcl.Diagnostics
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// KindOf is the kind of err: Failed for an error that is no *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Failed
}

// HTTPStatus is the HTTP status the API answers for an action's error.
func HTTPStatus(err error) int {
	switch KindOf(err) {
	case Invalid:
		return http.StatusBadRequest
	case NotFound:
		return http.StatusNotFound
	case Conflict:
		return http.StatusConflict
	case Unavailable:
		return http.StatusServiceUnavailable
	case PluginFailed:
		return http.StatusBadGateway
	default:
		return http.StatusInternalServerError
	}
}
