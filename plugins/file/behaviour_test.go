package file_test

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

func TestLineHandling(t *testing.T) {
	for name, mode := range modes() {
		t.Run(name, func(t *testing.T) {
			dir := tempDir(t)
			path := filepath.Join(dir, "app.log")
			long := strings.Repeat("x", 100)
			appendFile(t, path, "crlf\r\nnul\x00byte\nbad \xff utf8\n"+long+"\nshort\n\n")
			s := start(t, mode, []string{path}, "max_line_bytes = 40\npartial_line_timeout = \"300ms\"", nil)
			got := collect(t, s, 6, 5*time.Second)
			want := []string{"crlf", "nul\x00byte", "bad \xff utf8", long[:40], "short", ""}
			if !reflect.DeepEqual(lineStrings(got), want) {
				t.Fatalf("got %q, want %q", lineStrings(got), want)
			}
			if got[3].Field("truncated") != "true" || got[4].Fields != nil {
				t.Fatalf("truncation marks: %v %v", got[3].Fields, got[4].Fields)
			}
			// A long line written in pieces is cut once and its rest skipped.
			for i := 0; i < 5; i++ {
				appendFile(t, path, strings.Repeat("y", 30))
				time.Sleep(20 * time.Millisecond)
			}
			appendFile(t, path, "\nafter\n")
			got = collect(t, s, 2, 5*time.Second)
			if want := []string{strings.Repeat("y", 40), "after"}; !reflect.DeepEqual(lineStrings(got), want) {
				t.Fatalf("got %q, want %q", lineStrings(got), want)
			}
			// A partial line waits for its newline...
			appendFile(t, path, "begin ")
			quiet(t, s, 100*time.Millisecond)
			appendFile(t, path, "end\n")
			got = collect(t, s, 1, 2*time.Second)
			if string(got[0].Line) != "begin end" || got[0].Fields != nil {
				t.Fatalf("got %q %v", got[0].Line, got[0].Fields)
			}
			// ... and is emitted after partial_line_timeout.
			appendFile(t, path, "no newline")
			start := time.Now()
			got = collect(t, s, 1, 2*time.Second)
			if string(got[0].Line) != "no newline" || got[0].Field("partial") != "true" || time.Since(start) < 250*time.Millisecond {
				t.Fatalf("got %q %v after %v", got[0].Line, got[0].Fields, time.Since(start))
			}
			appendFile(t, path, " rest\n")
			got = collect(t, s, 1, 2*time.Second)
			if string(got[0].Line) != " rest" {
				t.Fatalf("got %q", got[0].Line)
			}
		})
	}
}

// TestResumeInsideTruncatedLine stops while the rest of an over-long line is being skipped.
func TestResumeInsideTruncatedLine(t *testing.T) {
	dir := tempDir(t)
	path := filepath.Join(dir, "app.log")
	appendFile(t, path, strings.Repeat("z", 50))
	s := start(t, sdktest.Direct, []string{path}, "max_line_bytes = 10", nil)
	got := collect(t, s, 1, 5*time.Second)
	if string(got[0].Line) != strings.Repeat("z", 10) {
		t.Fatalf("got %q", got[0].Line)
	}
	s.Stop()
	appendFile(t, path, strings.Repeat("z", 50)+"\nnext\n")
	s2 := start(t, sdktest.Direct, []string{path}, "max_line_bytes = 10", s.Checkpoints())
	got = collect(t, s2, 1, 5*time.Second)
	if string(got[0].Line) != "next" {
		t.Fatalf("got %q", lineStrings(got))
	}
	quiet(t, s2, 200*time.Millisecond)
}

func TestRenameKeepsOffset(t *testing.T) {
	dir := tempDir(t)
	path := filepath.Join(dir, "app.log")
	appendFile(t, path, numbered("a", 0, 10))
	pattern := []string{filepath.Join(dir, "app.log*")}
	s := start(t, sdktest.Direct, pattern, "", nil)
	collect(t, s, 10, 5*time.Second)
	s.Stop()
	// Rotated while tda was down: the renamed file keeps its offset, the new one is read whole.
	appendFile(t, path, numbered("a", 10, 5))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, numbered("b", 0, 3))
	s2 := start(t, sdktest.Direct, pattern, "", s.Checkpoints())
	got := collect(t, s2, 8, 5*time.Second)
	quiet(t, s2, 200*time.Millisecond)
	var a, b []string
	for _, e := range got {
		if e.Line[0] == 'a' {
			a = append(a, string(e.Line))
			if e.Origin != path+".1" {
				t.Fatalf("origin %s", e.Origin)
			}
		} else {
			b = append(b, string(e.Line))
		}
	}
	if len(a) != 5 || a[0] != "a 000010" || len(b) != 3 {
		t.Fatalf("a=%q b=%q", a, b)
	}
}

func TestRotatedWhileDownNotMatched(t *testing.T) {
	dir := tempDir(t)
	path := filepath.Join(dir, "app.log")
	appendFile(t, path, numbered("a", 0, 10))
	s := start(t, sdktest.Direct, []string{path}, `rotate_wait = "100ms"`, nil)
	collect(t, s, 10, 5*time.Second)
	s.Stop()
	appendFile(t, path, numbered("a", 10, 5))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, numbered("b", 0, 3))
	s2 := start(t, sdktest.Direct, []string{path}, `rotate_wait = "100ms"`, s.Checkpoints())
	got := collect(t, s2, 8, 5*time.Second)
	quiet(t, s2, 300*time.Millisecond)
	want := append(strings.Split(strings.TrimSpace(numbered("a", 10, 5)), "\n"), strings.Split(strings.TrimSpace(numbered("b", 0, 3)), "\n")...)
	if !reflect.DeepEqual(lineStrings(got), want) {
		t.Fatalf("got %q, want %q", lineStrings(got), want)
	}
}

func TestCopytruncateWhileDown(t *testing.T) {
	dir := tempDir(t)
	path := filepath.Join(dir, "app.log")
	appendFile(t, path, numbered("a", 0, 10))
	s := start(t, sdktest.Direct, []string{path}, `rotate_wait = "100ms"`, nil)
	collect(t, s, 10, 5*time.Second)
	s.Stop()
	appendFile(t, path, numbered("a", 10, 5))
	if err := copyFile(path, path+"-20261130"); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, numbered("b", 0, 3))
	s2 := start(t, sdktest.Direct, []string{path}, `rotate_wait = "100ms"`, s.Checkpoints())
	got := collect(t, s2, 8, 5*time.Second)
	quiet(t, s2, 300*time.Millisecond)
	want := append(strings.Split(strings.TrimSpace(numbered("a", 10, 5)), "\n"), strings.Split(strings.TrimSpace(numbered("b", 0, 3)), "\n")...)
	if !reflect.DeepEqual(lineStrings(got), want) {
		t.Fatalf("got %q, want %q", lineStrings(got), want)
	}
}

func TestTruncationRestartsAtZero(t *testing.T) {
	for name, mode := range modes() {
		t.Run(name, func(t *testing.T) {
			dir := tempDir(t)
			path := filepath.Join(dir, "app.log")
			appendFile(t, path, numbered("first", 0, 50))
			s := start(t, mode, []string{path}, "", nil)
			collect(t, s, 50, 5*time.Second)
			// Truncated and written again past the old offset before tda looks: the marker
			// before the offset no longer matches, so the file is read from its start.
			if err := os.WriteFile(path, []byte(numbered("second-generation", 0, 60)), 0o644); err != nil {
				t.Fatal(err)
			}
			got := collect(t, s, 60, 5*time.Second)
			if string(got[0].Line) != "second-generation 000000" {
				t.Fatalf("got %q", lastLines(got, 60)[0])
			}
			quiet(t, s, 200*time.Millisecond)
		})
	}
}

func TestRecycledInodeAfterRestart(t *testing.T) {
	dir := tempDir(t)
	path := filepath.Join(dir, "app.log")
	appendFile(t, path, numbered("same prefix", 0, 20))
	s := start(t, sdktest.Direct, []string{path}, "", nil)
	collect(t, s, 20, 5*time.Second)
	s.Stop()
	// The same path now holds other content of the same length: read it whole.
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(numbered("same prefix", 0, 20), "000019", "999999")), 0o644); err != nil {
		t.Fatal(err)
	}
	s2 := start(t, sdktest.Direct, []string{path}, "", s.Checkpoints())
	got := collect(t, s2, 20, 5*time.Second)
	if string(got[19].Line) != "same prefix 999999" {
		t.Fatalf("got %q", lastLines(got, 1))
	}
}

func TestDeletedFileIsDrained(t *testing.T) {
	dir := tempDir(t)
	path := filepath.Join(dir, "app.log")
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	_, _ = w.WriteString("before\n")
	s := start(t, sdktest.Direct, []string{path}, `rotate_wait = "1s"`, nil)
	collect(t, s, 1, 5*time.Second)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	_, _ = w.WriteString("written after the delete\n")
	got := collect(t, s, 1, 3*time.Second)
	if string(got[0].Line) != "written after the delete" {
		t.Fatalf("got %q", got[0].Line)
	}
}

func TestMaxOpenFiles(t *testing.T) {
	dir := tempDir(t)
	for i := 0; i < 5; i++ {
		appendFile(t, filepath.Join(dir, string(rune('a'+i))+".log"), "first\n")
	}
	s := start(t, sdktest.Direct, []string{filepath.Join(dir, "*.log")}, "max_open_files = 2", nil)
	collect(t, s, 5, 5*time.Second)
	for round := 0; round < 3; round++ {
		for i := 0; i < 5; i++ {
			appendFile(t, filepath.Join(dir, string(rune('a'+i))+".log"), "more\n")
		}
		got := collect(t, s, 5, 5*time.Second)
		origins := map[string]bool{}
		for _, e := range got {
			origins[e.Origin] = true
		}
		if len(origins) != 5 {
			t.Fatalf("round %d: lines from %d files", round, len(origins))
		}
	}
	quiet(t, s, 200*time.Millisecond)
}

func TestPolling(t *testing.T) {
	dir := tempDir(t)
	path := filepath.Join(dir, "app.log")
	s := start(t, sdktest.Direct, []string{filepath.Join(dir, "*.log")}, "watch = \"poll\"\npoll_interval = \"100ms\"", nil)
	appendFile(t, path, "polled\n")
	got := collect(t, s, 1, 2*time.Second)
	if string(got[0].Line) != "polled" {
		t.Fatalf("got %q", got[0].Line)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "after rotation\n")
	got = collect(t, s, 1, 2*time.Second)
	if string(got[0].Line) != "after rotation" {
		t.Fatalf("got %q", got[0].Line)
	}
}

func TestPruneGoneFiles(t *testing.T) {
	dir := tempDir(t)
	path := filepath.Join(dir, "gone.log")
	appendFile(t, path, "x\n")
	s := start(t, sdktest.Direct, []string{filepath.Join(dir, "*.log")}, "", nil)
	collect(t, s, 1, 5*time.Second)
	s.Stop()
	if len(s.Checkpoints()) != 1 {
		t.Fatalf("checkpoints %v", s.Checkpoints())
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	s2 := start(t, sdktest.Direct, []string{filepath.Join(dir, "*.log")}, "forget_after = \"300ms\"\nrescan_interval = \"100ms\"", s.Checkpoints())
	deadline := time.Now().Add(5 * time.Second)
	for len(s2.Checkpoints()) > 0 && time.Now().Before(deadline) {
		s2.Next(200 * time.Millisecond)
	}
	if len(s2.Checkpoints()) != 0 {
		t.Fatalf("entry of a gone file not pruned: %v", s2.Checkpoints())
	}
}

func TestMultilineJava(t *testing.T) {
	for name, mode := range modes() {
		t.Run(name, func(t *testing.T) {
			dir := tempDir(t)
			path := filepath.Join(dir, "spring.log")
			data, err := os.ReadFile(filepath.Join("testdata", "spring-trace.log"))
			if err != nil {
				t.Fatal(err)
			}
			appendFile(t, path, string(data))
			s := start(t, mode, []string{path}, "multiline {\n  preset = \"java\"\n  timeout = \"200ms\"\n}", nil)
			got := collect(t, s, 4, 5*time.Second)
			quiet(t, s, 300*time.Millisecond)
			want, err := os.ReadFile(filepath.Join("testdata", "spring-trace.golden"))
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, e := range got {
				b.WriteString(strings.ReplaceAll(string(e.Line), "\n", "\\n"))
				b.WriteString("\n")
			}
			if os.Getenv("UPDATE_GOLDEN") != "" {
				_ = os.WriteFile(filepath.Join("testdata", "spring-trace.golden"), []byte(b.String()), 0o644)
			}
			if b.String() != string(want) {
				t.Fatalf("records:\n%s\nwant:\n%s", b.String(), want)
			}
			s.Stop()
			// The pending last record was checkpointed only once emitted: a restart repeats nothing.
			appendFile(t, path, "2026-11-29T10:00:30.000Z  INFO 1 --- [main] x.Y : after restart\n")
			s2 := start(t, mode, []string{path}, "multiline {\n  preset = \"java\"\n  timeout = \"200ms\"\n}", s.Checkpoints())
			got = collect(t, s2, 1, 5*time.Second)
			if !strings.HasSuffix(string(got[0].Line), "after restart") {
				t.Fatalf("got %q", lineStrings(got))
			}
		})
	}
}

func TestMultilineCheckpointMidRecord(t *testing.T) {
	dir := tempDir(t)
	path := filepath.Join(dir, "app.log")
	appendFile(t, path, "START one\n\tat a\nSTART two\n\tat b\n")
	src := "multiline {\n  start_pattern = \"^START\"\n  timeout = \"1h\"\n}"
	s := start(t, sdktest.Direct, []string{path}, src, nil)
	got := collect(t, s, 1, 5*time.Second)
	if string(got[0].Line) != "START one\n\tat a" {
		t.Fatalf("got %q", got[0].Line)
	}
	s.Stop()
	// "START two" was pending: after a restart it is read again, whole.
	appendFile(t, path, "\tat c\nSTART three\n")
	s2 := start(t, sdktest.Direct, []string{path}, src, s.Checkpoints())
	got = collect(t, s2, 1, 5*time.Second)
	if string(got[0].Line) != "START two\n\tat b\n\tat c" {
		t.Fatalf("got %q", got[0].Line)
	}
}

var _ = sdk.KindLog

func TestGzip(t *testing.T) {
	dir := tempDir(t)
	plain := filepath.Join(dir, "app.log")
	appendFile(t, plain, "plain\n")
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte(numbered("zipped", 0, 3000)))
	_ = zw.Close()
	if err := os.WriteFile(filepath.Join(dir, "app.log.1.gz"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// A compressed file without the .gz name is recognised by its magic bytes.
	if err := os.WriteFile(filepath.Join(dir, "app.log.2"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	pattern := []string{filepath.Join(dir, "app.log*")}
	s := start(t, sdktest.Direct, pattern, "", nil)
	got := collect(t, s, 1, 5*time.Second)
	quiet(t, s, 300*time.Millisecond)
	if string(got[0].Line) != "plain" {
		t.Fatalf("got %q", got[0].Line)
	}
	s2 := start(t, sdktest.Direct, pattern, "read_gzip = true\nrescan_interval = \"100ms\"", nil)
	got = collect(t, s2, 6001, 5*time.Second)
	quiet(t, s2, 300*time.Millisecond)
	n := 0
	for _, e := range got {
		if strings.HasPrefix(string(e.Line), "zipped ") {
			n++
		}
	}
	if n != 6000 {
		t.Fatalf("%d decompressed lines, want 6000", n)
	}
	s2.Stop()
	s3 := start(t, sdktest.Direct, pattern, "read_gzip = true", s2.Checkpoints())
	quiet(t, s3, 300*time.Millisecond)
}
