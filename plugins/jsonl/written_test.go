package jsonl

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/tda-dev/tda/sdk"
)

// FuzzScan: reading back any output (a file anyone can edit or damage) never panics, and
// a window that starts inside a line never takes that line's tail for a record.
func FuzzScan(f *testing.F) {
	f.Add([]byte(`{"kind":"alert","fingerprint":"fp","state":"firing","realert":0}`+"\n"), int64(1<<20))
	f.Add([]byte(`{"kind":"log","origin":"web","fields":{"log_position":"c.e:5"}}`+"\n"+`{"kind":`), int64(10))
	f.Add([]byte("\n\n{}\nnot json\n"), int64(3))
	f.Fuzz(func(t *testing.T, data []byte, window int64) {
		if window < 0 {
			window = -window
		}
		w := newWritten()
		if err := w.scan(bytes.NewReader(data), int64(len(data)), window); err != nil {
			t.Fatalf("scan: %v", err)
		}
		if len(w.alerts) > maxAlerts || len(w.marks) > maxOrigins {
			t.Fatalf("bounds broken: %d alerts, %d marks", len(w.alerts), len(w.marks))
		}
	})
}

// TestScanWindowSkipsThePartialFirstLine: the read-back starts at a line boundary.
func TestScanWindowSkipsThePartialFirstLine(t *testing.T) {
	rec := func(fp string) []byte {
		e := sdk.Event{Kind: sdk.KindAlert, Alert: &sdk.Alert{Fingerprint: fp, State: sdk.StateFiring}}
		return append(e.AppendJSON(nil), '\n')
	}
	data := append(rec("first"), rec("second")...)
	w := newWritten()
	if err := w.scan(bytes.NewReader(data), int64(len(data)), int64(len(data)-3)); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.alerts["second/firing/0"]; !ok || len(w.alerts) != 1 {
		t.Fatalf("read back %v, want only the second record", w.alerts)
	}
}

// BenchmarkScanWindow reads back a full window of alert records, as a start does.
func BenchmarkScanWindow(b *testing.B) {
	var data []byte
	for i := 0; len(data) < scanWindow; i++ {
		e := sdk.Event{Kind: sdk.KindAlert, Origin: "app.log", Line: []byte("x"),
			Alert: &sdk.Alert{Rule: "bulk_deletion", Fingerprint: fmt.Sprint("fp", i), State: sdk.StateFiring,
				Excerpt: []string{"user_deleted id=1", "user_deleted id=2"}}}
		data = append(e.AppendJSON(data), '\n')
	}
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		w := newWritten()
		if err := w.scan(bytes.NewReader(data), int64(len(data)), scanWindow); err != nil {
			b.Fatal(err)
		}
	}
}
