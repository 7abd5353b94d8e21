package sdk

import (
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tda-dev/tda/sdk/protocol/tdav1"
)

// sourceWireEncoder encodes a source's batch straight into its SourceOut message: every line
// of a pipeline goes through it. The general path (batchEncoder, then protobuf's marshaller)
// copies the lines twice and walks each column three times; this one builds the six packed
// columns in one pass over the events, then writes the message with each line copied once.
// It covers the batches sources send: events without fields or alert. A batch with either
// goes the general way (ok false). Both produce the same message (a test decodes both).
type sourceWireEncoder struct {
	dict  []string
	index map[string]uint32
	// cols are the packed columns line_len, time_delta, kind, source, origin, stream
	// (Batch fields 3 to 8), reused from one batch to the next.
	cols [6][]byte
}

// encode writes SourceOut{batch: SourceBatch{batch, checkpoints, handoff}} for events into
// memory from get (which returns a buffer of the length asked for), and returns the
// message and the offset and length of the Batch in it. ok is false, and nothing is
// written, when an event has fields or an alert.
func (w *sourceWireEncoder) encode(events []Event, cps []*tdav1.Checkpoint, handoff uint64,
	get func(n int) []byte) (msg []byte, batchOff, batchLen int, ok bool) {
	for i := range events {
		if len(events[i].Fields) > 0 || events[i].Alert != nil {
			return nil, 0, 0, false
		}
	}
	if w.index == nil {
		w.index = make(map[string]uint32, 8)
	}
	clear(w.index)
	w.dict = append(w.dict[:0], "")
	w.index[""] = 0
	for c := range w.cols {
		w.cols[c] = w.cols[c][:0]
	}
	intern := func(s string, last *string, lastIdx *uint32) uint64 {
		if s == *last {
			return uint64(*lastIdx)
		}
		idx, found := w.index[s]
		if !found {
			idx = uint32(len(w.dict))
			w.index[s] = idx
			w.dict = append(w.dict, validUTF8(s))
		}
		*last, *lastIdx = s, idx
		return uint64(idx)
	}
	var lk, ls, lo, lst string
	var ik, is, io, ist uint32
	var prev int64
	lines := 0
	for i := range events {
		e := &events[i]
		lines += len(e.Line)
		ts := int64(unknownTime)
		if !e.Time.IsZero() {
			ts = e.Time.UnixNano()
		}
		w.cols[0] = protowire.AppendVarint(w.cols[0], uint64(uint32(len(e.Line))))
		w.cols[1] = protowire.AppendVarint(w.cols[1], protowire.EncodeZigZag(ts-prev))
		prev = ts
		w.cols[2] = protowire.AppendVarint(w.cols[2], intern(e.Kind, &lk, &ik))
		w.cols[3] = protowire.AppendVarint(w.cols[3], intern(e.Source, &ls, &is))
		w.cols[4] = protowire.AppendVarint(w.cols[4], intern(e.Origin, &lo, &io))
		w.cols[5] = protowire.AppendVarint(w.cols[5], intern(e.Stream, &lst, &ist))
	}

	// Sizes first: every message is length-prefixed.
	batchLen = 0
	for _, s := range w.dict {
		batchLen += 1 + protowire.SizeBytes(len(s))
	}
	if lines > 0 {
		batchLen += 1 + protowire.SizeBytes(lines)
	}
	for _, col := range w.cols {
		if len(col) > 0 {
			batchLen += 1 + protowire.SizeBytes(len(col))
		}
	}
	sbLen := 1 + protowire.SizeBytes(batchLen)
	for _, c := range cps {
		sbLen += 1 + protowire.SizeBytes(proto.Size(c))
	}
	if handoff != 0 {
		sbLen += 1 + protowire.SizeVarint(handoff)
	}
	total := 1 + protowire.SizeBytes(sbLen)

	b := get(total)[:0]
	b = protowire.AppendTag(b, 1, protowire.BytesType) // SourceOut.batch
	b = protowire.AppendVarint(b, uint64(sbLen))
	b = protowire.AppendTag(b, 1, protowire.BytesType) // SourceBatch.batch
	b = protowire.AppendVarint(b, uint64(batchLen))
	batchOff = len(b)
	for _, s := range w.dict { // Batch.dict
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, s)
	}
	if lines > 0 { // Batch.lines
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(lines))
		for i := range events {
			b = append(b, events[i].Line...)
		}
	}
	for c, col := range w.cols { // Batch.line_len ... Batch.stream, packed
		if len(col) > 0 {
			b = protowire.AppendTag(b, protowire.Number(3+c), protowire.BytesType)
			b = protowire.AppendBytes(b, col)
		}
	}
	for _, c := range cps { // SourceBatch.checkpoints
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(proto.Size(c)))
		var err error
		if b, err = (proto.MarshalOptions{UseCachedSize: true}).MarshalAppend(b, c); err != nil {
			return nil, 0, 0, false
		}
	}
	if handoff != 0 { // SourceBatch.handoff
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, handoff)
	}
	if len(b) != total {
		// A size went wrong: the general path encodes the batch instead.
		return nil, 0, 0, false
	}
	return b, batchOff, batchLen, true
}
