package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Source produces events. Run reads until ctx is cancelled and hands batches to out.Emit; it
// returns nil after a clean stop. A source must not assume its batches are delivered: the
// checkpoints it emits are stored by the agent only once every sink has accepted the batch,
// and Output.Checkpoints is where it resumes after any restart.
type Source interface {
	Run(ctx context.Context, out Output) error
}

// Output is a running source's link to the agent.
type Output interface {
	// Checkpoints returns the entries this instance saved before, keyed as they were emitted.
	Checkpoints() map[string][]byte
	// Emit hands a batch to the agent, with the checkpoint entries that describe the position
	// after it. It blocks while the agent applies backpressure and returns ctx's error when
	// the source is being stopped. Emit takes ownership of events, their Lines and Fields.
	Emit(ctx context.Context, events []Event, checkpoints ...Checkpoint) error
	// SetStatus reports the source healthy or degraded (with a reason for the operator).
	SetStatus(s Status)
}

// CommitWatcher is implemented by a source that must know when its checkpoints became
// durable, e.g. to acknowledge messages to a broker only once nothing they carried can be
// lost (the nats source acknowledges JetStream messages this way).
//
// Committed receives, for each key that changed, the newest checkpoint value the agent
// committed: every sink fed by the batches up to it accepted them, and the processors' state
// covering them is stored with it in one transaction. A deleted key has a nil value.
//
// What the agent promises: commits arrive in order, each covers everything an earlier one
// did, and a value is never one the source did not emit. Committed is called from one
// goroutine, concurrently with Run, and must return quickly (hand the work to Run). Each
// time Run starts (the agent started, or restarted the source), the first call holds every
// entry committed so far (what the agent's store holds), so a source that was restarted
// between a commit and its notification catches up; note that Output.Checkpoints may then be
// ahead of it (after a restart of the plugin alone, it holds what was handed over, committed
// or not). An agent older than this interface never calls it: a source must keep working
// (reading on from Output.Checkpoints) without it.
type CommitWatcher interface {
	Committed(ctx context.Context, checkpoints map[string][]byte)
}

// EmitCopier is implemented by an Output whose Emit is done with a batch's memory when it
// returns: it has encoded the events for the agent (a plugin process does). A source that
// checks for it with EmitCopies may then reuse the events slice and the memory their Lines
// and Fields point into for its next batch, instead of allocating new memory for every
// batch. With any other Output (the agent running the source in its own process keeps the
// events), Emit takes ownership as documented on Output.
type EmitCopier interface {
	EmitCopies() bool
}

// EmitCopies reports whether out is done with a batch's events, Lines and Fields when Emit
// returns, so the source may reuse them.
func EmitCopies(out Output) bool {
	c, ok := out.(EmitCopier)
	return ok && c.EmitCopies()
}

// Recycler is implemented by an Output that can hand a batch's memory back to the source
// once the agent is done with it: the agent running the source in its own process, where
// Emit copies nothing. A source that checks for it with Recycles emits through
// EmitRecycled and reuses what done returns, instead of allocating new memory for every
// batch (the garbage collector's work is most of what such a source would otherwise cost).
type Recycler interface {
	// EmitRecycled is Emit for events whose Lines lie in arena (or in memory of their own).
	// done is called once, from any goroutine, when the agent holds no reference to events,
	// the events slice or arena any more; the source may then reuse both. done may never be
	// called (the agent kept the batch, or it stopped): the memory is then the garbage
	// collector's, as with Emit.
	EmitRecycled(ctx context.Context, events []Event, arena []byte, done func(), checkpoints ...Checkpoint) error
}

// Recycles returns out as a Recycler when it hands batch memory back (see Recycler).
func Recycles(out Output) (Recycler, bool) {
	if r, ok := out.(interface{ Recycles() bool }); ok && !r.Recycles() {
		return nil, false
	}
	rec, ok := out.(Recycler)
	return rec, ok
}

// Processor transforms batches in order. It returns the events that go on downstream: the
// input (changed or not), fewer, or new ones such as alerts. Process is never called
// concurrently.
//
// The events, the memory their Lines point into and the slice are the processor's during
// the call only: the SDK and the agent reuse them for later batches once the output is
// passed on. A processor copies what it keeps in its state (bytes.Clone, string(line)). The
// events it returns may be the input's.
type Processor interface {
	Process(ctx context.Context, events []Event, wm Watermark) ([]Event, error)
}

// Stateful is implemented by processors whose state must survive a restart of the plugin or
// of the agent (sliding windows, open incidents). The agent snapshots at checkpoints and
// restores before replaying what came after.
type Stateful interface {
	Snapshot() ([]byte, error)
	Restore(state []byte) error
}

// Sink delivers batches. Write returns nil when the batch is durably accepted, an error made
// with Permanent when it can never be delivered, or any other error (optionally wrapped with
// Retry) for a transient failure the agent retries.
type Sink interface {
	Write(ctx context.Context, b Batch) error
}

// Starter is implemented by processors and sinks that open files or connections: Start runs
// once the instance is configured for real (never under `tda validate`).
type Starter interface {
	Start(ctx context.Context) error
}

// Closer is implemented by components that release resources when the agent stops them.
type Closer interface {
	Close(ctx context.Context) error
}

// Resources are what the agent gives each component instance.
type Resources struct {
	// Logger writes to the agent's log under the instance's name.
	Logger hclog.Logger
	// Instance is the block's address, e.g. "source.file.hosts".
	Instance string
	// DataDir is a directory private to this instance that survives restarts.
	DataDir string
	// Stdout is where the instance prints what is meant for the agent's standard output
	// (the console sink); nil means os.Stdout, which the agent forwards from a plugin
	// process. Use Output.
	Stdout io.Writer
	// Getenv reads the instance's environment; nil means os.Getenv. A bundled component
	// running inside the agent's own process gets the environment a plugin process would
	// have been given, through this. Use Env.
	Getenv func(key string) string
}

// Output is where the instance prints what is meant for the agent's standard output.
func (r Resources) Output() io.Writer {
	if r.Stdout != nil {
		return r.Stdout
	}
	return os.Stdout
}

// Env returns the value of the instance's environment variable key ("" when unset).
func (r Resources) Env(key string) string {
	if r.Getenv != nil {
		return r.Getenv(key)
	}
	return os.Getenv(key)
}

// ComponentKind says what a component is.
type ComponentKind string

// Component kinds.
const (
	KindSource    ComponentKind = "source"
	KindProcessor ComponentKind = "processor"
	KindSink      ComponentKind = "sink"
)

// Queue modes for sinks.
const (
	QueueMemory  = "memory"
	QueueDurable = "durable"
)

// Component is one source, processor or sink a plugin binary offers. Build it with
// SourceComponent, ProcessorComponent or SinkComponent.
type Component struct {
	Kind ComponentKind
	Name string
	Spec *Spec
	// Accepts lists the event kinds a sink wants (e.g. "alert"); empty means all.
	Accepts []string
	// Queue is a sink's default queue: QueueMemory (backpressure reaches the source) or
	// QueueDurable (accepted batches are persisted by the agent and survive restarts; the
	// right choice for alert notifications). Users can override it per block.
	Queue string
	// MaxBatch caps how many events the agent puts in one Write to this sink (0: the agent's
	// default). A notifier that renders a batch as one message sets it to what fits.
	MaxBatch int
	// BorrowsInput declares that a processor keeps nothing of its input past Process: not the
	// events slice, no event, and no Line or Fields map of an input event (it copies what it
	// keeps, into strings or with Event.Clone). Its output may share the input's lines. A
	// plugin process then decodes every batch into the memory of the previous one instead
	// of new memory.
	BorrowsInput bool
	// Actions are the operator commands the component serves besides its data flow (see
	// Action and WithActions).
	Actions []Action

	newSource    func(*Config, Resources) (Source, error)
	newProcessor func(*Config, Resources) (Processor, error)
	newSink      func(*Config, Resources) (Sink, error)
}

// SourceComponent declares a source.
func SourceComponent(name string, spec *Spec, ctor func(*Config, Resources) (Source, error)) Component {
	return Component{Kind: KindSource, Name: name, Spec: spec, newSource: ctor}
}

// ProcessorComponent declares a processor.
func ProcessorComponent(name string, spec *Spec, ctor func(*Config, Resources) (Processor, error)) Component {
	return Component{Kind: KindProcessor, Name: name, Spec: spec, newProcessor: ctor}
}

// SinkComponent declares a sink.
func SinkComponent(name string, spec *Spec, ctor func(*Config, Resources) (Sink, error)) Component {
	return Component{Kind: KindSink, Name: name, Spec: spec, newSink: ctor, Queue: QueueMemory}
}

// WithAccepts returns the sink component restricted to the given event kinds.
func (c Component) WithAccepts(kinds ...string) Component {
	c.Accepts = kinds
	return c
}

// WithQueue returns the sink component with a default queue mode.
func (c Component) WithQueue(mode string) Component {
	c.Queue = mode
	return c
}

// WithMaxBatch returns the sink component with a cap on events per Write.
func (c Component) WithMaxBatch(n int) Component {
	c.MaxBatch = n
	return c
}

// WithBorrowedInput returns the processor component declaring BorrowsInput.
func (c Component) WithBorrowedInput() Component {
	c.BorrowsInput = true
	return c
}

// Instance is a constructed component: exactly one of Source, Processor or Sink is set.
type Instance struct {
	Source    Source
	Processor Processor
	Sink      Sink
}

// Value returns the component value itself.
func (i Instance) Value() any {
	switch {
	case i.Source != nil:
		return i.Source
	case i.Processor != nil:
		return i.Processor
	default:
		return i.Sink
	}
}

// NewInstance parses config for the component and constructs it. Hosts and test harnesses
// call it; plugin authors do not need to.
func (c Component) NewInstance(config []byte, res Resources) (Instance, Diagnostics) {
	spec := c.Spec
	if spec == nil {
		spec = &Spec{}
	}
	conf, diags := ParseConfig(spec, config)
	if diags.HasErrors() {
		return Instance{}, diags
	}
	if res.Logger == nil {
		res.Logger = hclog.NewNullLogger()
	}
	var (
		inst Instance
		err  error
	)
	switch c.Kind {
	case KindSource:
		inst.Source, err = c.newSource(conf, res)
	case KindProcessor:
		inst.Processor, err = c.newProcessor(conf, res)
	case KindSink:
		inst.Sink, err = c.newSink(conf, res)
	default:
		err = fmt.Errorf("unknown component kind %q", c.Kind)
	}
	if err != nil {
		var d *Diagnostic
		if errors.As(err, &d) {
			return Instance{}, append(diags, d)
		}
		return Instance{}, append(diags, &Diagnostic{Severity: SeverityError,
			Summary: "Invalid configuration", Detail: err.Error()})
	}
	return inst, diags
}

// Errors a sink returns to steer the agent's retries.

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that no retry can fix (e.g. Slack's channel_is_archived): the
// agent hands the batch to the sink's fallback instead of retrying.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type retryError struct {
	err   error
	after time.Duration
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// Retry marks err as transient with a server-given delay (e.g. HTTP 429 Retry-After): the
// agent sends nothing to this sink before the delay has passed.
func Retry(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryError{err: err, after: after}
}

// RetryAfter returns the delay attached with Retry.
func RetryAfter(err error) (time.Duration, bool) {
	var r *retryError
	if errors.As(err, &r) {
		return r.after, true
	}
	return 0, false
}
