package logfile_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/internal/logpos"
	"github.com/tda-dev/tda/plugins/logfile"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

var t0 = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

// line is the i-th line of origin; with a stream it carries log_position stream:i.
func line(origin, stream string, i int) sdk.Event {
	e := sdk.Event{Time: t0.Add(time.Duration(i) * time.Millisecond), Kind: sdk.KindLog, Origin: origin,
		Line: []byte(fmt.Sprintf("%s line %d", origin, i))}
	if stream != "" {
		e.SetField(logpos.Field, logpos.Format(stream, uint64(i)))
	}
	return e
}

func lines(origin, stream string, from, to int) []sdk.Event {
	var out []sdk.Event
	for i := from; i <= to; i++ {
		out = append(out, line(origin, stream, i))
	}
	return out
}

func newSink(t *testing.T, dir, state string) *sdktest.Sink {
	t.Helper()
	return sdktest.NewSink(t, logfile.Component(), "dir = \""+dir+"\"", sdktest.WithDataDir(state))
}

// content returns a file's lines without their timestamps.
func content(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if l == "" {
			continue
		}
		_, rest, _ := strings.Cut(l, " ")
		out = append(out, rest)
	}
	return out
}

func want(origin string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("%s line %d", origin, i))
	}
	return out
}

func same(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestRetriesAndReplaysAreWrittenOnce: a retry with the delivery id of the last batch, and
// lines a source delivers again with the positions they had, are not written again; lines
// without a position, or of a new stream, are.
func TestRetriesAndReplaysAreWrittenOnce(t *testing.T) {
	tests := []struct {
		name    string
		batches []sdk.Batch
		want    []string
	}{
		{"retry of the last batch", []sdk.Batch{
			{ID: 7, Events: lines("web", "", 1, 3)},
			{ID: 7, Events: lines("web", "", 1, 3)},
		}, want("web", 1, 3)},
		{"replay after a crash overlaps what was written", []sdk.Batch{
			{ID: 1, Events: lines("web", "c1.a", 1, 5)},
			{ID: 2, Events: lines("web", "c1.a", 3, 8)},
		}, want("web", 1, 8)},
		{"replay of lines all written", []sdk.Batch{
			{ID: 1, Events: lines("web", "c1.a", 1, 5)},
			{ID: 2, Events: lines("web", "c1.a", 1, 5)},
		}, want("web", 1, 5)},
		{"a new stream starts over", []sdk.Batch{
			{ID: 1, Events: lines("web", "c1.a", 1, 3)},
			{ID: 2, Events: lines("web", "c2.b", 1, 2)},
		}, append(want("web", 1, 3), want("web", 1, 2)...)},
		{"lines without a position are always written", []sdk.Batch{
			{ID: 1, Events: lines("web", "", 1, 2)},
			{ID: 2, Events: lines("web", "", 1, 2)},
		}, append(want("web", 1, 2), want("web", 1, 2)...)},
		{"an earlier delivery id is not a retry", []sdk.Batch{
			{ID: 5, Events: lines("web", "", 1, 1)},
			{ID: 6, Events: lines("web", "", 2, 2)},
			{ID: 5, Events: lines("web", "", 3, 3)},
		}, want("web", 1, 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := newSink(t, dir, t.TempDir())
			for _, b := range tt.batches {
				if err := s.WriteBatch(b); err != nil {
					t.Fatal(err)
				}
			}
			same(t, "web.log", content(t, filepath.Join(dir, "web.log")), tt.want)
		})
	}
}

// TestRestartCutsTheUnacknowledgedTail: what a crash left after the last acknowledged batch
// (a whole batch, or a torn line) is removed on start, and the batch the agent sends again is
// then written once — with or without positions.
func TestRestartCutsTheUnacknowledgedTail(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		tail   string
	}{
		{"torn line, no positions", "", "2026-11-29T10:00:00.004000000Z web li"},
		{"whole unacknowledged lines, no positions", "", "2026-11-29T10:00:00.004000000Z web line 4\n"},
		{"whole unacknowledged lines, positions", "c1.a", "2026-11-29T10:00:00.004000000Z web line 4\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, state := t.TempDir(), t.TempDir()
			s := newSink(t, dir, state)
			if err := s.WriteBatch(sdk.Batch{ID: 1, Events: lines("web", tt.stream, 1, 3)}); err != nil {
				t.Fatal(err)
			}
			_ = s.Close()
			appendTo(t, filepath.Join(dir, "web.log"), tt.tail)
			s2 := newSink(t, dir, state)
			same(t, "after the restart", content(t, filepath.Join(dir, "web.log")), want("web", 1, 3))
			if err := s2.WriteBatch(sdk.Batch{ID: 9, Events: lines("web", tt.stream, 4, 5)}); err != nil {
				t.Fatal(err)
			}
			same(t, "after the resend", content(t, filepath.Join(dir, "web.log")), want("web", 1, 5))
		})
	}
}

// TestCrashWhileCreatingAFile: a file the crashed batch created is recorded empty before it is
// written, so its lines are removed on start and written once by the resend.
func TestCrashWhileCreatingAFile(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	s := newSink(t, dir, state)
	if err := s.WriteBatch(sdk.Batch{ID: 1, Events: lines("web", "", 1, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteBatch(sdk.Batch{ID: 2, Events: lines("api", "", 1, 2)}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	// Roll the record back to before batch 2's data, as if the crash came between the
	// registration of api.log and the record of the write.
	rec, err := os.ReadFile(filepath.Join(state, "logfile.state"))
	if err != nil {
		t.Fatal(err)
	}
	rolled := regexp.MustCompile(`"api.log":\{"size":\d+`).ReplaceAllString(string(rec), `"api.log":{"size":0`)
	if rolled == string(rec) {
		t.Fatalf("record %s does not hold api.log as expected", rec)
	}
	if err := os.WriteFile(filepath.Join(state, "logfile.state"), []byte(rolled), 0o600); err != nil {
		t.Fatal(err)
	}
	s2 := newSink(t, dir, state)
	if got := content(t, filepath.Join(dir, "api.log")); len(got) != 0 {
		t.Fatalf("api.log kept unacknowledged lines %q", got)
	}
	if err := s2.WriteBatch(sdk.Batch{ID: 3, Events: lines("api", "", 1, 2)}); err != nil {
		t.Fatal(err)
	}
	same(t, "api.log", content(t, filepath.Join(dir, "api.log")), want("api", 1, 2))
	same(t, "web.log", content(t, filepath.Join(dir, "web.log")), want("web", 1, 1))
}

// TestFilesChangedOutsideTda: a file shorter than recorded (truncated by hand) forgets its
// positions, so lines sent again are written, never skipped; a damaged record is reported
// and the files are taken as they are; a file that was there before the sink's first start
// keeps its complete lines.
func TestFilesChangedOutsideTda(t *testing.T) {
	t.Run("truncated by hand", func(t *testing.T) {
		dir, state := t.TempDir(), t.TempDir()
		s := newSink(t, dir, state)
		if err := s.WriteBatch(sdk.Batch{ID: 1, Events: lines("web", "c1.a", 1, 3)}); err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		if err := os.Truncate(filepath.Join(dir, "web.log"), 0); err != nil {
			t.Fatal(err)
		}
		s2 := newSink(t, dir, state)
		if err := s2.WriteBatch(sdk.Batch{ID: 2, Events: lines("web", "c1.a", 2, 3)}); err != nil {
			t.Fatal(err)
		}
		same(t, "web.log", content(t, filepath.Join(dir, "web.log")), want("web", 2, 3))
	})
	t.Run("dir changed", func(t *testing.T) {
		dir, other, state := t.TempDir(), t.TempDir(), t.TempDir()
		s := newSink(t, dir, state)
		if err := s.WriteBatch(sdk.Batch{ID: 1, Events: lines("web", "c1.a", 1, 1)}); err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		// Another directory holds a longer file of the same name: it is not cut back.
		appendTo(t, filepath.Join(other, "web.log"), "2026-11-29T10:00:00Z kept 1\n2026-11-29T10:00:00Z kept 2\n")
		s2 := newSink(t, other, state)
		if err := s2.WriteBatch(sdk.Batch{ID: 2, Events: lines("web", "c1.a", 1, 1)}); err != nil {
			t.Fatal(err)
		}
		same(t, "web.log", content(t, filepath.Join(other, "web.log")), append([]string{"kept 1", "kept 2"}, want("web", 1, 1)...))
	})
	t.Run("damaged record", func(t *testing.T) {
		dir, state := t.TempDir(), t.TempDir()
		appendTo(t, filepath.Join(dir, "web.log"), "2026-11-29T10:00:00Z old\n2026-11-29T10:00:00Z torn")
		if err := os.WriteFile(filepath.Join(state, "logfile.state"), []byte("{not json"), 0o600); err != nil {
			t.Fatal(err)
		}
		s := newSink(t, dir, state)
		if err := s.WriteBatch(sdk.Batch{ID: 1, Events: lines("web", "c1.a", 1, 1)}); err != nil {
			t.Fatal(err)
		}
		same(t, "web.log", content(t, filepath.Join(dir, "web.log")), append([]string{"old"}, want("web", 1, 1)...))
	})
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestDiskFull: on a full disk a batch fails as a whole (the file is cut back, nothing torn is
// left), and once space returns the retry writes every line once.
func TestDiskFull(t *testing.T) {
	dir := mountTmpfs(t, "64k")
	s := newSink(t, dir, t.TempDir())
	big := lines("web", "c1.a", 1, 3000) // about 110 KB
	err := s.WriteBatch(sdk.Batch{ID: 1, Events: big})
	if err == nil || !strings.Contains(err.Error(), syscall.ENOSPC.Error()) {
		t.Fatalf("write to a full disk: %v, want ENOSPC", err)
	}
	if got := content(t, filepath.Join(dir, "web.log")); len(got) != 0 {
		t.Fatalf("a failed batch left %d lines behind", len(got))
	}
	if err := s.WriteBatch(sdk.Batch{ID: 2, Events: big[:100]}); err != nil {
		t.Fatalf("a batch that fits: %v", err)
	}
	// Space returns: the disk grows.
	if out, err := exec.Command("mount", "-o", "remount,size=1m", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v %s", err, out)
	}
	if err := s.WriteBatch(sdk.Batch{ID: 1, Events: big}); err != nil {
		t.Fatal(err)
	}
	same(t, "web.log", content(t, filepath.Join(dir, "web.log")), want("web", 1, 3000))
}

// mountTmpfs mounts a tmpfs of the given size (needs root) and unmounts it at the end.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("TDA_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("a full disk needs a tmpfs, which needs root")
		}
		t.Skip("a full disk needs a tmpfs, which needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("TDA_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("mount tmpfs: %v %s", err, out)
		}
		t.Skipf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}
