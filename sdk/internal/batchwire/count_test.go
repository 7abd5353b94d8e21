package batchwire

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tda-dev/tda/sdk/protocol/tdav1"
)

// countSlowly counts a packed field's values one by one, as protowire reads them.
func countSlowly(b []byte) (int, error) {
	n := 0
	err := eachVarint(field{typ: protowire.BytesType, val: b}, func(uint64) { n++ })
	return n, err
}

func checkCount(t *testing.T, b []byte) {
	t.Helper()
	got, gerr := countPacked(b)
	want, werr := countSlowly(b)
	if (gerr == nil) != (werr == nil) || gerr == nil && got != want {
		t.Fatalf("countPacked(%x) = %d, %v; value by value: %d, %v", b, got, gerr, want, werr)
	}
}

func TestCountPacked(t *testing.T) {
	var small, mixed []byte
	for i := 0; i < 100; i++ {
		small = protowire.AppendVarint(small, uint64(i%128))
		mixed = protowire.AppendVarint(mixed, uint64(i*i*i))
	}
	overlong := append(append([]byte{}, small[:9]...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)
	for _, b := range [][]byte{nil, {0}, small, mixed, append(small, 0x80), overlong,
		append(small[:16], 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02)} {
		checkCount(t, b)
	}
}

func FuzzCountPacked(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 0x80, 0x01, 2})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02})
	f.Fuzz(checkCount)
}

// BenchmarkScan checks a batch of 8,192 lines shaped like a file source's (one origin, line
// lengths under 128, millisecond time deltas), as the host does with every batch a source
// sends.
func BenchmarkScan(b *testing.B) {
	const n = 8192
	w := &tdav1.Batch{Dict: []string{"", "log", "file.bench", "/var/log/app.log"}}
	for i := 0; i < n; i++ {
		line := []byte(`127.0.0.1 - - [29/Nov/2026 22:57:05] "GET /api/orders/3484 HTTP/1.1" 200 -`)
		w.Lines = append(w.Lines, line...)
		w.LineLen = append(w.LineLen, uint32(len(line)))
		w.TimeDelta = append(w.TimeDelta, int64(i%3)*1e6)
		w.Kind = append(w.Kind, 1)
		w.Source = append(w.Source, 2)
		w.Origin = append(w.Origin, 3)
		w.Stream = append(w.Stream, 0)
	}
	raw, err := proto.Marshal(w)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if info, err := Scan(raw); err != nil || info.Events != n {
			b.Fatal(info, err)
		}
	}
}
