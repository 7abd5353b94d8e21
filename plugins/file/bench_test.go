package file_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/plugins/file"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

// countingOutput is an sdk.Output that counts what a source emits and drops it, to measure
// the source alone.
type countingOutput struct {
	lines, bytes atomic.Int64
	cps          map[string][]byte
}

func (o *countingOutput) Checkpoints() map[string][]byte { return o.cps }
func (o *countingOutput) SetStatus(sdk.Status)           {}
func (o *countingOutput) Emit(_ context.Context, events []sdk.Event, _ ...sdk.Checkpoint) error {
	var n int64
	for i := range events {
		n += int64(len(events[i].Line)) + 1
	}
	o.lines.Add(int64(len(events)))
	o.bytes.Add(n)
	return nil
}

// realisticLine appends a log line in the style of the corpus (Spring Boot and Flask).
func realisticLine(b []byte, i int) []byte {
	switch i % 4 {
	case 0:
		return fmt.Appendf(b, "2026-11-29T10:%02d:%02d.%03dZ  INFO 1 --- [nio-8080-exec-%d] c.e.demo.web.OrderController             : order %d listed in %dms\n",
			i/60%60, i%60, i%1000, i%10, i*7919%100000, i%90)
	case 1:
		return fmt.Appendf(b, "[2026-11-29 10:%02d:%02d,%03d] INFO in auth: password_changed user_id=%d actor=u%d actor_role=user ip=10.1.%d.%d\n",
			i/60%60, i%60, i%1000, i%5000, i%97, i%256, i*31%256)
	case 2:
		return fmt.Appendf(b, "10.0.%d.%d - - [29/Nov/2026:10:%02d:%02d +0000] \"GET /api/orders/%d HTTP/1.1\" 200 %d \"-\" \"curl/8.5.0\"\n",
			i%256, i*13%256, i/60%60, i%60, i, 200+i%3000)
	default:
		return fmt.Appendf(b, "2026-11-29T10:%02d:%02d.%03dZ  WARN 1 --- [nio-8080-exec-%d] o.s.s.a.event.LoggerListener             : Authentication event AuthenticationFailureBadCredentialsEvent: u%d\n",
			i/60%60, i%60, i%1000, i%10, i%1000)
	}
}

func writeRealistic(tb testing.TB, path string, from, n int) int64 {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var b []byte
	var total int64
	for i := from; i < from+n; i++ {
		b = realisticLine(b[:0], i)
		total += int64(len(b))
		_, _ = w.Write(b)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
	return total
}

func newSource(tb testing.TB, src string) sdk.Source {
	tb.Helper()
	inst, diags := file.Component().NewInstance(sdktest.Config(tb, file.Component(), src), sdk.Resources{})
	if diags.HasErrors() {
		tb.Fatal(diags.Err())
	}
	return inst.Source
}

func maxRSSMB() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Maxrss) / 1024
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLargeFile reads one file of 1,000,000 realistic lines to its end, with the source
// alone (events counted and dropped) and through the plugin protocol (sdktest, gRPC).
func BenchmarkLargeFile(b *testing.B) {
	const lines = 1_000_000
	dir := tempDir(b)
	path := filepath.Join(dir, "big.log")
	size := writeRealistic(b, path, 0, lines)
	cfg := config([]string{path}, "follow = false")
	b.Run("source", func(b *testing.B) {
		b.SetBytes(size)
		cpu := cpuTime()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			out := &countingOutput{}
			if err := newSource(b, cfg).Run(context.Background(), out); err != nil {
				b.Fatal(err)
			}
			if out.lines.Load() != lines {
				b.Fatalf("read %d lines, want %d", out.lines.Load(), lines)
			}
		}
		el := time.Since(start).Seconds()
		b.ReportMetric(float64(lines*b.N)/el, "lines/s")
		b.ReportMetric(float64(cpuTime()-cpu)/float64(time.Microsecond)/float64(lines*b.N), "cpu-µs/line")
		b.ReportMetric(maxRSSMB(), "peak-RSS-MB")
	})
	b.Run("grpc", func(b *testing.B) {
		b.SetBytes(size)
		start := time.Now()
		for i := 0; i < b.N; i++ {
			s := sdktest.NewSource(b, file.Component(), cfg, sdktest.WithMode(sdktest.GRPC),
				sdktest.WithLogger(hclog.NewNullLogger()))
			s.Start(nil)
			n := 0
			for {
				ev, ok := s.Next(30 * time.Second)
				if !ok {
					break
				}
				n += len(ev)
			}
			if n != lines {
				b.Fatalf("read %d lines, want %d", n, lines)
			}
		}
		b.ReportMetric(float64(lines*b.N)/time.Since(start).Seconds(), "lines/s")
	})
}

// BenchmarkHundredFilesWritten follows 100 files while 100 writers append 2,000 realistic
// lines each in 64 KiB writes, and measures until every line was emitted.
func BenchmarkHundredFilesWritten(b *testing.B) {
	const files, perFile = 100, 2000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := tempDir(b)
		for f := 0; f < files; f++ {
			appendFile(b, filepath.Join(dir, fmt.Sprintf("app-%03d.log", f)), "")
		}
		out := &countingOutput{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- newSource(b, config([]string{filepath.Join(dir, "*.log")}, "")).Run(ctx, out) }()
		time.Sleep(200 * time.Millisecond)
		b.StartTimer()
		start := time.Now()
		cpu := cpuTime()
		var wg sync.WaitGroup
		var written atomic.Int64
		for f := 0; f < files; f++ {
			wg.Add(1)
			go func(f int) {
				defer wg.Done()
				fh, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("app-%03d.log", f)), os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					b.Error(err)
					return
				}
				defer fh.Close()
				var buf []byte
				for l := 0; l < perFile; l++ {
					buf = realisticLine(buf, l)
					if len(buf) > 64<<10 || l == perFile-1 {
						_, _ = fh.Write(buf)
						written.Add(int64(len(buf)))
						buf = buf[:0]
					}
				}
			}(f)
		}
		wg.Wait()
		for out.lines.Load() < files*perFile {
			time.Sleep(time.Millisecond)
		}
		el := time.Since(start).Seconds()
		used := cpuTime() - cpu
		b.StopTimer()
		cancel()
		<-done
		if out.lines.Load() != files*perFile {
			b.Fatalf("read %d lines, want %d", out.lines.Load(), files*perFile)
		}
		b.ReportMetric(float64(files*perFile)/el, "lines/s")
		b.ReportMetric(float64(written.Load())/el/1e6, "MB/s")
		b.ReportMetric(float64(used)/float64(time.Microsecond)/float64(files*perFile), "cpu-µs/line-incl-writers")
	}
}

// BenchmarkIdleThousandFiles follows 1,000 files that have been read and stay quiet, and
// reports the CPU the process uses meanwhile.
func BenchmarkIdleThousandFiles(b *testing.B) {
	const files = 1000
	dir := tempDir(b)
	for f := 0; f < files; f++ {
		appendFile(b, filepath.Join(dir, fmt.Sprintf("quiet-%04d.log", f)), "one line\n")
	}
	out := &countingOutput{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- newSource(b, config([]string{filepath.Join(dir, "*.log")}, "")).Run(ctx, out) }()
	deadline := time.Now().Add(30 * time.Second)
	for out.lines.Load() < files && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	b.ResetTimer()
	window := 12 * time.Second // more than one rescan_interval
	cpu := cpuTime()
	time.Sleep(window)
	used := cpuTime() - cpu
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(used)/float64(time.Millisecond)/window.Seconds(), "cpu-ms/s")
	b.ReportMetric(maxRSSMB(), "peak-RSS-MB")
}

// latencyOutput records, for lines that carry their write time, how long they took to be
// emitted.
type latencyOutput struct {
	mu   sync.Mutex
	lats []time.Duration
}

func (o *latencyOutput) Checkpoints() map[string][]byte { return nil }
func (o *latencyOutput) SetStatus(sdk.Status)           {}
func (o *latencyOutput) Emit(_ context.Context, events []sdk.Event, _ ...sdk.Checkpoint) error {
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, e := range events {
		var ns int64
		if _, err := fmt.Sscanf(string(e.Line), "t=%d", &ns); err == nil {
			o.lats = append(o.lats, now.Sub(time.Unix(0, ns)))
		}
	}
	return nil
}

// BenchmarkLatency appends one line every 2 ms to one of 10 followed files and reports how
// long a line takes from its write to its emission (p50, p99).
func BenchmarkLatency(b *testing.B) {
	const lines = 2000
	dir := tempDir(b)
	var fhs []*os.File
	for f := 0; f < 10; f++ {
		fh, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("app-%d.log", f)), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = fh.WriteString("first\n")
		defer fh.Close()
		fhs = append(fhs, fh)
	}
	out := &latencyOutput{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- newSource(b, config([]string{filepath.Join(dir, "*.log")}, "")).Run(ctx, out) }()
	time.Sleep(300 * time.Millisecond)
	b.ResetTimer()
	for i := 0; i < lines; i++ {
		_, _ = fmt.Fprintf(fhs[i%len(fhs)], "t=%d line %d\n", time.Now().UnixNano(), i)
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	b.StopTimer()
	cancel()
	<-done
	out.mu.Lock()
	lats := append([]time.Duration(nil), out.lats...)
	out.mu.Unlock()
	if len(lats) != lines {
		b.Fatalf("%d of %d lines emitted", len(lats), lines)
	}
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	b.ReportMetric(float64(lats[len(lats)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds()), "p99-µs")
}
