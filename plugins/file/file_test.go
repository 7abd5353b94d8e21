package file_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/file"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

func TestFollowAndResume(t *testing.T) {
	for name, mode := range modes() {
		t.Run(name, func(t *testing.T) {
			dir := tempDir(t)
			path := filepath.Join(dir, "app.log")
			appendFile(t, path, numbered("a", 0, 100))
			s := start(t, mode, []string{filepath.Join(dir, "*.log")}, "", nil)
			got := collect(t, s, 100, 5*time.Second)
			if got[0].Kind != sdk.KindLog || got[0].Origin != path || got[0].Time.IsZero() ||
				got[0].Source != "file.test" || got[0].Stream != "" || len(got[0].Fields) != 0 {
				t.Fatalf("unexpected first event %+v", got[0])
			}
			if !reflect.DeepEqual(lineStrings(got), strings.Split(strings.TrimSuffix(numbered("a", 0, 100), "\n"), "\n")) {
				t.Fatalf("lines differ: %q", lastLines(got, 3))
			}
			appendFile(t, path, numbered("a", 100, 50))
			got = collect(t, s, 50, 5*time.Second)
			if string(got[0].Line) != "a 000100" || string(got[49].Line) != "a 000149" {
				t.Fatalf("follow gave %q ... %q", got[0].Line, got[49].Line)
			}
			s.Stop()
			cps := s.Checkpoints()
			if len(cps) != 1 {
				t.Fatalf("want one checkpoint entry, got %v", cps)
			}
			appendFile(t, path, numbered("a", 150, 10))
			s2 := start(t, mode, []string{filepath.Join(dir, "*.log")}, "", cps)
			got = collect(t, s2, 10, 5*time.Second)
			if string(got[0].Line) != "a 000150" || string(got[9].Line) != "a 000159" {
				t.Fatalf("resume gave %q", lineStrings(got))
			}
			quiet(t, s2, 300*time.Millisecond)
		})
	}
}

func TestReadFromEnd(t *testing.T) {
	dir := tempDir(t)
	path := filepath.Join(dir, "app.log")
	appendFile(t, path, numbered("old", 0, 20)+"half of a line")
	s := start(t, sdktest.Direct, []string{path}, `read_from = "end"`, nil)
	// The first batch carries only the starting checkpoint.
	quiet(t, s, 300*time.Millisecond)
	appendFile(t, path, " ends here\n"+numbered("new", 0, 3))
	got := collect(t, s, 3, 5*time.Second)
	if want := []string{"new 000000", "new 000001", "new 000002"}; !reflect.DeepEqual(lineStrings(got), want) {
		t.Fatalf("got %q, want %q", lineStrings(got), want)
	}
	s.Stop()
	// Lines written while stopped are read after a restart, read_from notwithstanding.
	appendFile(t, path, numbered("down", 0, 2))
	s2 := start(t, sdktest.Direct, []string{path}, `read_from = "end"`, s.Checkpoints())
	got = collect(t, s2, 2, 5*time.Second)
	if got[0].Line[0] != 'd' {
		t.Fatalf("got %q", lineStrings(got))
	}
	// A file appearing while running is read from its beginning.
	other := filepath.Join(dir, "other.log")
	s3 := start(t, sdktest.Direct, []string{filepath.Join(dir, "*.log")}, `read_from = "end"`, s2.Checkpoints())
	quiet(t, s3, 200*time.Millisecond)
	appendFile(t, other, numbered("fresh", 0, 2))
	got = collect(t, s3, 2, 5*time.Second)
	if string(got[0].Line) != "fresh 000000" {
		t.Fatalf("new file gave %q", lineStrings(got))
	}
}

func TestOneShotRead(t *testing.T) {
	for name, mode := range modes() {
		t.Run(name, func(t *testing.T) {
			dir := tempDir(t)
			a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
			appendFile(t, a, numbered("a", 0, 5000))
			appendFile(t, b, "one\r\ntwo\r\nlast without newline")
			s := start(t, mode, []string{a, b}, "follow = false", nil)
			var all []sdk.Event
			for {
				ev, ok := s.Next(5 * time.Second)
				if !ok {
					break
				}
				all = append(all, ev...)
			}
			if len(all) != 5003 {
				t.Fatalf("got %d events, want 5003", len(all))
			}
			tail := lineStrings(all[5000:])
			if want := []string{"one", "two", "last without newline"}; !reflect.DeepEqual(tail, want) {
				t.Fatalf("b.log gave %q", tail)
			}
			if all[5002].Field("partial") != "true" {
				t.Fatalf("a last line without newline is marked partial, got %v", all[5002].Fields)
			}
		})
	}
}

func TestOneShotMissingFile(t *testing.T) {
	dir := tempDir(t)
	comp := file.Component()
	s := sdktest.NewSource(t, comp, config([]string{filepath.Join(dir, "nope.log")}, "follow = false"), sdktest.WithMode(sdktest.Direct))
	s.Start(nil)
	if ev, ok := s.Next(5 * time.Second); ok {
		t.Fatalf("a missing file gave events %v", ev)
	}
}

func TestGlobsExcludesAndNewFiles(t *testing.T) {
	dir := tempDir(t)
	for _, p := range []string{"a/app.log", "a/b/c/deep.log", "a/skip.log", "a/app.log.1", "a/old.log.gz"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		appendFile(t, filepath.Join(dir, p), p+"\n")
	}
	s := start(t, sdktest.Direct, []string{filepath.Join(dir, "**/*.log*")},
		`exclude = ["skip.*", "`+filepath.Join(dir, "a/*.1")+`"]`, nil)
	got := collect(t, s, 2, 5*time.Second)
	quiet(t, s, 300*time.Millisecond)
	seen := map[string]bool{}
	for _, l := range lineStrings(got) {
		seen[l] = true
	}
	if !seen["a/app.log"] || !seen["a/b/c/deep.log"] || len(seen) != 2 {
		t.Fatalf("matched %v", seen)
	}
	// A file in a directory created later is picked up within a second.
	if err := os.MkdirAll(filepath.Join(dir, "a/new/dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	appendFile(t, filepath.Join(dir, "a/new/dir/late.log"), "late\n")
	got = collect(t, s, 1, time.Second)
	if string(got[0].Line) != "late" || got[0].Origin != filepath.Join(dir, "a/new/dir/late.log") {
		t.Fatalf("late file gave %q from %s", got[0].Line, got[0].Origin)
	}
}

func TestSymlinkedFile(t *testing.T) {
	dir := tempDir(t)
	target := filepath.Join(dir, "real", "target.txt")
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		t.Fatal(err)
	}
	appendFile(t, target, "via link\n")
	link := filepath.Join(dir, "logs", "app.log")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	// A symlinked directory loop must not hang the walk.
	if err := os.Symlink(filepath.Join(dir, "logs"), filepath.Join(dir, "logs", "loop")); err != nil {
		t.Fatal(err)
	}
	s := start(t, sdktest.Direct, []string{filepath.Join(dir, "logs", "**", "*.log")}, "", nil)
	got := collect(t, s, 1, 5*time.Second)
	if string(got[0].Line) != "via link" {
		t.Fatalf("got %q", got[0].Line)
	}
	// Writes to the target are noticed through the target's directory.
	appendFile(t, target, "second\n")
	got = collect(t, s, 1, 2*time.Second)
	if string(got[0].Line) != "second" {
		t.Fatalf("got %q", got[0].Line)
	}
	quiet(t, s, 200*time.Millisecond)
}

func TestValidate(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"missing paths", ``, "Missing required argument"},
		{"bad read_from", `paths = ["x"]` + "\n" + `read_from = "middle"`, `2:13: Unsupported value: read_from must be one of`},
		{"bad glob", `paths = ["a/[b"]`, "pattern a/[b"},
		{"bad exclude", `paths = ["x"]` + "\n" + `exclude = ["{"]`, "2:11: Invalid exclude: pattern {"},
		{"max line", `paths = ["x"]` + "\n" + `max_line_bytes = 0`, "2:18: Invalid max_line_bytes: max_line_bytes must be at least 1"},
		{"bad regexp", `paths = ["x"]` + "\nmultiline {\n  start_pattern = \"(\"\n}", "3:19: Invalid start_pattern: start_pattern is not a valid regular expression"},
		{"no rule", `paths = ["x"]` + "\nmultiline {}", "multiline needs start_pattern or preset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := strings.Join(sdktest.Validate(t, file.Component(), tt.src), "\n")
			if !strings.Contains(diags, tt.want) {
				t.Fatalf("diagnostics %q do not contain %q", diags, tt.want)
			}
		})
	}
	if d := sdktest.Validate(t, file.Component(), `paths = ["/var/log/*.log"]`+"\nmultiline {\n preset = \"java\"\n}"); len(d) != 0 {
		t.Fatalf("valid config reported %v", d)
	}
}
