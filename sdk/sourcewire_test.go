package sdk

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tda-dev/tda/sdk/protocol/tdav1"
)

// checkSourceWire encodes events with the source encoder and the general path (batchEncoder
// and protobuf's marshaller) and requires the same message.
func checkSourceWire(t testing.TB, events []Event, cps []Checkpoint, handoff uint64) {
	t.Helper()
	var w sourceWireEncoder
	wcps := EncodeCheckpoints(cps)
	msg, off, n, ok := w.encode(events, wcps, handoff, func(n int) []byte { return make([]byte, n) })
	if !ok {
		t.Fatalf("a batch without fields or alerts was refused")
	}
	var got tdav1.SourceOut
	if err := proto.Unmarshal(msg, &got); err != nil {
		t.Fatalf("the encoded message does not parse: %v", err)
	}
	var enc batchEncoder
	want := &tdav1.SourceOut{Msg: &tdav1.SourceOut_Batch{Batch: &tdav1.SourceBatch{
		Batch: enc.encode(events), Checkpoints: wcps, Handoff: handoff}}}
	if !proto.Equal(&got, want) {
		t.Fatalf("source encoder:\n%v\ngeneral path:\n%v", &got, want)
	}
	var batch tdav1.Batch
	if err := proto.Unmarshal(msg[off:off+n], &batch); err != nil || !proto.Equal(&batch, want.GetBatch().Batch) {
		t.Fatalf("the batch's offset and length do not frame the batch (%v)", err)
	}
}

func TestSourceWireEncoderMatchesTheGeneralPath(t *testing.T) {
	at := time.Date(2026, 11, 29, 22, 57, 5, 123456789, time.UTC)
	for name, c := range map[string]struct {
		events  []Event
		cps     []Checkpoint
		handoff uint64
	}{
		"empty":      {},
		"one":        {events: []Event{{Kind: "log", Source: "file.a", Origin: "/x.log", Line: []byte("hello"), Time: at}}},
		"checkpoint": {events: []Event{{Line: []byte("x")}}, cps: []Checkpoint{{Key: "k", Value: []byte{1, 2}}, {Key: "gone", Delete: true}}, handoff: 7},
		"mixed": {events: []Event{
			{Kind: "log", Source: "file.a", Origin: "/a.log", Stream: "stdout", Line: []byte("a"), Time: at},
			{Kind: "log", Source: "file.a", Origin: "/b.log", Line: nil},
			{Kind: "log", Source: "file.a", Origin: "/a.log", Line: []byte("\xff\xfe not UTF-8"), Time: at.Add(-time.Hour)},
			{Kind: "tick", Source: "\xffbad", Origin: "/a.log", Line: []byte("c"), Time: time.Unix(0, 1)},
			{Kind: "log", Line: make([]byte, 300), Time: at.Add(time.Duration(1) << 62)},
		}, handoff: 1 << 40},
	} {
		t.Run(name, func(t *testing.T) { checkSourceWire(t, c.events, c.cps, c.handoff) })
	}
}

func TestSourceWireEncoderLeavesExtrasToTheGeneralPath(t *testing.T) {
	var w sourceWireEncoder
	called := false
	for _, e := range []Event{{Line: []byte("x"), Fields: map[string]string{"a": "b"}}, {Kind: KindAlert, Alert: &Alert{Rule: "r"}}} {
		if _, _, _, ok := w.encode([]Event{{Line: []byte("y")}, e}, nil, 0, func(n int) []byte { called = true; return make([]byte, n) }); ok || called {
			t.Fatalf("an event with fields or an alert was encoded (memory taken: %v)", called)
		}
	}
}

func FuzzSourceWireEncoder(f *testing.F) {
	f.Add([]byte("line one\nline two"), "log", "file.a", "/var/log/a.log", int64(1764456000123456789), int64(-5), uint64(3), "cp")
	f.Add([]byte("\xff"), "", "\xff", "", int64(0), int64(0), uint64(0), "")
	f.Fuzz(func(t *testing.T, lines []byte, kind, source, origin string, t0, step int64, handoff uint64, cpKey string) {
		var events []Event
		ts := t0
		for i, l := range splitLines(lines) {
			e := Event{Kind: kind, Source: source, Origin: origin, Line: l}
			if i%2 == 0 {
				e.Origin, e.Stream = source, kind
			}
			if ts != 0 {
				e.Time = time.Unix(0, ts)
			}
			ts += step
			events = append(events, e)
		}
		var cps []Checkpoint
		if cpKey != "" {
			cps = []Checkpoint{{Key: cpKey, Value: lines}}
		}
		checkSourceWire(t, events, cps, handoff)
	})
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		out = append(out, b[:i])
		if i < len(b) {
			i++
		}
		b = b[i:]
	}
	return out
}

// BenchmarkSourceBatch encodes a file source's batch of 8,192 lines into the message the
// plugin sends: the source encoder, and the general path it replaced for such batches.
func BenchmarkSourceBatch(b *testing.B) {
	const n = 8192
	events := make([]Event, n)
	base := time.Date(2026, 11, 29, 22, 57, 5, 0, time.UTC)
	for i := range events {
		events[i] = Event{Kind: KindLog, Source: "file.bench", Origin: "/var/log/app.log", Time: base.Add(time.Duration(i) * time.Millisecond),
			Line: []byte(`127.0.0.1 - - [29/Nov/2026 22:57:05] "GET /api/orders/3484 HTTP/1.1" 200 -`)}
	}
	cps := EncodeCheckpoints([]Checkpoint{{Key: "/var/log/app.log", Value: make([]byte, 24)}})
	var pool memPool
	b.Run("source-encoder", func(b *testing.B) {
		var w sourceWireEncoder
		for b.Loop() {
			var buf *[]byte
			msg, _, _, ok := w.encode(events, cps, 1, func(n int) []byte { buf = pool.Get(n); return *buf })
			if !ok {
				b.Fatal("refused")
			}
			*buf = msg
			pool.Put(buf)
		}
	})
	b.Run("general", func(b *testing.B) {
		var enc batchEncoder
		var sb tdav1.SourceBatch
		msg := &tdav1.SourceOut{Msg: &tdav1.SourceOut_Batch{Batch: &sb}}
		for b.Loop() {
			sb.Batch, sb.Checkpoints, sb.Handoff = enc.encode(events), cps, 1
			buf := pool.Get(proto.Size(msg))
			out, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend((*buf)[:0], msg)
			if err != nil {
				b.Fatal(err)
			}
			*buf = out
			pool.Put(buf)
		}
	})
}
