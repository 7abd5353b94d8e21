package provider

import "context"

// Prober is implemented by providers that can check, without changing anything, that taking
// and restoring snapshots would work now: the target is reachable, the credentials are valid
// and the permissions suffice. The agent probes every target at start and periodically, and
// shows a failure as a degraded state with the error's advice.
type Prober interface {
	// Probe returns nil when snapshots and restores would work, else a *Error whose Advice
	// says what to fix.
	Probe(ctx context.Context) error
}
