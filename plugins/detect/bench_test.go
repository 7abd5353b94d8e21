package detect_test

import (
	"fmt"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/detect"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

func corpusLines(b testing.TB) (names []string, lines [][][]byte) {
	files, _ := filepath.Glob(filepath.Join("testdata", "corpus", "*.log"))
	for _, f := range files {
		names = append(names, filepath.Base(f))
		lines = append(lines, readLines(b, f))
	}
	return names, lines
}

// cpuTime returns the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkReplayCorpus replays the corpus through the shipped override and rules processors
// in-process (direct calls, and through the real protocol in go-plugin's in-process mode), in
// batches of 1000, and reports lines per second of wall time and CPU microseconds per line.
func BenchmarkReplayCorpus(b *testing.B) {
	blocks := shippedBlocks(b)
	names, files := corpusLines(b)
	total := 0
	for _, f := range files {
		total += len(f)
	}
	var batches [][]sdk.Event
	for i, f := range files {
		for j := 0; j < len(f); j += 1000 {
			batches = append(batches, logEvents(f[j:min(j+1000, len(f))], names[i]))
		}
	}
	for _, mode := range []struct {
		name      string
		m         sdktest.Mode
		rulesOnly bool
	}{{"direct", sdktest.Direct, false}, {"grpc", sdktest.GRPC, false}, {"grpc-rules-only", sdktest.GRPC, true}} {
		b.Run(mode.name, func(b *testing.B) {
			c := newChain(b, blocks["override"], blocks["rules"], mode.m)
			process := c.process
			if mode.rulesOnly {
				process = func(evs []sdk.Event, wm sdk.Watermark) []sdk.Event { return c.rules.ProcessAt(evs, wm) }
			}
			cpu0 := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				for _, batch := range batches {
					for i := range batch {
						batch[i].Fields, batch[i].Time = nil, time.Time{}
					}
					process(batch, sdk.Watermark{})
				}
				process(nil, sdk.Watermark{Final: true})
			}
			lines := float64(total) * float64(b.N)
			b.ReportMetric(lines/b.Elapsed().Seconds(), "lines/s")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/lines, "cpu-us/line")
		})
	}
}

// BenchmarkRulesOnly measures the rules processor alone (parsing included), the configuration
// of the agent's throughput target: a realistic mix of access and app lines, 1% events.
func BenchmarkRulesOnly(b *testing.B) {
	blocks := shippedBlocks(b)
	p := sdktest.NewProcessor(b, detect.RulesComponent(), blocks["rules"], sdktest.WithMode(sdktest.Direct))
	base := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	mk := func(i int) []byte {
		at := base.Add(time.Duration(i) * time.Millisecond)
		switch i % 4 {
		case 0:
			return []byte(fmt.Sprintf(`172.22.0.%d - - [%s] "GET /api/orders HTTP/1.1" 200 -`, i%200, at.Format("02/Jan/2006 15:04:05")))
		case 1:
			return []byte(fmt.Sprintf("%s  INFO 1 --- [nio-8080-exec-4] c.e.demo.web.OrderController             : order %d listed in 2ms", at.Format("2006-01-02T15:04:05.000Z07:00"), i))
		case 2:
			if i%100 == 2 {
				return []byte(fmt.Sprintf("[%s] INFO in auth: password_changed user_id=%d actor=u%d actor_role=user ip=172.22.0.%d", at.Format("2006-01-02 15:04:05,000"), i, i, i%200))
			}
			return []byte(fmt.Sprintf("[%s] INFO in orders: order %d shipped", at.Format("2006-01-02 15:04:05,000"), i))
		default:
			return []byte(fmt.Sprintf(`172.22.0.%d - - [%s] "POST /login HTTP/1.1" 200 -`, i%200, at.Format("02/Jan/2006 15:04:05")))
		}
	}
	const n = 100000
	lines := make([][]byte, n)
	for i := range lines {
		lines[i] = mk(i)
	}
	batches := make([][]sdk.Event, 0, n/1000)
	for j := 0; j < n; j += 1000 {
		batches = append(batches, logEvents(lines[j:j+1000], "app.log"))
	}
	for b.Loop() {
		for _, batch := range batches {
			for i := range batch {
				batch[i].Fields = nil
			}
			p.ProcessAt(batch, sdk.Watermark{})
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(n)/float64(b.N), "ns/line")
}

// distinctIPFailures feeds n failed logins from n distinct IPs, all within one minute, to p in
// batches of 1000 lines generated on the fly (so the input is not counted as memory).
func distinctIPFailures(p *sdktest.Processor, n int) {
	base := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	batch := make([]sdk.Event, 0, 1000)
	for i := 0; i < n; i++ {
		at := base.Add(time.Duration(i) * 59 * time.Second / time.Duration(n))
		ip := fmt.Sprintf("%d.%d.%d.%d", 10+i>>24&0xff, i>>16&0xff, i>>8&0xff, i&0xff)
		line := fmt.Sprintf(`%s - - [%s] "POST /login HTTP/1.1" 401 -`, ip, at.Format("02/Jan/2006 15:04:05"))
		batch = append(batch, sdk.Event{Kind: sdk.KindLog, Source: "file.test", Origin: "access.log", Line: []byte(line)})
		if len(batch) == cap(batch) {
			p.ProcessAt(batch, sdk.Watermark{})
			batch = batch[:0]
		}
	}
	p.ProcessAt(batch, sdk.Watermark{})
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkMemoryDistinctIPs tracks 1,000,000 distinct IPs of failed logins in one window and
// reports the processor's live heap, with max_keys large enough to hold them all and with the
// shipped max_keys (100,000: least-recently-seen keys evicted and counted).
func BenchmarkMemoryDistinctIPs(b *testing.B) {
	for _, maxKeys := range []int{1000000, 100000} {
		b.Run(fmt.Sprintf("max_keys=%d", maxKeys), func(b *testing.B) {
			src := fmt.Sprintf(`
rule "auth_failures" {
  match     = "login_failed"
  threshold = 5
  window    = "60s"
  group_by  = "ip"
  max_keys  = %d
}`, maxKeys)
			for b.Loop() {
				before := heapInUse()
				p := sdktest.NewProcessor(b, detect.RulesComponent(), src, sdktest.WithMode(sdktest.Direct))
				start := time.Now()
				distinctIPFailures(p, 1000000)
				took := time.Since(start)
				after := heapInUse()
				snap := p.Snapshot()
				b.ReportMetric(float64(after-before)/(1<<20), "heap-MB")
				b.ReportMetric(float64(len(snap))/(1<<20), "snapshot-MB")
				b.ReportMetric(1e6/took.Seconds(), "lines/s")
				runtime.KeepAlive(p)
			}
		})
	}
}

// TestMemoryPerKey holds the processor to its memory budget: a million distinct IPs of failed
// logins in one window must stay within 200 MB, so a key may cost at most 200 bytes of live
// heap (measured here on 200,000 keys; BenchmarkMemoryDistinctIPs measures the million).
// Eviction keeps max_keys and counts what it dropped.
func TestMemoryPerKey(t *testing.T) {
	src := `
rule "auth_failures" {
  match     = "login_failed"
  threshold = 5
  window    = "60s"
  group_by  = "ip"
  max_keys  = %d
}`
	const n = 200000
	before := heapInUse()
	r, err := detect.NewRules(mustConfig(t, fmt.Sprintf(src, n)), sdk.Resources{Instance: "processor.rules.mem"})
	if err != nil {
		t.Fatal(err)
	}
	feedDistinct(t, r, n)
	after := heapInUse()
	st := r.Stats()[0]
	perKey := float64(after-before) / n
	t.Logf("%d keys: %.1f MB live heap, %.0f bytes a key, stats %+v", n, float64(after-before)/(1<<20), perKey, st)
	if st.Keys != n || st.Evicted != 0 {
		t.Fatalf("stats %+v", st)
	}
	if perKey > 200 {
		t.Fatalf("%.0f bytes a key: a million keys would not fit in 200 MB", perKey)
	}
	runtime.KeepAlive(r)

	r2, err := detect.NewRules(mustConfig(t, fmt.Sprintf(src, 20000)), sdk.Resources{})
	if err != nil {
		t.Fatal(err)
	}
	feedDistinct(t, r2, 50000)
	if st := r2.Stats()[0]; st.Keys != 20000 || st.Evicted != 30000 {
		t.Fatalf("with max_keys 20000: %+v", st)
	}
}

func mustConfig(t testing.TB, src string) *sdk.Config {
	t.Helper()
	c, diags := sdk.ParseConfig(detect.RulesSpec(), sdktest.Config(t, detect.RulesComponent(), src))
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	return c
}

func feedDistinct(t testing.TB, r *detect.Rules, n int) {
	base := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	batch := make([]sdk.Event, 0, 1000)
	flush := func() {
		if _, err := r.Process(t.Context(), batch, sdk.Watermark{}); err != nil {
			t.Fatal(err)
		}
		batch = batch[:0]
	}
	for i := 0; i < n; i++ {
		at := base.Add(time.Duration(i) * 59 * time.Second / time.Duration(n))
		ip := fmt.Sprintf("%d.%d.%d.%d", 10+i>>24&0xff, i>>16&0xff, i>>8&0xff, i&0xff)
		line := fmt.Sprintf(`%s - - [%s] "POST /login HTTP/1.1" 401 -`, ip, at.Format("02/Jan/2006 15:04:05"))
		batch = append(batch, sdk.Event{Kind: sdk.KindLog, Source: "file.test", Origin: "access.log", Line: []byte(line)})
		if len(batch) == cap(batch) {
			flush()
		}
	}
	flush()
}

// BenchmarkDetectionLatency measures the detection share of the end-to-end latency: a batch
// holding the one line that completes an attack goes through override and rules over the real
// protocol (in-process gRPC) until its alert comes back; p50 and p99 over 100 trials.
func BenchmarkDetectionLatency(b *testing.B) {
	blocks := shippedBlocks(b)
	c := newChain(b, blocks["override"], blocks["rules"], sdktest.GRPC)
	base := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	line := func(ip string, at time.Time) []byte {
		return []byte(fmt.Sprintf(`%s - - [%s] "POST /login HTTP/1.1" 401 -`, ip, at.Format("02/Jan/2006 15:04:05")))
	}
	var lat []time.Duration
	round := 0
	for b.Loop() {
		lat = lat[:0]
		round++
		for trial := 0; trial < 100; trial++ {
			ip := fmt.Sprintf("198.%d.%d.%d", round%250, trial/200, trial%200)
			at := base.Add(time.Duration(round*100+trial) * time.Minute)
			var prime [][]byte
			for i := 0; i < 5; i++ {
				prime = append(prime, line(ip, at.Add(time.Duration(i)*time.Second)))
			}
			c.process(logEvents(prime, "access.log"), sdk.Watermark{Time: at})
			start := time.Now()
			out := c.process(logEvents([][]byte{line(ip, at.Add(5*time.Second))}, "access.log"), sdk.Watermark{Time: at})
			lat = append(lat, time.Since(start))
			if len(alertsOf(out)) != 1 {
				b.Fatalf("trial %d: no alert", trial)
			}
		}
	}
	sortDurations(lat)
	b.ReportMetric(float64(lat[49].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[98].Microseconds())/1000, "p99-ms")
}

func sortDurations(d []time.Duration) {
	for i := 1; i < len(d); i++ {
		for j := i; j > 0 && d[j] < d[j-1]; j-- {
			d[j], d[j-1] = d[j-1], d[j]
		}
	}
}
