package sdk

import (
	"context"
	"slices"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tda-dev/tda/sdk/internal/batchwire"
	"github.com/tda-dev/tda/sdk/protocol/tdav1"
)

// A processor's batches are its plugin's hot path: every line of a pipeline arrives in a
// ProcessRequest. The plugin's server reads that message by hand (serverCodec) and decodes
// the batch straight into events, in memory it reuses for the next request when the
// processor keeps nothing of its input (Component.BorrowsInput), and it encodes the response
// into reused memory too. Fresh memory is what costs: the kernel faults it in page by page.
// The bytes on the wire are the protocol's protobuf encoding either way.

// serverCodec is the gRPC codec of a plugin's server. Its name is the protobuf codec's.
type serverCodec struct{ proto encoding.CodecV2 }

func (c serverCodec) Name() string { return c.proto.Name() }

func (c serverCodec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*encodedMessage); ok {
		return m.data, nil
	}
	return c.proto.Marshal(v)
}

func (c serverCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(*processRequest); ok {
		return m.unmarshal(data)
	}
	return c.proto.Unmarshal(data, v)
}

// encodedMessage is a response already encoded.
type encodedMessage struct{ data mem.BufferSlice }

// processRequest is tda.plugin.v1.ProcessRequest with its batch still encoded.
type processRequest struct {
	// pool, when set, provides the memory the message is received into (buf), which goes
	// back once the request is answered.
	pool        *memPool
	buf         *[]byte
	batch       []byte
	watermarkNs int64
	final       bool
	// handoff names the input kept by the process's handoff store instead of batch.
	handoff uint64
	// kept holds the batch taken from the handoff store, which release lets go of.
	kept *sentBuffer
}

func (r *processRequest) unmarshal(data mem.BufferSlice) error {
	n := data.Len()
	var b []byte
	if r.pool != nil {
		r.buf = r.pool.Get(n)
		b = (*r.buf)[:n]
		data.CopyTo(b)
	} else {
		b = data.Materialize()
	}
	err := batchwire.Fields(b, func(num protowire.Number, typ protowire.Type, _ []byte, v uint64) error {
		switch {
		case num == 2 && typ == protowire.VarintType:
			r.watermarkNs = int64(v)
		case num == 3 && typ == protowire.VarintType:
			r.final = v != 0
		case num == 4 && typ == protowire.VarintType:
			r.handoff = v
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.batch, _, err = batchwire.Embedded(b, 1)
	return err
}

// release gives the request's memory back.
func (r *processRequest) release() {
	if r.pool != nil && r.buf != nil {
		r.pool.Put(r.buf)
		r.buf = nil
	}
	if r.kept != nil {
		// Only a borrowing processor's input is done with once the response is encoded
		// (pool is set then); any other processor may keep its lines, and the buffer is left
		// to the garbage collector.
		if r.pool != nil {
			r.kept.release()
		}
		r.kept = nil
	}
}

// memPool is a small free list of buffers, most recently used first. It implements
// mem.BufferPool, so gRPC puts a response's buffer back once it has written it.
type memPool struct {
	mu   sync.Mutex
	free []*[]byte
}

const memPoolMax = 4

func (p *memPool) Get(n int) *[]byte {
	p.mu.Lock()
	for i := len(p.free) - 1; i >= 0; i-- {
		if b := p.free[i]; cap(*b) >= n {
			p.free = slices.Delete(p.free, i, i+1)
			p.mu.Unlock()
			*b = (*b)[:n]
			return b
		}
	}
	p.mu.Unlock()
	b := make([]byte, n, n+n/8)
	return &b
}

func (p *memPool) Put(b *[]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) == memPoolMax {
		// Drop the oldest: the free list keeps the warmest memory.
		p.free = slices.Delete(p.free, 0, 1)
	}
	p.free = append(p.free, b)
}

// processorServiceDesc is the protocol's Processor service with Process answered from the
// encoded request, and Snapshot's state sent as the processor returned it.
func processorServiceDesc() *grpc.ServiceDesc {
	desc := tdav1.Processor_ServiceDesc
	desc.Methods = slices.Clone(desc.Methods)
	for i := range desc.Methods {
		switch desc.Methods[i].MethodName {
		case "Process":
			desc.Methods[i].Handler = handleProcess
		case "Snapshot":
			desc.Methods[i].Handler = handleSnapshot
		}
	}
	return &desc
}

func handleProcess(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	ps := srv.(*processorServer)
	req := &processRequest{}
	ps.s.mu.Lock()
	if ps.s.borrows {
		req.pool = &ps.requests
	}
	ps.s.mu.Unlock()
	if err := dec(req); err != nil {
		req.release()
		return nil, err
	}
	call := func(ctx context.Context, in any) (any, error) { return ps.processEncoded(ctx, in.(*processRequest)) }
	if interceptor == nil {
		return call(ctx, req)
	}
	return interceptor(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: tdav1.Processor_Process_FullMethodName}, call)
}

// handleSnapshot answers Snapshot with the processor's state as it is: a processor tracking
// a million keys returns tens of megabytes, which the protobuf codec would copy once more.
func handleSnapshot(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	ps := srv.(*processorServer)
	req := new(tdav1.SnapshotRequest)
	if err := dec(req); err != nil {
		return nil, err
	}
	call := func(ctx context.Context, in any) (any, error) {
		resp, err := ps.Snapshot(ctx, in.(*tdav1.SnapshotRequest))
		if err != nil || len(resp.State) == 0 {
			return resp, err
		}
		// tda.plugin.v1.SnapshotResponse: field 1, the state.
		head := protowire.AppendTag(make([]byte, 0, 16), 1, protowire.BytesType)
		head = protowire.AppendVarint(head, uint64(len(resp.State)))
		return &encodedMessage{data: mem.BufferSlice{mem.SliceBuffer(head), mem.SliceBuffer(resp.State)}}, nil
	}
	if interceptor == nil {
		return call(ctx, req)
	}
	return interceptor(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: tdav1.Processor_Snapshot_FullMethodName}, call)
}

// processEncoded runs the processor on an encoded request and returns the encoded response.
func (ps *processorServer) processEncoded(ctx context.Context, req *processRequest) (resp any, err error) {
	defer req.release() // after the response is encoded: it may share the input's lines
	ps.s.mu.Lock()
	defer ps.s.mu.Unlock()
	p, err := ps.processor()
	if err != nil {
		return nil, err
	}
	defer ps.s.guard("process", &err)
	wm := watermark(req.watermarkNs, req.final)
	if req.handoff != 0 {
		var (
			raw  []byte
			kept *sentBuffer
			ok   bool
		)
		if ps.handoffs != nil {
			raw, kept, ok = ps.handoffs.take(req.handoff)
		}
		if !ok {
			return nil, handoffGone()
		}
		req.batch, req.kept = raw, kept
	}
	var reuse []Event
	if req.pool != nil {
		reuse = ps.events
	}
	events, derr := ps.dec.decode(req.batch, reuse)
	if derr != nil {
		return nil, status.Errorf(codes.InvalidArgument, "malformed batch: %v", derr)
	}
	if req.pool != nil {
		ps.events = events
	}
	out, perr := p.Process(ctx, events, wm)
	if perr != nil {
		return nil, status.Errorf(codes.Unknown, "%v", perr)
	}
	msg := &tdav1.ProcessResponse{Batch: ps.enc.encode(out)}
	buf := ps.responses.Get(proto.Size(msg))
	b, merr := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend((*buf)[:0], msg)
	if merr != nil {
		return nil, status.Errorf(codes.Internal, "encode the output: %v", merr)
	}
	*buf = b
	return &encodedMessage{data: mem.BufferSlice{mem.NewBuffer(buf, &ps.responses)}}, nil
}
