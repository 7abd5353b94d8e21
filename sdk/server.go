package sdk

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/tda-dev/tda/sdk/internal/batchwire"
	"github.com/tda-dev/tda/sdk/protocol/tdav1"
)

// server holds one component instance of a plugin process (see instanceMux for how a process
// serves several).
type server struct {
	plugin     PluginInfo
	logger     hclog.Logger
	components []Component

	mu   sync.Mutex // serialises Configure, Process, Write, Snapshot, Restore and Close
	inst Instance
	res  Resources
	// comp is the component inst was built from; started says its Start has run (always,
	// except for an instance configured for actions only, which starts when an action that
	// needs it runs).
	comp    *Component
	started bool
	// running counts the actions in flight: close waits for them, so that an instance is
	// closed only once its actions returned (a cancelled one has cleaned up).
	running inflight
	// borrows is set for a processor that keeps nothing of its input (BorrowsInput).
	borrows bool
}

func newServer(info PluginInfo, logger hclog.Logger, components []Component) *server {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &server{plugin: info, logger: logger, components: components}
}

// infoServer answers Describe with the binary's description, whatever the instance.
type infoServer struct {
	tdav1.UnimplementedInfoServer
	desc *Description
}

func (i *infoServer) Describe(context.Context, *tdav1.DescribeRequest) (*tdav1.DescribeResponse, error) {
	b, err := json.Marshal(i.desc)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "describe: %v", err)
	}
	return &tdav1.DescribeResponse{Json: b}, nil
}

func (s *server) configure(ctx context.Context, kind ComponentKind, req *tdav1.ConfigureRequest) (*tdav1.ConfigureResponse, error) {
	var comp *Component
	for i := range s.components {
		if s.components[i].Kind == kind && s.components[i].Name == req.Component {
			comp = &s.components[i]
		}
	}
	if comp == nil {
		return nil, status.Errorf(codes.NotFound, "plugin %s has no %s %q", s.plugin.Name, kind, req.Component)
	}
	res := Resources{Logger: s.logger.Named(req.Instance), Instance: req.Instance, DataDir: req.DataDir}
	inst, diags := comp.NewInstance(req.Config, res)
	resp := &tdav1.ConfigureResponse{Diagnostics: EncodeDiagnostics(diags)}
	if diags.HasErrors() || req.ValidateOnly {
		return resp, nil
	}
	if st, ok := inst.Value().(Starter); ok && !req.ActionsOnly {
		if err := st.Start(ctx); err != nil {
			return nil, status.Errorf(codes.FailedPrecondition, "start %s: %v", req.Instance, err)
		}
	}
	_, resp.Stateful = inst.Value().(Stateful)
	if kind == KindSource {
		_, resp.WatchesCommits = inst.Value().(CommitWatcher)
	}
	s.mu.Lock()
	old := s.inst
	s.inst, s.res, s.comp, s.started = inst, res, comp, !req.ActionsOnly
	s.borrows = kind == KindProcessor && comp.BorrowsInput
	s.mu.Unlock()
	if c, ok := old.Value().(Closer); ok && old.Value() != nil {
		if err := c.Close(ctx); err != nil {
			s.logger.Warn("closing the previous instance failed", "error", err)
		}
	}
	return resp, nil
}

func (s *server) close(ctx context.Context) (*tdav1.CloseResponse, error) {
	if err := s.running.wait(ctx); err != nil {
		return nil, status.Errorf(codes.DeadlineExceeded, "close: an action is still running: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.inst.Value().(Closer); ok && s.inst.Value() != nil {
		if err := c.Close(ctx); err != nil {
			return nil, status.Errorf(codes.Internal, "close: %v", err)
		}
	}
	s.inst, s.comp, s.started = Instance{}, nil, false
	return &tdav1.CloseResponse{}, nil
}

// guard turns a panic inside a component into an error, so one bad batch does not take the
// whole plugin down.
func (s *server) guard(what string, err *error) {
	if r := recover(); r != nil {
		s.logger.Error("component panicked", "during", what, "panic", r, "stack", string(debug.Stack()))
		*err = PanicStatus(what, r)
	}
}

type sourceServer struct {
	tdav1.UnimplementedSourceServer
	s *server
	// encoded: the server's codec sends encodedMessage (ServerOptions); batches are then
	// encoded into memory from bufs, which gRPC hands back once it has written them.
	encoded bool
	bufs    memPool
	// handoffs keeps the batches sent, when the host asks (ReadStart.handoff); nil in a
	// server that cannot (not encoded, or outside an instance mux).
	handoffs *handoffStore
}

func (ss *sourceServer) Configure(ctx context.Context, req *tdav1.ConfigureRequest) (*tdav1.ConfigureResponse, error) {
	return ss.s.configure(ctx, KindSource, req)
}

func (ss *sourceServer) Close(ctx context.Context, _ *tdav1.CloseRequest) (*tdav1.CloseResponse, error) {
	return ss.s.close(ctx)
}

func (ss *sourceServer) Read(stream tdav1.Source_ReadServer) (err error) {
	ss.s.mu.Lock()
	src := ss.s.inst.Source
	instance := ss.s.res.Instance
	ss.s.mu.Unlock()
	if src == nil {
		return status.Error(codes.FailedPrecondition, "source is not configured")
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	if start == nil {
		return status.Error(codes.InvalidArgument, "the first message of Read must be a start")
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	// Send serialises the message before it returns: one message and its buffers carry every
	// batch (CreditOutput serialises the calls).
	var enc batchEncoder // batches with fields or alerts, and unencoded servers
	var wire sourceWireEncoder
	var sb tdav1.SourceBatch
	msg := &tdav1.SourceOut{Msg: &tdav1.SourceOut_Batch{Batch: &sb}}
	handoffs := ss.handoffs
	if !start.Handoff || !ss.encoded {
		handoffs = nil
	}
	out := NewCreditOutput(int(start.Credits), checkpointMap(DecodeCheckpoints(start.Checkpoints)),
		func(events []Event, cps []Checkpoint) error {
			if !ss.encoded {
				sb.Batch, sb.Checkpoints, sb.Handoff = enc.encode(events), EncodeCheckpoints(cps), 0
				return stream.Send(msg)
			}
			var handoff uint64
			if handoffs != nil && len(events) > 0 {
				handoff = handoffs.newID()
			}
			wcps := EncodeCheckpoints(cps)
			var buf *[]byte
			b, _, _, ok := wire.encode(events, wcps, handoff, func(n int) []byte {
				buf = ss.bufs.Get(n)
				return *buf
			})
			if !ok {
				if buf != nil {
					ss.bufs.Put(buf)
				}
				sb.Batch, sb.Checkpoints, sb.Handoff = enc.encode(events), wcps, handoff
				buf = ss.bufs.Get(proto.Size(msg))
				var err error
				if b, err = (proto.MarshalOptions{UseCachedSize: true}).MarshalAppend((*buf)[:0], msg); err != nil {
					return err
				}
			}
			*buf = b
			if handoff == 0 {
				return stream.SendMsg(&encodedMessage{data: mem.BufferSlice{mem.NewBuffer(buf, &ss.bufs)}})
			}
			// The store keeps the batch's bytes as they go out, in the message's own buffer.
			sent := newSentBuffer(buf, &ss.bufs)
			err := keepSent(handoffs, handoff, b, sent)
			if err == nil {
				err = stream.SendMsg(&encodedMessage{data: mem.BufferSlice{mem.NewBuffer(buf, sent)}})
			} else {
				sent.release()
			}
			return err
		},
		func(st Status) error {
			return stream.Send(&tdav1.SourceOut{Msg: &tdav1.SourceOut_Status{Status: &tdav1.Status{
				Healthy: st.Healthy, Reason: validUTF8(st.Reason)}}})
		})
	out.Stamp(instance)
	out.SendCopies()
	watcher, _ := src.(CommitWatcher)
	go func() {
		defer cancel()
		for {
			in, err := stream.Recv()
			if err != nil {
				return
			}
			if c := in.GetCredits(); c > 0 {
				out.Grant(int(c))
			}
			if c := in.GetCommitted(); c != nil && watcher != nil {
				notifyCommitted(ctx, ss.s, watcher, DecodeCheckpoints(c.Checkpoints))
			}
		}
	}()
	defer ss.s.guard("source", &err)
	if runErr := src.Run(ctx, out); runErr != nil && ctx.Err() == nil {
		return status.Errorf(codes.Unknown, "%v", runErr)
	}
	return nil
}

// notifyCommitted hands committed checkpoints to a CommitWatcher; a panic in it is logged and
// the notification dropped (a later commit covers it), the stream goes on.
func notifyCommitted(ctx context.Context, s *server, w CommitWatcher, cps []Checkpoint) {
	defer func() {
		if r := recover(); r != nil {
			s.logger.Error("component panicked", "during", "committed", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	w.Committed(ctx, CommittedMap(cps))
}

// CommittedMap turns committed checkpoint entries into what CommitWatcher.Committed takes:
// a deleted key maps to nil.
func CommittedMap(cps []Checkpoint) map[string][]byte {
	m := make(map[string][]byte, len(cps))
	for _, c := range cps {
		if c.Delete {
			m[c.Key] = nil
		} else {
			m[c.Key] = c.Value
		}
	}
	return m
}

// keepSent keeps under id the batch embedded in the encoded SourceOut msg (SourceOut.batch,
// then its SourceBatch.batch), which lies in buf.
func keepSent(h *handoffStore, id uint64, msg []byte, buf *sentBuffer) error {
	sb, _, err := batchwire.Embedded(msg, 1)
	if err != nil {
		return err
	}
	raw, _, err := batchwire.Embedded(sb, 1)
	if err != nil {
		return err
	}
	h.keep(id, raw, buf)
	return nil
}

func checkpointMap(cps []Checkpoint) map[string][]byte {
	m := make(map[string][]byte, len(cps))
	for _, c := range cps {
		if !c.Delete {
			m[c.Key] = c.Value
		}
	}
	return m
}

// CreditOutput implements Output with credit-based flow control over any transport. The SDK's
// gRPC server and in-process hosts use it. It fills in each event's Source (from the
// instance's address) and Kind ("log") when the source left them empty.
type CreditOutput struct {
	source      string
	copies      bool
	mu          sync.Mutex
	credits     int
	wake        chan struct{}
	sendMu      sync.Mutex
	checkpoints map[string][]byte
	send        func([]Event, []Checkpoint) error
	status      func(Status) error
	// recycle, when set, sends a batch whose memory the receiver hands back (SetRecycle).
	recycle func(events []Event, arena []byte, done func(), checkpoints []Checkpoint) error
}

// SetRecycle makes the output a Recycler whose EmitRecycled calls fn; fn calls done when
// the receiver is done with the batch's memory (see Recycler). Call it before the source
// runs.
func (o *CreditOutput) SetRecycle(fn func(events []Event, arena []byte, done func(), checkpoints []Checkpoint) error) {
	o.recycle = fn
}

// Recycles reports whether EmitRecycled hands memory back (see Recycles).
func (o *CreditOutput) Recycles() bool { return o.recycle != nil }

// EmitRecycled implements Recycler. Without SetRecycle it is Emit, and done is not called.
func (o *CreditOutput) EmitRecycled(ctx context.Context, events []Event, arena []byte, done func(), checkpoints ...Checkpoint) error {
	if o.recycle == nil {
		return o.Emit(ctx, events, checkpoints...)
	}
	if err := o.acquire(ctx, events); err != nil {
		return err
	}
	o.sendMu.Lock()
	defer o.sendMu.Unlock()
	if err := o.recycle(events, arena, done, checkpoints); err != nil {
		return fmt.Errorf("emit: %w", err)
	}
	return nil
}

// NewCreditOutput returns an Output that calls send for every batch once it holds a credit,
// and status for every SetStatus.
func NewCreditOutput(credits int, checkpoints map[string][]byte, send func([]Event, []Checkpoint) error, status func(Status) error) *CreditOutput {
	return &CreditOutput{credits: credits, wake: make(chan struct{}, 1), checkpoints: checkpoints, send: send, status: status}
}

// Stamp sets the instance address ("source.file.hosts") whose short form ("file.hosts")
// becomes the Source of events that have none.
func (o *CreditOutput) Stamp(instance string) {
	o.source = strings.TrimPrefix(instance, string(KindSource)+".")
}

// SendCopies declares that send is done with a batch's memory when it returns (it encodes
// the batch), so sources may reuse it: see EmitCopier.
func (o *CreditOutput) SendCopies() { o.copies = true }

// EmitCopies implements EmitCopier.
func (o *CreditOutput) EmitCopies() bool { return o.copies }

// Grant adds credits.
func (o *CreditOutput) Grant(n int) {
	o.mu.Lock()
	o.credits += n
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Checkpoints implements Output.
func (o *CreditOutput) Checkpoints() map[string][]byte { return o.checkpoints }

// Emit implements Output.
func (o *CreditOutput) Emit(ctx context.Context, events []Event, checkpoints ...Checkpoint) error {
	if err := o.acquire(ctx, events); err != nil {
		return err
	}
	o.sendMu.Lock()
	defer o.sendMu.Unlock()
	if err := o.send(events, checkpoints); err != nil {
		return fmt.Errorf("emit: %w", err)
	}
	return nil
}

// acquire waits for a credit and takes it, then fills in the events' Source and Kind.
func (o *CreditOutput) acquire(ctx context.Context, events []Event) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		o.mu.Lock()
		if o.credits > 0 {
			o.credits--
			o.mu.Unlock()
			break
		}
		o.mu.Unlock()
		select {
		case <-o.wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// Another waiter may be able to proceed too.
	select {
	case o.wake <- struct{}{}:
	default:
	}
	for i := range events {
		if events[i].Source == "" {
			events[i].Source = o.source
		}
		if events[i].Kind == "" {
			events[i].Kind = KindLog
		}
	}
	return nil
}

// SetStatus implements Output.
func (o *CreditOutput) SetStatus(s Status) {
	o.sendMu.Lock()
	defer o.sendMu.Unlock()
	_ = o.status(s)
}

type processorServer struct {
	tdav1.UnimplementedProcessorServer
	s *server

	// Memory reused from one Process to the next (under s.mu, except the pools).
	dec                 batchDecoder
	enc                 batchEncoder
	events              []Event
	requests, responses memPool
	// handoffs holds the batches this process's sources sent (nil outside an instance mux).
	handoffs *handoffStore
}

func (ps *processorServer) Configure(ctx context.Context, req *tdav1.ConfigureRequest) (*tdav1.ConfigureResponse, error) {
	return ps.s.configure(ctx, KindProcessor, req)
}

func (ps *processorServer) Close(ctx context.Context, _ *tdav1.CloseRequest) (*tdav1.CloseResponse, error) {
	return ps.s.close(ctx)
}

func (ps *processorServer) processor() (Processor, error) {
	if ps.s.inst.Processor == nil {
		return nil, status.Error(codes.FailedPrecondition, "processor is not configured")
	}
	return ps.s.inst.Processor, nil
}

// watermark is a ProcessRequest's watermark: the wall clock in Unix nanoseconds (0 in
// replays) and whether the input has ended.
func watermark(ns int64, final bool) Watermark {
	wm := Watermark{Final: final}
	if ns != 0 {
		wm.Time = time.Unix(0, ns).UTC()
	}
	return wm
}

func (ps *processorServer) Process(ctx context.Context, req *tdav1.ProcessRequest) (resp *tdav1.ProcessResponse, err error) {
	ps.s.mu.Lock()
	defer ps.s.mu.Unlock()
	p, err := ps.processor()
	if err != nil {
		return nil, err
	}
	defer ps.s.guard("process", &err)
	out, perr := p.Process(ctx, DecodeBatch(req.Batch), watermark(req.WatermarkNs, req.Final))
	if perr != nil {
		return nil, status.Errorf(codes.Unknown, "%v", perr)
	}
	return &tdav1.ProcessResponse{Batch: EncodeBatch(out)}, nil
}

func (ps *processorServer) Snapshot(context.Context, *tdav1.SnapshotRequest) (resp *tdav1.SnapshotResponse, err error) {
	ps.s.mu.Lock()
	defer ps.s.mu.Unlock()
	p, err := ps.processor()
	if err != nil {
		return nil, err
	}
	defer ps.s.guard("snapshot", &err)
	st, ok := p.(Stateful)
	if !ok {
		return &tdav1.SnapshotResponse{}, nil
	}
	b, serr := st.Snapshot()
	if serr != nil {
		return nil, status.Errorf(codes.Unknown, "snapshot: %v", serr)
	}
	return &tdav1.SnapshotResponse{State: b}, nil
}

func (ps *processorServer) Restore(_ context.Context, req *tdav1.RestoreRequest) (resp *tdav1.RestoreResponse, err error) {
	ps.s.mu.Lock()
	defer ps.s.mu.Unlock()
	p, err := ps.processor()
	if err != nil {
		return nil, err
	}
	defer ps.s.guard("restore", &err)
	if st, ok := p.(Stateful); ok && len(req.State) > 0 {
		if rerr := st.Restore(req.State); rerr != nil {
			return nil, status.Errorf(codes.InvalidArgument, "restore: %v", rerr)
		}
	}
	return &tdav1.RestoreResponse{}, nil
}

type sinkServer struct {
	tdav1.UnimplementedSinkServer
	s *server
}

func (ks *sinkServer) Configure(ctx context.Context, req *tdav1.ConfigureRequest) (*tdav1.ConfigureResponse, error) {
	return ks.s.configure(ctx, KindSink, req)
}

func (ks *sinkServer) Close(ctx context.Context, _ *tdav1.CloseRequest) (*tdav1.CloseResponse, error) {
	return ks.s.close(ctx)
}

func (ks *sinkServer) Write(ctx context.Context, req *tdav1.WriteRequest) (resp *tdav1.WriteResponse, err error) {
	ks.s.mu.Lock()
	defer ks.s.mu.Unlock()
	sink := ks.s.inst.Sink
	if sink == nil {
		return nil, status.Error(codes.FailedPrecondition, "sink is not configured")
	}
	defer ks.s.guard("write", &err)
	werr := sink.Write(ctx, Batch{ID: req.DeliveryId, Events: DecodeBatch(req.Batch)})
	return WriteResponseFor(werr), nil
}

// WriteResponseFor maps a sink's error to the protocol's response.
func WriteResponseFor(err error) *tdav1.WriteResponse {
	if err == nil {
		return &tdav1.WriteResponse{Status: tdav1.WriteResponse_OK}
	}
	if IsPermanent(err) {
		return &tdav1.WriteResponse{Status: tdav1.WriteResponse_PERMANENT, Error: validUTF8(err.Error())}
	}
	resp := &tdav1.WriteResponse{Status: tdav1.WriteResponse_RETRY, Error: validUTF8(err.Error())}
	if after, ok := RetryAfter(err); ok {
		resp.RetryAfterMs = after.Milliseconds()
	}
	return resp
}

// ErrorFromWriteResponse maps the protocol's response back to a sink error.
func ErrorFromWriteResponse(resp *tdav1.WriteResponse) error {
	switch resp.Status {
	case tdav1.WriteResponse_OK:
		return nil
	case tdav1.WriteResponse_PERMANENT:
		return Permanent(fmt.Errorf("%s", resp.Error))
	default:
		err := fmt.Errorf("%s", resp.Error)
		if resp.RetryAfterMs > 0 {
			return Retry(err, time.Duration(resp.RetryAfterMs)*time.Millisecond)
		}
		return err
	}
}
