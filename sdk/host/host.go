// Package host drives tda plugins from the agent's side: it launches a plugin binary as a
// child process (go-plugin, gRPC over a Unix socket whose peers the kernel vouches for), and
// exposes each component through the Source, Processor and Sink interfaces. The same
// interfaces are implemented in-process by Direct*, which the test harness and benchmarks use
// to run a component without RPC.
package host

import (
	"context"
	"errors"
	"io"

	"github.com/tda-dev/tda/sdk"
)

// Configuration configures one component instance.
type Configuration struct {
	// Component is the component's name inside the plugin, e.g. "file".
	Component string
	// Instance is the block's address, e.g. "source.file.hosts".
	Instance string
	// Config is the decoded block as JSON (see sdk.ParseConfig).
	Config []byte
	// DataDir is a directory private to the instance.
	DataDir string
	// ValidateOnly checks the config without starting anything.
	ValidateOnly bool
	// ActionsOnly configures the instance for operator actions (Conn.CallAction) alone: it
	// is not started until an action that needs it runs.
	ActionsOnly bool
}

// Configured is the outcome of Configure.
type Configured struct {
	Diagnostics sdk.Diagnostics
	// Stateful is true for a processor with state to snapshot and restore.
	Stateful bool
	// WatchesCommits is true for a source that wants Reader.Committed (sdk.CommitWatcher).
	WatchesCommits bool
}

// Source is a source component as the host sees it.
type Source interface {
	Configure(ctx context.Context, c Configuration) (Configured, error)
	// Read starts the source with its saved checkpoints and initial credits.
	Read(ctx context.Context, checkpoints map[string][]byte, credits int) (Reader, error)
	Close(ctx context.Context) error
}

// Reader is a running source.
type Reader interface {
	// Recv returns the next message; io.EOF after the source stopped cleanly.
	Recv() (Message, error)
	// Grant gives the source n more credits.
	Grant(n int) error
	// Committed tells a source that watches commits (Configured.WatchesCommits) which of its
	// checkpoint entries were committed; see sdk.CommitWatcher for what it promises.
	Committed(cps []sdk.Checkpoint) error
	// Stop asks the source to finish; Recv then returns what is left and io.EOF.
	Stop() error
}

// Message is what a running source sends: a batch with its checkpoints, or a status. The
// receiver holds the batch: it releases it when done (see Batch.Release), or leaves it to
// the garbage collector.
type Message struct {
	Batch       *Batch
	Checkpoints []sdk.Checkpoint
	Status      *sdk.Status
}

// Processor is a processor component as the host sees it.
type Processor interface {
	Configure(ctx context.Context, c Configuration) (Configured, error)
	Process(ctx context.Context, in *Batch, wm sdk.Watermark) (*Batch, error)
	Snapshot(ctx context.Context) ([]byte, error)
	Restore(ctx context.Context, state []byte) error
	Close(ctx context.Context) error
}

// Sink is a sink component as the host sees it. Write returns errors made with sdk.Permanent
// and sdk.Retry as the plugin returned them; id is the delivery id (the same for every retry
// of the batch).
type Sink interface {
	Configure(ctx context.Context, c Configuration) (Configured, error)
	Write(ctx context.Context, id uint64, b *Batch) error
	Close(ctx context.Context) error
}

// ErrStopped is returned by a Reader whose source was stopped.
var ErrStopped = io.EOF

// IsEOF reports whether err marks the clean end of a source's stream.
func IsEOF(err error) bool { return errors.Is(err, io.EOF) }
