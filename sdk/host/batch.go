package host

import (
	"bytes"
	"sync"
	"unsafe"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/internal/batchwire"
	"github.com/tda-dev/tda/sdk/protocol/tdav1"
)

// Batch is a batch of events on its way through a host. It holds the protocol's encoded
// form (the bytes a plugin sent), the wire form (the protocol's Go message), the decoded
// events, or several of them, and makes each form once, when first asked for: a host that
// only routes batches from a source to a processor or a sink neither decodes nor copies a
// line; it forwards the bytes it received.
//
// A Batch may be shared by several goroutines; treat its events as read-only.
//
// The encoded form of a batch a source plugin sent lies in memory the host reuses for later
// batches (see Retain and Release); the wire form and the events decoded from it have their
// own copy of the lines.
type Batch struct {
	mu      sync.Mutex
	raw     []byte
	hasRaw  bool
	info    batchwire.Info
	wire    *tdav1.Batch
	events  []sdk.Event
	decoded bool

	// buf holds raw for a pooled batch; refs counts the holders of this Batch (of a pooled
	// or a recycled one).
	buf      *pooledBuf
	refs     int
	released bool
	// recycle, for a batch a source in the host's process emitted through sdk.Recycler, hands
	// events and arena (where their Lines lie) back to the source when the last holder
	// releases the batch; nil once the batch keeps its memory for good (Keep).
	recycle func()
	arena   []byte

	// handoff names this batch in the process of the source that sent it (see
	// sdk.HandoffGoneReason). Only the Batch the source's reader returned carries it: shares
	// and copies go to other consumers, who receive the bytes.
	handoff handoffRef
}

// handoffRef is the id under which a plugin process keeps a batch its source sent.
type handoffRef struct {
	proc *pluginProcess
	id   uint64
}

// handoffIn returns the id under which proc keeps this batch, or 0 when proc does not (it is
// another process, or the batch came from no source of it).
func (b *Batch) handoffIn(proc *pluginProcess) uint64 {
	if b == nil || proc == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.handoff.proc != proc {
		return 0
	}
	return b.handoff.id
}

// NewBatch wraps decoded events.
func NewBatch(events []sdk.Event) *Batch {
	return &Batch{events: events, decoded: true}
}

// NewRecycledBatch wraps events that a source running in the host's process emitted through
// sdk.Recycler, their Lines lying in arena: the batch has one holder, and when the last
// holder releases it (Retain, Release), done hands the memory back to the source. Until
// then, events and arena are the batch's.
func NewRecycledBatch(events []sdk.Event, arena []byte, done func()) *Batch {
	return &Batch{events: events, decoded: true, arena: arena, recycle: done, refs: 1}
}

// Keep makes a recycled batch's memory its own for good: it is not handed back to the
// source, so the batch may go to holders that do not release it (a sink's queue, the output
// of a processor that passed the input on) or stay with a call the host abandoned. Other
// batches are unchanged. It returns b.
func (b *Batch) Keep() *Batch {
	if b == nil {
		return b
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.recycle != nil {
		b.checkLocked()
		b.recycle, b.arena = nil, nil
	}
	return b
}

// Recycled reports whether the batch's memory goes back to its source when released.
func (b *Batch) Recycled() bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.recycle != nil
}

// sharesMemoryWith reports whether events (a processor's output) lie in this recycled
// batch's memory: the events slice, or a Line in the arena.
func (b *Batch) sharesMemoryWith(events []sdk.Event) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.recycle == nil || len(events) == 0 {
		return false
	}
	if within(unsafe.Pointer(unsafe.SliceData(events)), unsafe.SliceData(b.events), cap(b.events), unsafe.Sizeof(sdk.Event{})) {
		return true
	}
	if cap(b.arena) == 0 {
		return false
	}
	base := unsafe.SliceData(b.arena)
	for i := range events {
		if l := events[i].Line; cap(l) > 0 && within(unsafe.Pointer(unsafe.SliceData(l)), base, cap(b.arena), 1) {
			return true
		}
	}
	return false
}

// within reports whether p points into the n elements of size size from base.
func within[T any](p unsafe.Pointer, base *T, n int, size uintptr) bool {
	if base == nil || n == 0 {
		return false
	}
	start := uintptr(unsafe.Pointer(base))
	return uintptr(p) >= start && uintptr(p) < start+uintptr(n)*size
}

// WireBatch wraps a batch in wire form.
func WireBatch(w *tdav1.Batch) *Batch {
	if w == nil {
		w = &tdav1.Batch{}
	}
	return &Batch{wire: w}
}

// RawBatch wraps an encoded tda.plugin.v1.Batch message after checking it as a protobuf
// parser would. The batch keeps raw, which must not change afterwards.
func RawBatch(raw []byte) (*Batch, error) {
	info, err := batchwire.Scan(raw)
	if err != nil {
		return nil, err
	}
	return &Batch{raw: raw, hasRaw: true, info: info}, nil
}

// pooledBatch is RawBatch for raw lying in pb, whose reference the batch takes over.
func pooledBatch(raw []byte, pb *pooledBuf) (*Batch, error) {
	b, err := RawBatch(raw)
	if err != nil {
		return nil, err
	}
	b.buf, b.refs = pb, 1
	return b, nil
}

// Retain adds a holder to the batch: a holder that keeps a batch past the call that handed
// it over (a queue, a replay buffer) retains it and releases it when done. It returns b.
func (b *Batch) Retain() *Batch {
	if b == nil {
		return b
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf != nil || b.recycle != nil {
		b.checkLocked()
		b.refs++
	}
	return b
}

// Release drops a holder of the batch. When the last holder of a batch a source plugin sent
// releases it, its memory goes back to the host for later batches and the batch must not be
// used any more. A batch nobody releases is left to the garbage collector; releasing other
// batches does nothing.
func (b *Batch) Release() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf == nil && b.recycle == nil {
		return
	}
	b.checkLocked()
	b.refs--
	if b.refs > 0 {
		return
	}
	b.released = true
	if b.buf != nil {
		b.raw = nil
		b.buf.release()
		return
	}
	done := b.recycle
	b.recycle, b.events, b.arena = nil, nil, nil
	done()
}

// Unpooled returns b, or for a pooled batch a batch with its own copy of the encoded form:
// for a holder that does not release what it is given.
func (b *Batch) Unpooled() *Batch {
	if b == nil {
		return b
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.recycle != nil {
		// Its memory stays with it: nothing is copied, and the source allocates anew.
		b.checkLocked()
		b.recycle, b.arena = nil, nil
		return b
	}
	if b.buf == nil {
		return b
	}
	b.checkLocked()
	return &Batch{raw: bytes.Clone(b.raw), hasRaw: true, info: b.info, wire: b.wire}
}

func (b *Batch) checkLocked() {
	if b.released {
		panic("host: batch used after its last Release")
	}
}

// Len returns the number of events.
func (b *Batch) Len() int {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.decoded:
		return len(b.events)
	case b.wire != nil:
		return len(b.wire.LineLen)
	default:
		return b.info.Events
	}
}

// Events returns the decoded events (decoding them on first use). Their lines share the
// batch's buffer.
func (b *Batch) Events() []sdk.Event {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.decoded {
		b.events = sdk.DecodeBatch(b.wireLocked())
		b.decoded = true
	}
	return b.events
}

// Wire returns the wire form (making it on first use).
func (b *Batch) Wire() *tdav1.Batch {
	if b == nil {
		return &tdav1.Batch{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.wireLocked()
}

func (b *Batch) wireLocked() *tdav1.Batch {
	if b.wire != nil {
		return b.wire
	}
	switch {
	case b.hasRaw:
		b.checkLocked()
		w, err := batchwire.Unmarshal(b.raw)
		if err != nil {
			// RawBatch checked the bytes: this cannot happen.
			w = &tdav1.Batch{}
		}
		if b.buf != nil {
			// The pooled memory is reused once the batch is released: decoded forms, which
			// may be kept longer, get their own lines.
			w.Lines = bytes.Clone(w.Lines)
		}
		b.wire = w
	default:
		b.wire = sdk.EncodeBatch(b.events)
	}
	return b.wire
}

// Raw returns the encoded form of the batch (encoding it on first use): the bytes to send
// to a plugin. The caller must not change them.
func (b *Batch) Raw() ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rawLocked()
}

func (b *Batch) rawLocked() ([]byte, error) {
	b.checkLocked()
	if !b.hasRaw {
		raw, err := proto.Marshal(b.wireLocked())
		if err != nil {
			return nil, err
		}
		b.raw, b.hasRaw = raw, true
	}
	return b.raw, nil
}

// rawBuffer returns the encoded form for gRPC to send: a pooled batch's memory stays
// referenced until gRPC has written it.
func (b *Batch) rawBuffer() (mem.Buffer, error) {
	if b == nil {
		return mem.SliceBuffer(nil), nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	raw, err := b.rawLocked()
	if err != nil {
		return nil, err
	}
	if b.buf == nil || mem.IsBelowBufferPoolingThreshold(cap(raw)) {
		return mem.SliceBuffer(raw), nil
	}
	b.buf.retain()
	return mem.NewBuffer(&raw, releaser{b.buf}), nil
}

// Share returns a Batch for another consumer: the same encoded or wire form (immutable), or
// a deep copy of decoded events, so consumers that change events in place do not see each
// other's edits.
func (b *Batch) Share() *Batch {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.hasRaw || b.wire != nil {
		b.checkLocked()
		s := &Batch{raw: b.raw, hasRaw: b.hasRaw, info: b.info, wire: b.wire}
		if b.buf != nil {
			b.buf.retain()
			s.buf, s.refs = b.buf, 1
		}
		return s
	}
	events := make([]sdk.Event, len(b.events))
	for i := range b.events {
		events[i] = b.events[i].Clone()
	}
	return NewBatch(events)
}

// KindCounts counts the events of each kind without decoding lines.
func (b *Batch) KindCounts() map[string]int {
	out := map[string]int{}
	if b == nil {
		return out
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.decoded {
		for i := range b.events {
			out[b.events[i].Kind]++
		}
		return out
	}
	if b.wire == nil {
		b.checkLocked()
		if counts, err := batchwire.KindCounts(b.raw); err == nil {
			return counts
		}
		b.wireLocked()
	}
	for _, k := range b.wire.Kind {
		if int(k) < len(b.wire.Dict) {
			out[b.wire.Dict[k]]++
		}
	}
	return out
}

// Size estimates the batch's size in bytes (for batching limits).
func (b *Batch) Size() int {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.wire == nil && b.hasRaw {
		return b.info.LineBytes + 24*b.info.Events + 64*b.info.Extras + b.info.ExtraBytes
	}
	if b.wire != nil {
		n := len(b.wire.Lines) + 24*len(b.wire.LineLen)
		for _, x := range b.wire.Extras {
			n += 64
			for k, v := range x.Fields {
				n += len(k) + len(v)
			}
			if x.Alert != nil {
				n += 256 + len(x.Alert.Explanation)
				for _, l := range x.Alert.Excerpt {
					n += len(l)
				}
			}
		}
		return n
	}
	n := 0
	for i := range b.events {
		n += EventSize(&b.events[i])
	}
	return n
}

// eventStructSize is what an event takes in a slice of events, before its line and fields.
const eventStructSize = int(unsafe.Sizeof(sdk.Event{}))

// EventSize estimates the size of one event in bytes, as Size does for a batch: its line and
// fields, and its place in a slice of events (which, for a short line, is most of it). Its
// origin is left out: the events of a batch share one origin string.
func EventSize(e *sdk.Event) int {
	n := len(e.Line) + eventStructSize
	for k, v := range e.Fields {
		n += len(k) + len(v)
	}
	if e.Alert != nil {
		n += 256 + len(e.Alert.Explanation)
		for _, l := range e.Alert.Excerpt {
			n += len(l)
		}
	}
	return n
}

// Filter returns the events whose kind keep accepts: b itself when all are kept.
func (b *Batch) Filter(keep func(kind string) bool) *Batch {
	all := true
	for kind := range b.KindCounts() {
		if !keep(kind) {
			all = false
			break
		}
	}
	if all {
		return b
	}
	var out []sdk.Event
	for _, e := range b.Events() {
		if keep(e.Kind) {
			out = append(out, e)
		}
	}
	return NewBatch(out)
}

// Concat joins batches into one, in order, in wire form (lines are copied once, nothing is
// decoded).
func Concat(batches ...*Batch) *Batch {
	switch len(batches) {
	case 0:
		return NewBatch(nil)
	case 1:
		return batches[0]
	}
	total, lines := 0, 0
	wires := make([]*tdav1.Batch, len(batches))
	for i, b := range batches {
		wires[i] = b.Wire()
		total += len(wires[i].LineLen)
		lines += len(wires[i].Lines)
	}
	out := &tdav1.Batch{Dict: []string{""}, Lines: make([]byte, 0, lines),
		LineLen: make([]uint32, 0, total), TimeDelta: make([]int64, 0, total),
		Kind: make([]uint32, 0, total), Source: make([]uint32, 0, total),
		Origin: make([]uint32, 0, total), Stream: make([]uint32, 0, total)}
	dict := map[string]uint32{"": 0}
	var prevAbs int64
	for _, w := range wires {
		n := len(w.LineLen)
		if n == 0 {
			continue
		}
		remap := make([]uint32, len(w.Dict))
		for i, s := range w.Dict {
			idx, ok := dict[s]
			if !ok {
				idx = uint32(len(out.Dict))
				dict[s] = idx
				out.Dict = append(out.Dict, s)
			}
			remap[i] = idx
		}
		col := func(dst []uint32, src []uint32) []uint32 {
			for i := 0; i < n; i++ {
				var v uint32
				if i < len(src) && int(src[i]) < len(remap) {
					v = remap[src[i]]
				}
				dst = append(dst, v)
			}
			return dst
		}
		base := uint32(len(out.LineLen))
		out.Lines = append(out.Lines, w.Lines...)
		out.LineLen = append(out.LineLen, w.LineLen...)
		var abs int64
		for i := 0; i < n; i++ {
			var d int64
			if i < len(w.TimeDelta) {
				d = w.TimeDelta[i]
			}
			abs += d
			if i == 0 {
				out.TimeDelta = append(out.TimeDelta, abs-prevAbs)
			} else {
				out.TimeDelta = append(out.TimeDelta, d)
			}
		}
		prevAbs = abs
		out.Kind = col(out.Kind, w.Kind)
		out.Source = col(out.Source, w.Source)
		out.Origin = col(out.Origin, w.Origin)
		out.Stream = col(out.Stream, w.Stream)
		for _, x := range w.Extras {
			out.Extras = append(out.Extras, &tdav1.Extra{Index: x.Index + base, Fields: x.Fields, Alert: x.Alert})
		}
	}
	return WireBatch(out)
}
