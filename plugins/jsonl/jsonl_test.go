package jsonl_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/jsonl"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

func logEvent(i int) sdk.Event {
	return sdk.Event{Time: time.Date(2026, 11, 29, 10, 0, 0, i, time.UTC), Kind: sdk.KindLog,
		Source: "file.hosts", Origin: "/var/log/app.log", Line: []byte(fmt.Sprintf("line %d", i)),
		Fields: map[string]string{"n": fmt.Sprint(i)}}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

func config(path string, extra string) string {
	return fmt.Sprintf("path = %q\n%s", path, extra)
}

func TestWritesCanonicalJSON(t *testing.T) {
	for name, mode := range map[string]sdktest.Mode{"grpc": sdktest.GRPC, "direct": sdktest.Direct} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sub", "out.jsonl")
			s := sdktest.NewSink(t, jsonl.Component(), config(path, ""), sdktest.WithMode(mode))
			alert := sdk.Event{Time: time.Date(2026, 11, 29, 10, 15, 30, 0, time.UTC), Kind: sdk.KindAlert,
				Source: "file.hosts", Origin: "app.log", Alert: &sdk.Alert{Rule: "mass_password_reset",
					Severity: "HIGH", State: "firing", Count: 11, Threshold: 10, Window: time.Minute,
					Excerpt: []string{"a\x00b"}, Fingerprint: "fp", Explanation: "x"}}
			bad := logEvent(2)
			bad.Line = []byte("caf\xe9 <b>")
			if err := s.Write(logEvent(1), alert, bad); err != nil {
				t.Fatal(err)
			}
			lines := readLines(t, path)
			if len(lines) != 3 {
				t.Fatalf("%d lines", len(lines))
			}
			want := `{"ts":"2026-11-29T10:00:00.000000001Z","kind":"log","source":"file.hosts","origin":"/var/log/app.log","stream":"","line":"line 1","fields":{"n":"1"}}`
			if lines[0] != want {
				t.Fatalf("got  %s\nwant %s", lines[0], want)
			}
			var keys map[string]any
			if err := json.Unmarshal([]byte(lines[1]), &keys); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"ts", "kind", "rule", "severity", "state", "key", "count", "threshold",
				"window", "first_seen", "last_seen", "origin", "source", "excerpt", "fingerprint", "explanation"} {
				if _, ok := keys[k]; !ok {
					t.Errorf("alert lacks %q", k)
				}
			}
			if len(keys) != 16 {
				t.Errorf("alert has %d keys, want exactly 16: %s", len(keys), lines[1])
			}
			if !strings.Contains(lines[2], `"line":"caf\ufffd \u003cb\u003e"`) && !strings.Contains(lines[2], `"line":"caf\ufffd <b>"`) {
				t.Errorf("invalid UTF-8 not replaced: %s", lines[2])
			}
			var e sdk.Event
			if err := json.Unmarshal([]byte(lines[1]), &e); err != nil || e.Alert.Window != time.Minute {
				t.Fatalf("round trip: %v %+v", err, e.Alert)
			}
		})
	}
}

func TestRetriedBatchIsWrittenOnce(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.jsonl")
	state := filepath.Join(dir, "state")
	s := sdktest.NewSink(t, jsonl.Component(), config(path, ""), sdktest.WithDataDir(state))
	batch := sdk.Batch{ID: 7, Events: []sdk.Event{logEvent(1), logEvent(2)}}
	for i := 0; i < 3; i++ {
		if err := s.WriteBatch(batch); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(readLines(t, path)); n != 2 {
		t.Fatalf("%d lines after three writes of one batch", n)
	}
	// A new process (plugin restarted) still recognises the retry.
	_ = s.Close()
	s2 := sdktest.NewSink(t, jsonl.Component(), config(path, ""), sdktest.WithDataDir(state))
	if err := s2.WriteBatch(batch); err != nil {
		t.Fatal(err)
	}
	if err := s2.WriteBatch(sdk.Batch{ID: 8, Events: []sdk.Event{logEvent(3)}}); err != nil {
		t.Fatal(err)
	}
	if got := readLines(t, path); len(got) != 3 || !strings.Contains(got[2], "line 3") {
		t.Fatalf("after restart: %v", got)
	}
}

func TestCrashLeftoversAreRepaired(t *testing.T) {
	tests := []struct {
		name   string
		marker bool
		tail   string
		want   int
	}{
		// The marker says what was acknowledged: an unacknowledged but complete line goes too.
		{"with marker, torn line", true, `{"ts":"2026-11-29T10:00:00`, 2},
		{"with marker, unacknowledged lines", true, `{"kind":"log"}` + "\n" + `{"kind":"log"}` + "\n", 2},
		// Without a marker only the torn line goes.
		{"no marker, torn line", false, `{"ts":"2026-11-29T10:00:00`, 2},
		{"no marker, complete lines kept", false, `{"kind":"log"}` + "\n", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out.jsonl")
			state := filepath.Join(dir, "state")
			s := sdktest.NewSink(t, jsonl.Component(), config(path, ""), sdktest.WithDataDir(state))
			if err := s.WriteBatch(sdk.Batch{ID: 1, Events: []sdk.Event{logEvent(1), logEvent(2)}}); err != nil {
				t.Fatal(err)
			}
			_ = s.Close()
			if !tt.marker {
				if err := os.RemoveAll(state); err != nil {
					t.Fatal(err)
				}
			}
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = f.WriteString(tt.tail)
			f.Close()
			s2 := sdktest.NewSink(t, jsonl.Component(), config(path, ""), sdktest.WithDataDir(state))
			if err := s2.WriteBatch(sdk.Batch{ID: 2, Events: []sdk.Event{logEvent(3)}}); err != nil {
				t.Fatal(err)
			}
			lines := readLines(t, path)
			if len(lines) != tt.want+1 {
				t.Fatalf("%d lines: %v", len(lines), lines)
			}
			for _, l := range lines {
				if !json.Valid([]byte(l)) {
					t.Fatalf("torn line left: %q", l)
				}
			}
		})
	}
}

// A crash after a batch reached the file but before it was acknowledged leaves lines the
// agent sends again. They are cut back at the next start also when no batch was ever
// acknowledged (the first one), and in a file just rotated.
func TestUnacknowledgedFirstBatchIsCutBack(t *testing.T) {
	for _, rotated := range []bool{false, true} {
		t.Run(fmt.Sprintf("rotated=%v", rotated), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out.jsonl")
			state := filepath.Join(dir, "state")
			extra := ""
			if rotated {
				extra = "max_bytes = 700" // records of about 155 bytes
			}
			s := sdktest.NewSink(t, jsonl.Component(), config(path, extra), sdktest.WithDataDir(state))
			if rotated {
				for i := 1; i <= 3; i++ { // past max_bytes: the next write rotates
					if err := s.WriteBatch(sdk.Batch{ID: uint64(i), Events: []sdk.Event{logEvent(i)}}); err != nil {
						t.Fatal(err)
					}
				}
				// The batch that rotates, acknowledged: the new file is the marker's. The retry
				// below fits beside it without rotating again.
				if err := s.WriteBatch(sdk.Batch{ID: 4, Events: []sdk.Event{logEvent(4), logEvent(5)}}); err != nil {
					t.Fatal(err)
				}
			}
			before := readLines(t, path)
			if rotated && (len(before) != 2 || len(readLines(t, path+".1")) != 3) {
				t.Fatalf("the setup did not rotate as planned: %d lines, %d in .1", len(before), len(readLines(t, path+".1")))
			}
			_ = s.Close()
			// The crash: the next batch's lines are in the file, its acknowledgement is not.
			unacked := sdk.Batch{ID: 9, Events: []sdk.Event{logEvent(10), logEvent(11)}}
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range unacked.Events {
				_, _ = f.Write(append(e.AppendJSON(nil), '\n'))
			}
			f.Close()
			s2 := sdktest.NewSink(t, jsonl.Component(), config(path, extra), sdktest.WithDataDir(state))
			if err := s2.WriteBatch(unacked); err != nil {
				t.Fatal(err)
			}
			got := readLines(t, path)
			if len(got) != len(before)+2 {
				t.Fatalf("%d lines before the crash, %d after the retry (want %d): %v", len(before), len(got), len(before)+2, got)
			}
		})
	}
}

func TestRotatesBySizeKeepingMaxFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.jsonl")
	s := sdktest.NewSink(t, jsonl.Component(), config(path, "max_bytes = 1000\nmax_files = 2"))
	for i := 0; i < 40; i++ {
		if err := s.Write(logEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{path, path + ".1", path + ".2"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if st.Size() > 1000 {
			t.Fatalf("%s has %d bytes, over max_bytes", p, st.Size())
		}
	}
	if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
		t.Fatalf("a third rotated file is kept: %v", err)
	}
	last := readLines(t, path)
	if !strings.Contains(last[len(last)-1], "line 39") {
		t.Fatalf("newest file does not end with the newest event: %v", last)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{`path = ""`, "1:8: Invalid path: path must not be empty"},
		{"path = \"x\"\nmax_files = 0", "2:13: Invalid max_files: max_files must be at least 1"},
		{"path = \"x\"\nfile_mode = \"rw\"", "2:13: Invalid file_mode"},
	}
	for _, tt := range tests {
		diags := sdktest.Validate(t, jsonl.Component(), tt.src)
		if len(diags) != 1 || !strings.HasPrefix(diags[0], tt.want) {
			t.Errorf("%q: %v, want %q", tt.src, diags, tt.want)
		}
	}
}

func BenchmarkWrite(b *testing.B) {
	path := filepath.Join(b.TempDir(), "out.jsonl")
	s := sdktest.NewSink(b, jsonl.Component(), config(path, "fsync = false"), sdktest.WithMode(sdktest.Direct))
	events := make([]sdk.Event, 1000)
	for i := range events {
		events[i] = logEvent(i)
		events[i].Line = []byte(`172.22.0.99 - - [29/Nov/2026 10:00:02] "POST /login HTTP/1.1" 401 -`)
	}
	b.SetBytes(int64(len(events)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Write(events...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(events))/b.Elapsed().Seconds(), "events/s")
}
