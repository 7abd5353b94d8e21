// Package deadletter describes the batches the runtime gave up on: a batch a destination
// refused permanently, or one that failed, crashed or hung its plugin more times than the
// instance's crash budget allows. A dead letter keeps the events it held and the last error,
// so that nothing is dropped in silence: an operator lists, shows, replays or drops it.
//
// The runtime owns the store (it persists letters in the state store, bounded); the CLI,
// the API and the panel reach it through Letters.
package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Reason says why a batch became a dead letter.
type Reason string

const (
	// ReasonRefused: the destination refused the batch permanently (a revoked webhook, an
	// invalid address); retrying the same batch cannot succeed until the config is fixed.
	ReasonRefused Reason = "refused"
	// ReasonCrashBudget: the batch failed, or crashed its plugin (a recovered panic counts as
	// a failure), as many times as the instance's max_attempts allows.
	ReasonCrashBudget Reason = "crash_budget"
	// ReasonDeadline: the plugin did not answer within call_timeout, max_attempts times.
	ReasonDeadline Reason = "deadline"
)

// Letter describes one dead-lettered batch.
type Letter struct {
	ID uint64 `json:"id"`
	// Instance is the address of the component that gave up, e.g. "sink.slack.oncall" or
	// "processor.rules.anomalies".
	Instance string `json:"instance"`
	// Pipeline is the pipeline the batch travelled in ("" when it is not known).
	Pipeline string    `json:"pipeline,omitempty"`
	Time     time.Time `json:"time"`
	Reason   Reason    `json:"reason"`
	// Error is the last error, as the plugin or the runtime said it.
	Error    string `json:"error"`
	Attempts int    `json:"attempts"`
	Events   int    `json:"events"`
	Bytes    int    `json:"bytes"`
	// Kinds are the event kinds the batch holds ("log", "alert", ...).
	Kinds []string `json:"kinds,omitempty"`
	// Preview is a few of the batch's events in short form (an alert's rule and key, a
	// log line's first bytes), for listings.
	Preview []string `json:"preview,omitempty"`
}

// Letters is what the operator surfaces (CLI, API, panel) use.
type Letters interface {
	// List returns every dead letter, oldest first.
	List(ctx context.Context) ([]Letter, error)
	// Show returns a letter and its events, each as a JSON object (the sdk.Event form).
	Show(ctx context.Context, id uint64) (Letter, []json.RawMessage, error)
	// Replay puts the letter's events back on the queue of the instance that gave up on them;
	// the letter is removed once the queue has taken them.
	Replay(ctx context.Context, id uint64) error
	// Drop deletes a letter for good.
	Drop(ctx context.Context, id uint64) error
}

// ErrNotFound is returned for an id that names no dead letter.
var ErrNotFound = errors.New("no dead letter with that id")
