package host

import (
	"sync"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/protocol/tdav1"
)

// Batch is a batch of events on its way through a host. It holds the protocol's wire form,
// the decoded events, or both, and makes each form once, when first asked for: a host that
// only routes batches from a source to a processor or a sink never decodes a line.
//
// A Batch may be shared by several goroutines; treat its events as read-only.
type Batch struct {
	mu      sync.Mutex
	wire    *tdav1.Batch
	events  []sdk.Event
	decoded bool
}

// NewBatch wraps decoded events.
func NewBatch(events []sdk.Event) *Batch {
	return &Batch{events: events, decoded: true}
}

// WireBatch wraps a batch in wire form.
func WireBatch(w *tdav1.Batch) *Batch {
	if w == nil {
		w = &tdav1.Batch{}
	}
	return &Batch{wire: w}
}

// Len returns the number of events.
func (b *Batch) Len() int {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.decoded {
		return len(b.events)
	}
	return len(b.wire.LineLen)
}

// Events returns the decoded events (decoding them on first use).
func (b *Batch) Events() []sdk.Event {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.decoded {
		b.events = sdk.DecodeBatch(b.wire)
		b.decoded = true
	}
	return b.events
}

// Wire returns the wire form (encoding it on first use).
func (b *Batch) Wire() *tdav1.Batch {
	if b == nil {
		return &tdav1.Batch{}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.wire == nil {
		b.wire = sdk.EncodeBatch(b.events)
	}
	return b.wire
}

// Share returns a Batch for another consumer: the same wire form (immutable), or a deep copy
// of decoded events, so consumers that change events in place do not see each other's edits.
func (b *Batch) Share() *Batch {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.wire != nil {
		return &Batch{wire: b.wire}
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
		e := &b.events[i]
		n += len(e.Line) + len(e.Origin) + 64
		for k, v := range e.Fields {
			n += len(k) + len(v)
		}
		if e.Alert != nil {
			n += 256 + len(e.Alert.Explanation)
			for _, l := range e.Alert.Excerpt {
				n += len(l)
			}
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
