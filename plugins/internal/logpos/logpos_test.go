package logpos

import "testing"

func TestParse(t *testing.T) {
	tests := []struct {
		in     string
		stream string
		seq    uint64
		ok     bool
	}{
		{"3f2a9c0d1e2b.lq2x9a:1", "3f2a9c0d1e2b.lq2x9a", 1, true},
		{"a:b:18446744073709551615", "a:b", 18446744073709551615, true},
		{Format("c1.e", 42), "c1.e", 42, true},
		{"c1:0", "", 0, false},
		{":5", "", 0, false},
		{"c1:", "", 0, false},
		{"c1", "", 0, false},
		{"c1:-1", "", 0, false},
		{"c1:18446744073709551616", "", 0, false},
		{"", "", 0, false},
	}
	for _, tt := range tests {
		stream, seq, ok := Parse(tt.in)
		if stream != tt.stream || seq != tt.seq || ok != tt.ok {
			t.Errorf("Parse(%q) = %q, %d, %v; want %q, %d, %v", tt.in, stream, seq, ok, tt.stream, tt.seq, tt.ok)
		}
	}
}

func TestMarkWritten(t *testing.T) {
	m := Mark{Stream: "c1.e", Seq: 10}
	tests := []struct {
		stream string
		seq    uint64
		want   bool
	}{
		{"c1.e", 1, true},
		{"c1.e", 10, true},
		{"c1.e", 11, false},
		{"c1.f", 1, false}, // a new reading of the same container
		{"c2.e", 5, false},
	}
	for _, tt := range tests {
		if got := m.Written(tt.stream, tt.seq); got != tt.want {
			t.Errorf("%+v.Written(%q, %d) = %v, want %v", m, tt.stream, tt.seq, got, tt.want)
		}
	}
	if (Mark{}).Written("", 1) {
		t.Error("an empty mark claims a line was written")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"a:1", "x.y:99", "::", "a:0", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		stream, seq, ok := Parse(v)
		if !ok {
			return
		}
		if stream == "" || seq == 0 {
			t.Fatalf("Parse(%q) accepted an empty stream or seq 0", v)
		}
		if s2, q2, ok2 := Parse(Format(stream, seq)); !ok2 || s2 != stream || q2 != seq {
			t.Fatalf("round trip of %q gave %q, %d, %v", v, s2, q2, ok2)
		}
	})
}
