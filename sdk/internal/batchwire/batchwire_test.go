package batchwire

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tda-dev/tda/sdk/protocol/tdav1"
)

func sample() *tdav1.Batch {
	return &tdav1.Batch{
		Dict:      []string{"", "log", "file.hosts", "/var/log/a.log", "alert"},
		Lines:     []byte("firstsecondthird"),
		LineLen:   []uint32{5, 6, 5, 0},
		TimeDelta: []int64{1764410130123456789, -3600e9, -9223372036854775808, 42},
		Kind:      []uint32{1, 1, 1, 4},
		Source:    []uint32{2, 2, 2, 2},
		Origin:    []uint32{3, 3, 0, 3},
		Stream:    []uint32{0, 0, 0, 0},
		Extras: []*tdav1.Extra{
			{Index: 1, Fields: map[string]string{"event": "login_failed", "ip": "203.0.113.9"}},
			{Index: 3, Alert: &tdav1.Alert{Rule: "r", Severity: "HIGH", Excerpt: []string{"x"}, Realert: 2}},
		},
	}
}

// unpacked encodes a batch with every repeated integer as one field per value, in reverse
// field order, with an unknown field and a first lines field that a later one overrides: all
// of which a protobuf parser must accept.
func unpacked(b *tdav1.Batch) []byte {
	var out []byte
	out = protowire.AppendTag(out, 99, protowire.VarintType)
	out = protowire.AppendVarint(out, 7)
	out = protowire.AppendTag(out, batchLines, protowire.BytesType)
	out = protowire.AppendBytes(out, []byte("overridden"))
	for _, x := range b.Extras {
		m, _ := proto.Marshal(x)
		out = protowire.AppendTag(out, batchExtras, protowire.BytesType)
		out = protowire.AppendBytes(out, m)
	}
	cols := []struct {
		num protowire.Number
		v   []uint32
	}{{batchStream, b.Stream}, {batchOrigin, b.Origin}, {batchSource, b.Source}, {batchKind, b.Kind}}
	for _, c := range cols {
		for _, v := range c.v {
			out = protowire.AppendTag(out, c.num, protowire.VarintType)
			out = protowire.AppendVarint(out, uint64(v))
		}
	}
	for _, v := range b.TimeDelta {
		out = protowire.AppendTag(out, batchTimeDelta, protowire.VarintType)
		out = protowire.AppendVarint(out, protowire.EncodeZigZag(v))
	}
	for _, v := range b.LineLen {
		out = protowire.AppendTag(out, batchLineLen, protowire.VarintType)
		out = protowire.AppendVarint(out, uint64(v))
	}
	out = protowire.AppendTag(out, batchLines, protowire.BytesType)
	out = protowire.AppendBytes(out, b.Lines)
	for _, s := range b.Dict {
		out = protowire.AppendTag(out, batchDict, protowire.BytesType)
		out = protowire.AppendString(out, s)
	}
	return out
}

// check compares Scan, Unmarshal and KindCounts on data with protobuf's own parser.
func check(t *testing.T, data []byte) {
	t.Helper()
	var want tdav1.Batch
	werr := proto.Unmarshal(data, &want)
	info, serr := Scan(data)
	got, uerr := Unmarshal(data)
	kinds, kerr := KindCounts(data)
	if (werr == nil) != (serr == nil) || (werr == nil) != (uerr == nil) {
		t.Fatalf("protobuf says %v, Scan %v, Unmarshal %v", werr, serr, uerr)
	}
	if werr != nil {
		return
	}
	if kerr != nil {
		t.Fatalf("KindCounts: %v", kerr)
	}
	// Unknown fields are not kept: compare without them.
	want.ProtoReflect().SetUnknown(nil)
	if !proto.Equal(got, &want) {
		t.Fatalf("Unmarshal\n got %v\nwant %v", got, &want)
	}
	if info.Events != len(want.LineLen) || info.LineBytes != len(want.Lines) || info.Extras != len(want.Extras) {
		t.Fatalf("Scan %+v for %d events, %d line bytes, %d extras", info, len(want.LineLen), len(want.Lines), len(want.Extras))
	}
	wantKinds := map[string]int{}
	for _, k := range want.Kind {
		if int(k) < len(want.Dict) {
			wantKinds[want.Dict[k]]++
		} else {
			wantKinds[""]++
		}
	}
	if len(kinds) != len(wantKinds) {
		t.Fatalf("KindCounts %v, want %v", kinds, wantKinds)
	}
	for k, n := range wantKinds {
		if kinds[k] != n {
			t.Fatalf("KindCounts %v, want %v", kinds, wantKinds)
		}
	}
}

func TestMatchesProtobuf(t *testing.T) {
	packed, err := proto.Marshal(sample())
	if err != nil {
		t.Fatal(err)
	}
	empty, _ := proto.Marshal(&tdav1.Batch{})
	badUTF8 := protowire.AppendTag(nil, batchDict, protowire.BytesType)
	badUTF8 = protowire.AppendBytes(badUTF8, []byte("\xff"))
	truncated := packed[:len(packed)-3]
	cases := map[string][]byte{
		"packed": packed, "unpacked": unpacked(sample()), "empty": empty, "nil": nil,
		"invalid UTF-8 in the dictionary": badUTF8, "truncated": truncated,
		"field number 0": {0x02, 0x00},
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) { check(t, data) })
	}
}

func TestUnmarshalSharesLines(t *testing.T) {
	data, _ := proto.Marshal(sample())
	b, err := Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	if string(b.Lines) != "firstsecondthird" {
		t.Fatalf("lines %q", b.Lines)
	}
	for i := range data {
		if &data[i] == &b.Lines[0] {
			return
		}
	}
	t.Fatal("the lines were copied")
}

func TestEmbedded(t *testing.T) {
	var msg []byte
	msg = protowire.AppendTag(msg, 1, protowire.BytesType)
	msg = protowire.AppendBytes(msg, []byte("abc"))
	msg = protowire.AppendTag(msg, 2, protowire.VarintType)
	msg = protowire.AppendVarint(msg, 5)
	got, shared, err := Embedded(msg, 1)
	if err != nil || !shared || string(got) != "abc" {
		t.Fatalf("%q %v %v", got, shared, err)
	}
	// Occurrences of an embedded message merge: their encodings are concatenated.
	msg = protowire.AppendTag(msg, 1, protowire.BytesType)
	msg = protowire.AppendBytes(msg, []byte("de"))
	got, shared, err = Embedded(msg, 1)
	if err != nil || shared || string(got) != "abcde" {
		t.Fatalf("%q %v %v", got, shared, err)
	}
	got, _, err = Embedded(msg, 3)
	if err != nil || got != nil {
		t.Fatalf("absent field: %q %v", got, err)
	}
}

func FuzzMatchesProtobuf(f *testing.F) {
	packed, _ := proto.Marshal(sample())
	f.Add(packed)
	f.Add(unpacked(sample()))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) { check(t, data) })
}
