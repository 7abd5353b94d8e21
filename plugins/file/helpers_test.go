package file_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/file"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

func modes() map[string]sdktest.Mode {
	return map[string]sdktest.Mode{"grpc": sdktest.GRPC, "direct": sdktest.Direct}
}

// config returns an HCL body for the source with the given paths and extra attributes.
func config(paths []string, extra string) string {
	q := make([]string, len(paths))
	for i, p := range paths {
		q[i] = fmt.Sprintf("%q", p)
	}
	return fmt.Sprintf("paths = [%s]\n%s\n", strings.Join(q, ", "), extra)
}

// start configures and starts a source over paths.
func start(t *testing.T, mode sdktest.Mode, paths []string, extra string, cps map[string][]byte) *sdktest.Source {
	t.Helper()
	s := sdktest.NewSource(t, file.Component(), config(paths, extra), sdktest.WithMode(mode))
	s.Start(cps)
	return s
}

func appendFile(t testing.TB, path, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func numbered(prefix string, from, n int) string {
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, "%s %06d\n", prefix, i)
	}
	return b.String()
}

func lineStrings(events []sdk.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = string(e.Line)
	}
	return out
}

// collect reads until n events arrived or the timeout passed, and fails on a shortfall.
func collect(t *testing.T, s *sdktest.Source, n int, timeout time.Duration) []sdk.Event {
	t.Helper()
	got := s.Collect(n, timeout)
	if len(got) < n {
		t.Fatalf("got %d events, want %d; last: %q", len(got), n, lastLines(got, 3))
	}
	return got
}

func lastLines(events []sdk.Event, n int) []string {
	l := lineStrings(events)
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return l
}

// quiet asserts that no event arrives within d.
func quiet(t *testing.T, s *sdktest.Source, d time.Duration) {
	t.Helper()
	if extra := s.Collect(1, d); len(extra) > 0 {
		t.Fatalf("unexpected events: %q", lineStrings(extra))
	}
}

func tempDir(t testing.TB) string {
	t.Helper()
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}
