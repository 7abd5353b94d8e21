package sdk

import (
	"sync"
	"sync/atomic"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A batch a source sends is, in a pipeline, the next input of its first processor. When the
// two are instances in one plugin process, the host need not send the batch's bytes back:
// the source's server keeps a copy under an id (SourceBatch.handoff), and the host names
// the id in the ProcessRequest instead of the batch. The host still receives every batch
// and keeps what it needs for replay, and still orders every call (ticks, checkpoint
// barriers and batches reach the processor as before): only the bytes of the second
// crossing are saved.
//
// Invariant: an id names a copy of exactly the batch bytes sent with it, and is taken at
// most once. Whatever the store no longer holds (taken, evicted, a restarted process) is
// answered HANDOFF_GONE, and the host sends the bytes: a handoff can make a call cheaper,
// never different.

// HandoffGoneReason and PanicDomain (the domain) mark the answer of a plugin that does not
// hold the batch a ProcessRequest names by handoff.
const HandoffGoneReason = "HANDOFF_GONE"

// Bounds of the batches a process keeps for handoff. A batch waits in the host's pipeline
// queue (up to its in-flight bound, 8 MiB by default) before the processor's call names it,
// so the store holds about as much; a batch no processor takes (a source that feeds only
// sinks) is evicted, oldest first.
const (
	handoffMaxBatches = 16
	handoffMaxBytes   = 10 << 20
)

// handoffStore holds the batches of one plugin process's sources for its processors. It
// keeps no copy: a kept batch is a reference to the buffer the source's message was encoded
// in (a sentBuffer), which goes back to its pool when gRPC has written it and the store and
// the processor are done with it.
type handoffStore struct {
	mu   sync.Mutex
	last uint64
	held []handoffBatch // oldest first
	size int            // bytes in held
}

type handoffBatch struct {
	id  uint64
	raw []byte // in buf
	buf *sentBuffer
}

func newHandoffStore() *handoffStore { return &handoffStore{} }

// newID returns the id the next batch is kept under.
func (h *handoffStore) newID() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last++
	return h.last
}

// keep stores raw, which lies in buf, under id, taking a reference on buf, and evicts the
// oldest batches past the bounds.
func (h *handoffStore) keep(id uint64, raw []byte, buf *sentBuffer) {
	buf.retain()
	h.mu.Lock()
	h.held = append(h.held, handoffBatch{id: id, raw: raw, buf: buf})
	h.size += len(raw)
	var evicted []*sentBuffer
	for len(h.held) > handoffMaxBatches || h.size > handoffMaxBytes && len(h.held) > 1 {
		h.size -= len(h.held[0].raw)
		evicted = append(evicted, h.held[0].buf)
		h.held[0] = handoffBatch{}
		h.held = h.held[1:]
	}
	h.mu.Unlock()
	for _, b := range evicted {
		b.release()
	}
}

// take removes the batch kept under id and returns it with the reference on its buffer,
// which the caller releases when nothing refers to the bytes any more (or never, leaving
// them to the garbage collector).
func (h *handoffStore) take(id uint64) ([]byte, *sentBuffer, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, b := range h.held {
		if b.id == id {
			h.held = append(h.held[:i], h.held[i+1:]...)
			h.size -= len(b.raw)
			return b.raw, b.buf, true
		}
	}
	return nil, nil, false
}

// sentBuffer is a buffer of a memPool shared by gRPC (until it has sent the message) and a
// handoffStore (until a processor is done with the batch in it): the last holder to let go
// gives it back to the pool. It implements mem.BufferPool for gRPC's release.
type sentBuffer struct {
	refs atomic.Int32
	buf  *[]byte
	home *memPool
}

// newSentBuffer wraps buf, held once (by the caller), to go back to home.
func newSentBuffer(buf *[]byte, home *memPool) *sentBuffer {
	b := &sentBuffer{buf: buf, home: home}
	b.refs.Store(1)
	return b
}

func (b *sentBuffer) retain() { b.refs.Add(1) }

func (b *sentBuffer) release() {
	if b.refs.Add(-1) == 0 {
		b.home.Put(b.buf)
	}
}

// Get is never called: gRPC only puts a sent message's buffer back.
func (b *sentBuffer) Get(n int) *[]byte { return b.home.Get(n) }

// Put is gRPC letting go of the message's buffer.
func (b *sentBuffer) Put(*[]byte) { b.release() }

// handoffGone is the answer to a ProcessRequest naming a batch the process does not hold.
func handoffGone() error {
	st := status.New(codes.FailedPrecondition, "the batch named by handoff is no longer held; send it")
	if withDetail, err := st.WithDetails(&errdetails.ErrorInfo{Reason: HandoffGoneReason, Domain: PanicDomain}); err == nil {
		st = withDetail
	}
	return st.Err()
}

// IsHandoffGone reports whether err is a plugin's answer that it does not hold the batch a
// ProcessRequest named by handoff: the host then sends the batch.
func IsHandoffGone(err error) bool {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.FailedPrecondition {
		return false
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.Reason == HandoffGoneReason && info.Domain == PanicDomain {
			return true
		}
	}
	return false
}
