package sdk

import (
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tda-dev/tda/sdk/internal/batchwire"
	"github.com/tda-dev/tda/sdk/protocol/tdav1"
)

// This file converts between events and the protocol's columnar Batch. Both the plugin side
// (Serve) and hosts (sdk/host) use it.

const unknownTime = math.MinInt64

// EncodeBatch encodes events into the protocol's columnar batch.
func EncodeBatch(events []Event) *tdav1.Batch {
	var enc batchEncoder
	return enc.encode(events)
}

// batchEncoder encodes batches into the same message again and again: once a batch has been
// sent (gRPC serialises a message before Send returns), its memory holds the next one.
type batchEncoder struct {
	b    *tdav1.Batch
	dict map[string]uint32
}

// encode encodes events into the encoder's message, which stays valid until the next call.
func (enc *batchEncoder) encode(events []Event) *tdav1.Batch {
	n := len(events)
	b := enc.b
	if b == nil {
		b = &tdav1.Batch{}
		enc.b = b
	}
	total := 0
	for i := range events {
		total += len(events[i].Line)
	}
	*b = tdav1.Batch{
		Dict:      append(b.Dict[:0], ""),
		Lines:     grow(b.Lines, total)[:0],
		LineLen:   grow(b.LineLen, n),
		TimeDelta: grow(b.TimeDelta, n),
		Kind:      grow(b.Kind, n),
		Source:    grow(b.Source, n),
		Origin:    grow(b.Origin, n),
		Stream:    grow(b.Stream, n),
		Extras:    b.Extras[:0],
	}
	if enc.dict == nil {
		enc.dict = make(map[string]uint32, 8)
	}
	dict := enc.dict
	clear(dict)
	dict[""] = 0
	intern := func(s string, last *string, lastIdx *uint32) uint32 {
		if s == *last {
			return *lastIdx
		}
		idx, ok := dict[s]
		if !ok {
			idx = uint32(len(b.Dict))
			dict[s] = idx
			b.Dict = append(b.Dict, validUTF8(s))
		}
		*last, *lastIdx = s, idx
		return idx
	}
	var lk, ls, lo, lst string
	var ik, is, io, ist uint32
	var prev int64
	for i := range events {
		e := &events[i]
		b.Lines = append(b.Lines, e.Line...)
		b.LineLen[i] = uint32(len(e.Line))
		ts := int64(unknownTime)
		if !e.Time.IsZero() {
			ts = e.Time.UnixNano()
		}
		b.TimeDelta[i] = ts - prev
		prev = ts
		b.Kind[i] = intern(e.Kind, &lk, &ik)
		b.Source[i] = intern(e.Source, &ls, &is)
		b.Origin[i] = intern(e.Origin, &lo, &io)
		b.Stream[i] = intern(e.Stream, &lst, &ist)
		if len(e.Fields) > 0 || e.Alert != nil {
			x := &tdav1.Extra{Index: uint32(i)}
			if len(e.Fields) > 0 {
				x.Fields = make(map[string]string, len(e.Fields))
				for k, v := range e.Fields {
					x.Fields[validUTF8(k)] = validUTF8(v)
				}
			}
			if a := e.Alert; a != nil {
				x.Alert = &tdav1.Alert{
					Rule: a.Rule, Severity: a.Severity, State: a.State, Key: validUTF8(a.Key),
					Count: a.Count, Threshold: a.Threshold, WindowNs: int64(a.Window),
					FirstSeenNs: timeToNs(a.FirstSeen), LastSeenNs: timeToNs(a.LastSeen),
					Excerpt: validUTF8List(a.Excerpt), Fingerprint: a.Fingerprint,
					SuppressedBy: validUTF8(a.SuppressedBy), OverrideReason: validUTF8(a.OverrideReason),
					Explanation: validUTF8(a.Explanation), Realert: int32(a.Realert),
				}
			}
			b.Extras = append(b.Extras, x)
		}
	}
	if len(b.Extras) == 0 {
		b.Extras = nil
	}
	return b
}

// grow returns s with length n, reusing its memory when it is large enough; new memory has
// room for a somewhat larger batch next time.
func grow[T any](s []T, n int) []T {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n, n+n/4)
}

// DecodeBatch decodes a columnar batch. Lines share the batch's buffer.
func DecodeBatch(b *tdav1.Batch) []Event {
	if b == nil {
		return nil
	}
	n := len(b.LineLen)
	events := make([]Event, n)
	dict := b.Dict
	str := func(col []uint32, i int) string {
		if i < len(col) && int(col[i]) < len(dict) {
			return dict[col[i]]
		}
		return ""
	}
	off := 0
	var prev int64
	for i := 0; i < n; i++ {
		e := &events[i]
		l := int(b.LineLen[i])
		if off+l > len(b.Lines) {
			l = len(b.Lines) - off
		}
		if l > 0 {
			e.Line = b.Lines[off : off+l : off+l]
		}
		off += l
		if i < len(b.TimeDelta) {
			ts := prev + b.TimeDelta[i]
			prev = ts
			if ts != unknownTime {
				e.Time = time.Unix(0, ts).UTC()
			}
		}
		e.Kind = str(b.Kind, i)
		e.Source = str(b.Source, i)
		e.Origin = str(b.Origin, i)
		e.Stream = str(b.Stream, i)
	}
	for _, x := range b.Extras {
		applyExtra(events, x)
	}
	return events
}

// applyExtra sets the fields and alert of the event x is for.
func applyExtra(events []Event, x *tdav1.Extra) {
	if int(x.Index) >= len(events) {
		return
	}
	e := &events[x.Index]
	if len(x.Fields) > 0 {
		e.Fields = x.Fields
	}
	if a := x.Alert; a != nil {
		e.Alert = &Alert{
			Rule: a.Rule, Severity: a.Severity, State: a.State, Key: a.Key, Count: a.Count,
			Threshold: a.Threshold, Window: time.Duration(a.WindowNs),
			FirstSeen: nsToTime(a.FirstSeenNs), LastSeen: nsToTime(a.LastSeenNs),
			Excerpt: a.Excerpt, Fingerprint: a.Fingerprint, SuppressedBy: a.SuppressedBy,
			OverrideReason: a.OverrideReason, Explanation: a.Explanation, Realert: int(a.Realert),
		}
	}
}

// EncodeCheckpoints converts checkpoints to their protocol form.
func EncodeCheckpoints(cps []Checkpoint) []*tdav1.Checkpoint {
	out := make([]*tdav1.Checkpoint, len(cps))
	for i, c := range cps {
		out[i] = &tdav1.Checkpoint{Key: validUTF8(c.Key), Value: c.Value, Delete: c.Delete}
	}
	return out
}

// DecodeCheckpoints converts checkpoints from their protocol form.
func DecodeCheckpoints(cps []*tdav1.Checkpoint) []Checkpoint {
	out := make([]Checkpoint, len(cps))
	for i, c := range cps {
		out[i] = Checkpoint{Key: c.Key, Value: c.Value, Delete: c.Delete}
	}
	return out
}

// EncodeDiagnostics converts diagnostics to their protocol form.
func EncodeDiagnostics(ds Diagnostics) []*tdav1.Diagnostic {
	out := make([]*tdav1.Diagnostic, len(ds))
	for i, d := range ds {
		sev := tdav1.Diagnostic_ERROR
		if d.Severity == SeverityWarning {
			sev = tdav1.Diagnostic_WARNING
		}
		out[i] = &tdav1.Diagnostic{Severity: sev, Summary: validUTF8(d.Summary),
			Detail: validUTF8(d.Detail), Path: validUTF8List(d.Path)}
	}
	return out
}

// DecodeDiagnostics converts diagnostics from their protocol form.
func DecodeDiagnostics(ds []*tdav1.Diagnostic) Diagnostics {
	out := make(Diagnostics, len(ds))
	for i, d := range ds {
		sev := SeverityError
		if d.Severity == tdav1.Diagnostic_WARNING {
			sev = SeverityWarning
		}
		out[i] = &Diagnostic{Severity: sev, Summary: d.Summary, Detail: d.Detail, Path: d.Path}
	}
	return out
}

func timeToNs(t time.Time) int64 {
	if t.IsZero() {
		return unknownTime
	}
	return t.UnixNano()
}

func nsToTime(ns int64) time.Time {
	if ns == unknownTime || ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// validUTF8 returns s with invalid bytes replaced: protobuf strings must be valid UTF-8.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func validUTF8List(l []string) []string {
	for i, s := range l {
		if !utf8.ValidString(s) {
			out := append([]string(nil), l...)
			for j := i; j < len(out); j++ {
				out[j] = validUTF8(out[j])
			}
			return out
		}
	}
	return l
}

// batchDecoder decodes encoded batches straight into events, reusing its memory from one
// batch to the next.
type batchDecoder struct {
	parts batchwire.Parts
	dict  []string
}

// decode decodes the encoded Batch raw into events, which it reuses (its length is reset);
// the lines share raw.
func (d *batchDecoder) decode(raw []byte, events []Event) ([]Event, error) {
	// The extras are checked as they are unmarshalled below.
	info, err := batchwire.ScanColumns(raw)
	if err != nil {
		return nil, err
	}
	p := &d.parts
	if err := batchwire.Split(raw, p); err != nil {
		return nil, err
	}
	// The dictionary's strings repeat from batch to batch: keep the previous ones.
	dict := d.dict[:0]
	for i, s := range p.Dict {
		if i < len(d.dict) && d.dict[i] == string(s) {
			dict = append(dict, d.dict[i])
		} else {
			dict = append(dict, string(s))
		}
	}
	d.dict = dict
	str := func(c *batchwire.Column) string {
		v, ok := c.Next()
		if v := uint32(v); ok && int(v) < len(dict) {
			return dict[v]
		}
		return ""
	}
	n := info.Events
	if cap(events) < n {
		events = make([]Event, n)
	}
	events = events[:n]
	off := 0
	var prev int64
	for i := range events {
		e := &events[i]
		*e = Event{}
		v, _ := p.LineLen.Next()
		l := uint64(uint32(v))
		if rest := uint64(len(p.Lines) - off); l > rest {
			l = rest
		}
		if l > 0 {
			e.Line = p.Lines[off : off+int(l) : off+int(l)]
		}
		off += int(l)
		if v, ok := p.TimeDelta.Next(); ok {
			ts := prev + protowire.DecodeZigZag(v)
			prev = ts
			if ts != unknownTime {
				e.Time = time.Unix(0, ts).UTC()
			}
		}
		e.Kind = str(&p.Kind)
		e.Source = str(&p.Source)
		e.Origin = str(&p.Origin)
		e.Stream = str(&p.Stream)
	}
	for _, xb := range p.Extras {
		x := &tdav1.Extra{}
		if err := proto.Unmarshal(xb, x); err != nil {
			return nil, err
		}
		applyExtra(events, x)
	}
	return events, nil
}
