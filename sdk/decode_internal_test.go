package sdk

import (
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tda-dev/tda/sdk/protocol/tdav1"
)

func decoderSample() []Event {
	t0 := time.Date(2026, 11, 29, 10, 15, 30, 123456789, time.UTC)
	return []Event{
		{Time: t0, Kind: KindLog, Source: "file.hosts", Origin: "/var/log/a.log", Line: []byte("first")},
		{Kind: KindLog, Source: "file.hosts", Origin: "/var/log/a.log", Line: []byte("no time")},
		{Time: t0.Add(-time.Hour), Kind: KindLog, Source: "docker.apps", Origin: "web", Stream: "stderr",
			Fields: map[string]string{"event": "login_failed", "ip": "203.0.113.9"}},
		{Time: t0, Kind: KindAlert, Source: "file.hosts", Origin: "a", Alert: &Alert{Rule: "r", Severity: "HIGH",
			State: "firing", Count: 11, Window: time.Minute, FirstSeen: t0.Add(-time.Minute), LastSeen: t0,
			Excerpt: []string{"x"}, Fingerprint: "fp", Realert: 2}},
	}
}

// checkDecoder decodes data with the batch decoder, into reused memory, and with protobuf and
// DecodeBatch: both must agree.
func checkDecoder(t *testing.T, d *batchDecoder, reuse []Event, data []byte) []Event {
	t.Helper()
	var w tdav1.Batch
	werr := proto.Unmarshal(data, &w)
	got, err := d.decode(data, reuse)
	if (werr == nil) != (err == nil) {
		t.Fatalf("protobuf says %v, the decoder %v", werr, err)
	}
	if werr != nil {
		return reuse
	}
	want := DecodeBatch(&w)
	if len(got) != len(want) || (len(got) > 0 && !reflect.DeepEqual(got, want)) {
		t.Fatalf("decoded\n got %+v\nwant %+v", got, want)
	}
	return got
}

func TestBatchDecoderReusesMemory(t *testing.T) {
	var d batchDecoder
	in := decoderSample()
	a, _ := proto.Marshal(EncodeBatch(in))
	b, _ := proto.Marshal(EncodeBatch(in[:2]))
	events := checkDecoder(t, &d, nil, a)
	first := &events[0]
	events = checkDecoder(t, &d, events, b)
	if &events[0] != first {
		t.Fatal("the events' memory was not reused")
	}
	if events[1].Fields != nil || len(events) != 2 {
		t.Fatalf("a reused event kept what the previous batch set: %+v", events)
	}
	checkDecoder(t, &d, events, a)
}

func FuzzBatchDecoder(f *testing.F) {
	seed, _ := proto.Marshal(EncodeBatch(decoderSample()))
	f.Add(seed)
	f.Add([]byte{})
	var d batchDecoder
	var reuse []Event
	f.Fuzz(func(t *testing.T, data []byte) {
		reuse = checkDecoder(t, &d, reuse, data)
	})
}
