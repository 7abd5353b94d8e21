package host

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tda-dev/tda/sdk/internal/batchwire"
	"github.com/tda-dev/tda/sdk/protocol/tdav1"
)

// The host moves batches between plugins in their encoded form: the messages that carry a
// batch (SourceOut, ProcessRequest, ProcessResponse, WriteRequest) are read and written by
// hand around the batch's bytes, which are kept as received and sent on as they are. Every
// other message goes through the protobuf codec. The bytes on the wire are the protocol's
// protobuf encoding either way, so plugins see no difference.

// rawCodec is a gRPC codec for the host's calls to plugins. Its name is the protobuf
// codec's, so plugins decode what it sends with their default codec.
type rawCodec struct{ proto encoding.CodecV2 }

func (c rawCodec) Name() string { return c.proto.Name() }

func (c rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(rawMarshaler); ok {
		return m.marshalRaw()
	}
	return c.proto.Marshal(v)
}

func (c rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	switch m := v.(type) {
	case pooledUnmarshaler:
		// The message keeps parts of the buffer: it gets a buffer of its own, from memory
		// used before when it is large.
		n := data.Len()
		if p := m.pool(); p != nil && n >= pooledMin {
			pb := p.get(n)
			data.CopyTo(pb.b)
			return m.unmarshalPooled(pb)
		}
		return m.unmarshalRaw(data.Materialize())
	case rawUnmarshaler:
		return m.unmarshalRaw(data.Materialize())
	}
	return c.proto.Unmarshal(data, v)
}

type rawMarshaler interface {
	marshalRaw() (mem.BufferSlice, error)
}

type rawUnmarshaler interface {
	unmarshalRaw(b []byte) error
}

// pooledUnmarshaler is a message that can keep a large received message in pooled memory.
type pooledUnmarshaler interface {
	rawUnmarshaler
	pool() *bufPool
	// unmarshalPooled takes over pb's reference.
	unmarshalPooled(pb *pooledBuf) error
}

// codecOption makes a call use the raw codec.
var codecOption = grpc.ForceCodecV2(rawCodec{proto: encoding.GetCodecV2("proto")})

// withBatch encodes a message made of an embedded batch (field 1) and the fields in tail,
// which are already encoded: the batch's bytes are sent as they are.
func withBatch(b *Batch, tail []byte) (mem.BufferSlice, error) {
	raw, err := b.rawBuffer()
	if err != nil {
		return nil, fmt.Errorf("encode batch: %w", err)
	}
	head := protowire.AppendTag(make([]byte, 0, 16), 1, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(raw.Len()))
	out := mem.BufferSlice{mem.SliceBuffer(head)}
	if raw.Len() > 0 {
		out = append(out, raw)
	} else {
		raw.Free()
	}
	if len(tail) > 0 {
		out = append(out, mem.SliceBuffer(tail))
	}
	return out, nil
}

// batchField returns the batch embedded as field 1 of an encoded message: an empty batch
// when the field is absent.
func batchField(b []byte) (*Batch, error) {
	payload, _, err := batchwire.Embedded(b, 1)
	if err != nil {
		return nil, err
	}
	return RawBatch(payload)
}

// processRequest is tda.plugin.v1.ProcessRequest.
type processRequest struct {
	batch       *Batch
	watermarkNs int64
	final       bool
	// handoff, when not 0, is sent instead of the batch (see Batch.handoffIn).
	handoff uint64
}

func (r *processRequest) marshalRaw() (mem.BufferSlice, error) {
	var tail []byte
	if r.handoff != 0 {
		tail = protowire.AppendTag(tail, 4, protowire.VarintType)
		tail = protowire.AppendVarint(tail, r.handoff)
	}
	if r.watermarkNs != 0 {
		tail = protowire.AppendTag(tail, 2, protowire.VarintType)
		tail = protowire.AppendVarint(tail, uint64(r.watermarkNs))
	}
	if r.final {
		tail = protowire.AppendTag(tail, 3, protowire.VarintType)
		tail = protowire.AppendVarint(tail, 1)
	}
	if r.handoff != 0 {
		return mem.BufferSlice{mem.SliceBuffer(tail)}, nil
	}
	return withBatch(r.batch, tail)
}

// processResponse is tda.plugin.v1.ProcessResponse.
type processResponse struct {
	batch *Batch
}

func (r *processResponse) unmarshalRaw(b []byte) (err error) {
	r.batch, err = batchField(b)
	return err
}

// writeRequest is tda.plugin.v1.WriteRequest.
type writeRequest struct {
	batch      *Batch
	deliveryID uint64
}

func (r *writeRequest) marshalRaw() (mem.BufferSlice, error) {
	var tail []byte
	if r.deliveryID != 0 {
		tail = protowire.AppendTag(tail, 2, protowire.VarintType)
		tail = protowire.AppendVarint(tail, r.deliveryID)
	}
	return withBatch(r.batch, tail)
}

// sourceOut is tda.plugin.v1.SourceOut: a batch with its checkpoints, or a status. A large
// message is received into memory from bufs.
type sourceOut struct {
	bufs *bufPool
	// proc is the source's process when it was asked to keep batches for handoff.
	proc        *pluginProcess
	batch       *Batch
	checkpoints []*tdav1.Checkpoint
	status      *tdav1.Status
}

func (r *sourceOut) pool() *bufPool { return r.bufs }

func (r *sourceOut) unmarshalRaw(b []byte) error { return r.unmarshal(b, nil) }

func (r *sourceOut) unmarshalPooled(pb *pooledBuf) error { return r.unmarshal(pb.b, pb) }

// unmarshal decodes b. When b lies in pb, the batch takes over pb's reference if its bytes
// are a part of b; otherwise the memory goes back to the pool.
func (r *sourceOut) unmarshal(b []byte, pb *pooledBuf) (err error) {
	*r = sourceOut{bufs: r.bufs, proc: r.proc}
	defer func() {
		if pb != nil && (r.batch == nil || r.batch.buf != pb) {
			pb.release()
		}
	}()
	// msg is a oneof: the last of batch (1) and status (2) wins, and repeated occurrences of
	// the same one merge.
	var last protowire.Number
	if err := batchwire.Fields(b, func(num protowire.Number, typ protowire.Type, _ []byte, _ uint64) error {
		if (num == 1 || num == 2) && typ == protowire.BytesType {
			last = num
		}
		return nil
	}); err != nil {
		return err
	}
	switch last {
	case 1:
		sb, sbShared, err := batchwire.Embedded(b, 1)
		if err != nil {
			return err
		}
		raw, rawShared, err := batchwire.Embedded(sb, 1)
		if err != nil {
			return err
		}
		var handoff uint64
		if err := batchwire.Fields(sb, func(num protowire.Number, typ protowire.Type, payload []byte, v uint64) error {
			if num == 3 && typ == protowire.VarintType {
				handoff = v
			}
			if num != 2 || typ != protowire.BytesType {
				return nil
			}
			c := &tdav1.Checkpoint{}
			if err := proto.Unmarshal(payload, c); err != nil {
				return fmt.Errorf("checkpoint: %w", err)
			}
			r.checkpoints = append(r.checkpoints, c)
			return nil
		}); err != nil {
			return err
		}
		if pb != nil && sbShared && rawShared && len(raw) > 0 {
			r.batch, err = pooledBatch(raw, pb)
		} else {
			r.batch, err = RawBatch(raw)
		}
		if err == nil && handoff != 0 && r.proc != nil {
			r.batch.handoff = handoffRef{proc: r.proc, id: handoff}
		}
		return err
	case 2:
		st, _, err := batchwire.Embedded(b, 2)
		if err != nil {
			return err
		}
		r.status = &tdav1.Status{}
		return proto.Unmarshal(st, r.status)
	}
	return nil
}
