package host

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/protocol/tdav1"
)

// Conn is a gRPC connection to a plugin process.
type Conn struct {
	cc grpc.ClientConnInterface
	// bufs holds the memory of the large batches the plugin's source sends.
	bufs *bufPool
	// proc identifies the plugin process: the connections of its instances share it.
	proc *pluginProcess
	// shared: the process serves several instances (ForInstance), so its sources ask it to
	// keep their batches for its processors (see sdk.HandoffGoneReason).
	shared bool
}

// pluginProcess identifies one plugin process (one connection to it): a handoff id is
// meaningful only to the process that gave it.
type pluginProcess struct{}

// NewConn wraps a connection dispensed by go-plugin.
func NewConn(cc *grpc.ClientConn) *Conn {
	return &Conn{cc: cc, bufs: newBufPool(), proc: &pluginProcess{}}
}

// ForInstance returns the connection with every call addressed to one instance (its
// address, e.g. "sink.jsonl.audit"): the way to reach an instance in a process that serves
// several (sdk.InstanceMetadataKey). The connection and its buffers are shared.
func (c *Conn) ForInstance(instance string) *Conn {
	return &Conn{cc: instanceConn{cc: c.cc, instance: instance}, bufs: c.bufs, proc: c.proc, shared: true}
}

// instanceConn adds the instance's name to the metadata of every call.
type instanceConn struct {
	cc       grpc.ClientConnInterface
	instance string
}

func (c instanceConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	return c.cc.Invoke(metadata.AppendToOutgoingContext(ctx, sdk.InstanceMetadataKey, c.instance), method, args, reply, opts...)
}

func (c instanceConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return c.cc.NewStream(metadata.AppendToOutgoingContext(ctx, sdk.InstanceMetadataKey, c.instance), desc, method, opts...)
}

// Describe asks the plugin for its description.
func (c *Conn) Describe(ctx context.Context) (*sdk.Description, error) {
	resp, err := tdav1.NewInfoClient(c.cc).Describe(ctx, &tdav1.DescribeRequest{})
	if err != nil {
		return nil, fmt.Errorf("describe: %w", err)
	}
	var d sdk.Description
	if err := json.Unmarshal(resp.Json, &d); err != nil {
		return nil, fmt.Errorf("describe: malformed description: %w", err)
	}
	return &d, nil
}

// Source returns the plugin's source service.
func (c *Conn) Source() Source {
	src := &grpcSource{cc: c.cc, c: tdav1.NewSourceClient(c.cc), bufs: c.bufs}
	if c.shared {
		src.handoff = c.proc
	}
	return src
}

// Processor returns the plugin's processor service.
func (c *Conn) Processor() Processor {
	return &grpcProcessor{cc: c.cc, c: tdav1.NewProcessorClient(c.cc), proc: c.proc}
}

// Sink returns the plugin's sink service.
func (c *Conn) Sink() Sink { return &grpcSink{cc: c.cc, c: tdav1.NewSinkClient(c.cc)} }

func configureRequest(c Configuration) *tdav1.ConfigureRequest {
	return &tdav1.ConfigureRequest{Component: c.Component, Instance: c.Instance, Config: c.Config,
		DataDir: c.DataDir, ValidateOnly: c.ValidateOnly, ActionsOnly: c.ActionsOnly}
}

type grpcSource struct {
	cc   grpc.ClientConnInterface
	c    tdav1.SourceClient
	bufs *bufPool
	// handoff, when set, is the source's process, asked to keep the batches it sends.
	handoff *pluginProcess
}

func (s *grpcSource) Configure(ctx context.Context, c Configuration) (Configured, error) {
	resp, err := s.c.Configure(ctx, configureRequest(c))
	if err != nil {
		return Configured{}, err
	}
	return Configured{Diagnostics: sdk.DecodeDiagnostics(resp.Diagnostics), Stateful: resp.Stateful,
		WatchesCommits: resp.WatchesCommits}, nil
}

func (s *grpcSource) Close(ctx context.Context) error {
	_, err := s.c.Close(ctx, &tdav1.CloseRequest{})
	return err
}

func (s *grpcSource) Read(ctx context.Context, checkpoints map[string][]byte, credits int) (Reader, error) {
	stream, err := s.cc.NewStream(ctx, &tdav1.Source_ServiceDesc.Streams[0], tdav1.Source_Read_FullMethodName, codecOption)
	if err != nil {
		return nil, err
	}
	cps := make([]sdk.Checkpoint, 0, len(checkpoints))
	for k, v := range checkpoints {
		cps = append(cps, sdk.Checkpoint{Key: k, Value: v})
	}
	start := &tdav1.SourceIn{Msg: &tdav1.SourceIn_Start{Start: &tdav1.ReadStart{
		Checkpoints: sdk.EncodeCheckpoints(cps), Credits: uint32(credits), Handoff: s.handoff != nil}}}
	if err := stream.SendMsg(start); err != nil {
		return nil, err
	}
	return &grpcReader{stream: stream, bufs: s.bufs, proc: s.handoff}, nil
}

type grpcReader struct {
	stream  grpc.ClientStream
	bufs    *bufPool
	proc    *pluginProcess
	sendMu  sync.Mutex
	stopped bool
}

func (r *grpcReader) Recv() (Message, error) {
	out := sourceOut{bufs: r.bufs, proc: r.proc}
	if err := r.stream.RecvMsg(&out); err != nil {
		return Message{}, err
	}
	if st := out.status; st != nil {
		return Message{Status: &sdk.Status{Healthy: st.Healthy, Reason: st.Reason}}, nil
	}
	b := out.batch
	if b == nil {
		b = NewBatch(nil)
	}
	return Message{Batch: b, Checkpoints: sdk.DecodeCheckpoints(out.checkpoints)}, nil
}

func (r *grpcReader) Grant(n int) error {
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	if r.stopped {
		return nil
	}
	return r.stream.SendMsg(&tdav1.SourceIn{Msg: &tdav1.SourceIn_Credits{Credits: uint32(n)}})
}

func (r *grpcReader) Committed(cps []sdk.Checkpoint) error {
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	if r.stopped || len(cps) == 0 {
		return nil
	}
	return r.stream.SendMsg(&tdav1.SourceIn{Msg: &tdav1.SourceIn_Committed{Committed: &tdav1.Committed{
		Checkpoints: sdk.EncodeCheckpoints(cps)}}})
}

func (r *grpcReader) Stop() error {
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	if r.stopped {
		return nil
	}
	r.stopped = true
	return r.stream.CloseSend()
}

type grpcProcessor struct {
	cc   grpc.ClientConnInterface
	c    tdav1.ProcessorClient
	proc *pluginProcess
}

func (p *grpcProcessor) Configure(ctx context.Context, c Configuration) (Configured, error) {
	resp, err := p.c.Configure(ctx, configureRequest(c))
	if err != nil {
		return Configured{}, err
	}
	return Configured{Diagnostics: sdk.DecodeDiagnostics(resp.Diagnostics), Stateful: resp.Stateful}, nil
}

func (p *grpcProcessor) Process(ctx context.Context, in *Batch, wm sdk.Watermark) (*Batch, error) {
	req := &processRequest{batch: in, final: wm.Final, handoff: in.handoffIn(p.proc)}
	if !wm.Time.IsZero() {
		req.watermarkNs = wm.Time.UnixNano()
	}
	var resp processResponse
	err := p.cc.Invoke(ctx, tdav1.Processor_Process_FullMethodName, req, &resp, codecOption)
	if req.handoff != 0 && sdk.IsHandoffGone(err) {
		// The process no longer keeps the batch: send it.
		req.handoff = 0
		err = p.cc.Invoke(ctx, tdav1.Processor_Process_FullMethodName, req, &resp, codecOption)
	}
	if err != nil {
		return nil, err
	}
	return resp.batch, nil
}

func (p *grpcProcessor) Snapshot(ctx context.Context) ([]byte, error) {
	resp, err := p.c.Snapshot(ctx, &tdav1.SnapshotRequest{})
	if err != nil {
		return nil, err
	}
	return resp.State, nil
}

func (p *grpcProcessor) Restore(ctx context.Context, state []byte) error {
	_, err := p.c.Restore(ctx, &tdav1.RestoreRequest{State: state})
	return err
}

func (p *grpcProcessor) Close(ctx context.Context) error {
	_, err := p.c.Close(ctx, &tdav1.CloseRequest{})
	return err
}

type grpcSink struct {
	cc grpc.ClientConnInterface
	c  tdav1.SinkClient
}

func (s *grpcSink) Configure(ctx context.Context, c Configuration) (Configured, error) {
	resp, err := s.c.Configure(ctx, configureRequest(c))
	if err != nil {
		return Configured{}, err
	}
	return Configured{Diagnostics: sdk.DecodeDiagnostics(resp.Diagnostics), Stateful: resp.Stateful}, nil
}

func (s *grpcSink) Write(ctx context.Context, id uint64, b *Batch) error {
	var resp tdav1.WriteResponse
	err := s.cc.Invoke(ctx, tdav1.Sink_Write_FullMethodName, &writeRequest{batch: b, deliveryID: id}, &resp, codecOption)
	if err != nil {
		if sdk.IsPanic(err) {
			// The plugin recovered a panic in Write: it is alive, the batch failed.
			return err
		}
		return &TransportError{Err: err}
	}
	return sdk.ErrorFromWriteResponse(&resp)
}

func (s *grpcSink) Close(ctx context.Context) error {
	_, err := s.c.Close(ctx, &tdav1.CloseRequest{})
	return err
}

// TransportError is an RPC that failed on the way, not in the plugin: the plugin may have
// crashed. The host's supervisor decides whether to restart it.
type TransportError struct{ Err error }

func (e *TransportError) Error() string { return "plugin unreachable: " + e.Err.Error() }
func (e *TransportError) Unwrap() error { return e.Err }

// DefaultStartTimeout bounds how long a plugin may take to start.
const DefaultStartTimeout = 30 * time.Second
