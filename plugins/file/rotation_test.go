package file_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

// rotatingWriter appends numbered lines to path at a steady rate and rotates the file every
// `every` lines, by rename-and-create or by copytruncate, as logrotate does.
type rotatingWriter struct {
	path     string
	total    int
	rate     int // lines per second
	every    int
	truncate bool // copytruncate instead of rename-and-create
}

func (w rotatingWriter) run(t *testing.T, done chan<- error) {
	open := func() (*os.File, error) {
		return os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	}
	f, err := open()
	if err != nil {
		done <- err
		return
	}
	const tick = 10 * time.Millisecond
	perTick := w.rate / int(time.Second/tick)
	next := time.Now()
	rotations := 0
	var buf []byte
	for i := 0; i < w.total; {
		buf = buf[:0]
		for j := 0; j < perTick && i < w.total; j++ {
			if i > 0 && i%w.every == 0 && j > 0 {
				break
			}
			buf = fmt.Appendf(buf, "seq=%07d some payload to make the line look like a log line\n", i)
			i++
		}
		if _, err := f.Write(buf); err != nil {
			done <- err
			return
		}
		if i%w.every == 0 && i < w.total {
			rotations++
			rotated := fmt.Sprintf("%s.%d", w.path, rotations)
			if w.truncate {
				if err := copyFile(w.path, rotated); err != nil {
					done <- err
					return
				}
				if err := os.Truncate(w.path, 0); err != nil {
					done <- err
					return
				}
			} else {
				if err := os.Rename(w.path, rotated); err != nil {
					done <- err
					return
				}
				_ = f.Close()
				if f, err = open(); err != nil {
					done <- err
					return
				}
			}
		}
		next = next.Add(tick)
		time.Sleep(time.Until(next))
	}
	done <- f.Close()
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		return err
	}
	return dst.Close()
}

// checkExactlyOnce fails unless events hold seq 0..total-1 each exactly once.
func checkExactlyOnce(t *testing.T, events []sdk.Event, total int) {
	t.Helper()
	seen := make([]int, total)
	for _, e := range events {
		l := string(e.Line)
		if !strings.HasPrefix(l, "seq=") || len(l) < 11 {
			t.Fatalf("unexpected line %q", l)
		}
		n, err := strconv.Atoi(l[4:11])
		if err != nil || n >= total {
			t.Fatalf("unexpected line %q", l)
		}
		seen[n]++
	}
	var missing, dups []int
	for i, c := range seen {
		if c == 0 {
			missing = append(missing, i)
		} else if c > 1 {
			dups = append(dups, i)
		}
	}
	if len(missing) > 0 || len(dups) > 0 {
		t.Fatalf("%d lines missing (first %v), %d repeated (first %v)", len(missing), head(missing), len(dups), head(dups))
	}
}

func head(l []int) []int {
	if len(l) > 5 {
		return l[:5]
	}
	return l
}

func TestRotationUnderLoad(t *testing.T) {
	for _, tc := range []struct {
		name     string
		truncate bool
	}{{"rename_and_create", false}, {"copytruncate", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const total = 250_000
			dir := tempDir(t)
			path := filepath.Join(dir, "app.log")
			w := rotatingWriter{path: path, total: total, rate: 20_000, every: 100_000, truncate: tc.truncate}
			done := make(chan error, 1)
			appendFile(t, path, "")
			s := start(t, sdktest.GRPC, []string{path}, `rotate_wait = "1s"`, nil)
			go w.run(t, done)
			got := s.Collect(total, 60*time.Second)
			if err := <-done; err != nil {
				t.Fatalf("writer: %v", err)
			}
			got = append(got, s.Collect(1, 500*time.Millisecond)...)
			checkExactlyOnce(t, got, total)
		})
	}
}
