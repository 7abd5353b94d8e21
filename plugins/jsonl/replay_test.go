package jsonl_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/internal/logpos"
	"github.com/tda-dev/tda/plugins/jsonl"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

func alertEvent(fp, state string, realert int) sdk.Event {
	return sdk.Event{Time: time.Date(2026, 11, 29, 10, 15, 30, 0, time.UTC), Kind: sdk.KindAlert,
		Source: "file.hosts", Origin: "app.log", Alert: &sdk.Alert{Rule: "mass_password_reset",
			Severity: "HIGH", State: state, Count: 11, Threshold: 10, Window: time.Minute,
			Fingerprint: fp, Realert: realert}}
}

func positioned(origin, stream string, i int) sdk.Event {
	e := logEvent(i)
	e.Origin = origin
	e.Fields = map[string]string{logpos.Field: logpos.Format(stream, uint64(i))}
	return e
}

// TestReplayedRecordsAreWrittenOnce: after a restart, the agent may send again what it sent
// before the crash, under new delivery ids: alert records already in the file (same
// fingerprint, state and reminder number) and positioned lines already written are left out,
// also when they sit in the file rotated away just before; everything else is written.
func TestReplayedRecordsAreWrittenOnce(t *testing.T) {
	tests := []struct {
		name   string
		extra  string
		first  []sdk.Event
		replay []sdk.Event
		want   int // records in path and path.1 together
	}{
		{"alert records", "", []sdk.Event{alertEvent("a", "firing", 0), alertEvent("b", "firing", 0)},
			[]sdk.Event{alertEvent("a", "firing", 0), alertEvent("b", "firing", 0), alertEvent("a", "firing", 1),
				alertEvent("a", "resolved", 0), alertEvent("c", "firing", 0)}, 5},
		{"the same alert twice in one batch", "", nil,
			[]sdk.Event{alertEvent("a", "firing", 0), alertEvent("a", "firing", 0)}, 1},
		{"positioned lines", "", []sdk.Event{positioned("web", "c1.x", 1), positioned("web", "c1.x", 2), positioned("api", "c2.x", 1)},
			[]sdk.Event{positioned("web", "c1.x", 2), positioned("api", "c2.x", 1), positioned("web", "c1.x", 3),
				positioned("api", "c3.y", 1)}, 5},
		{"lines without a position are written again", "", []sdk.Event{logEvent(1)}, []sdk.Event{logEvent(1)}, 2},
		{"records in the file rotated away", "max_bytes = 600\n",
			[]sdk.Event{alertEvent("a", "firing", 0), alertEvent("b", "firing", 0)},
			[]sdk.Event{alertEvent("b", "firing", 0), alertEvent("c", "firing", 0)}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "out.jsonl")
			state := t.TempDir()
			s := sdktest.NewSink(t, jsonl.Component(), config(path, tt.extra), sdktest.WithDataDir(state))
			for i, e := range tt.first {
				if err := s.WriteBatch(sdk.Batch{ID: uint64(100 + i), Events: []sdk.Event{e}}); err != nil {
					t.Fatal(err)
				}
			}
			_ = s.Close()
			// The restarted agent numbers its batches anew.
			s2 := sdktest.NewSink(t, jsonl.Component(), config(path, tt.extra), sdktest.WithDataDir(state))
			if err := s2.WriteBatch(sdk.Batch{ID: 1, Events: tt.replay}); err != nil {
				t.Fatal(err)
			}
			got := len(readLines(t, path))
			if _, err := os.Stat(path + ".1"); err == nil {
				got += len(readLines(t, path+".1"))
			}
			if got != tt.want {
				t.Fatalf("%d records, want %d:\n%s", got, tt.want, strings.Join(readLines(t, path), "\n"))
			}
		})
	}
}

// TestDiskFull: a batch that does not fit fails and leaves nothing behind; once space
// returns, its retry is written once.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("TDA_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("a full disk needs a tmpfs, which needs root")
		}
		t.Skip("a full disk needs a tmpfs, which needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	path := filepath.Join(dir, "alerts.jsonl")
	s := sdktest.NewSink(t, jsonl.Component(), config(path, ""), sdktest.WithDataDir(t.TempDir()))
	var batch []sdk.Event
	for i := 0; i < 1000; i++ {
		batch = append(batch, alertEvent(fmt.Sprint("fp", i), "firing", 0))
	}
	err := s.WriteBatch(sdk.Batch{ID: 1, Events: batch})
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("write to a full disk: %v", err)
	}
	if st, _ := os.Stat(path); st.Size() != 0 {
		t.Fatalf("a failed batch left %d bytes", st.Size())
	}
	if out, err := exec.Command("mount", "-o", "remount,size=2m", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	if err := s.WriteBatch(sdk.Batch{ID: 1, Events: batch}); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteBatch(sdk.Batch{ID: 2, Events: batch[:10]}); err != nil {
		t.Fatal(err)
	}
	if n := len(readLines(t, path)); n != 1000 {
		t.Fatalf("%d records, want 1000", n)
	}
}
