// Package bench measures tda end to end: file -> rules -> jsonl over a million realistic log
// lines, with the plugins out of process (the real agent and plugin binaries) and in process
// (the same runtime calling the components directly), to show what the plugin protocol costs.
//
//	make bench
package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/agent/agenttest"
	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/runtime"
	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/plugins/detect"
	"github.com/tda-dev/tda/plugins/file"
	"github.com/tda-dev/tda/plugins/jsonl"
	"github.com/tda-dev/tda/sdk"
)

func TestMain(m *testing.M) { agenttest.Main(m) }

// Lines is the size of the benchmark's input.
var Lines = envInt("TDA_BENCH_LINES", 1_000_000)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// writeInput writes n lines in the formats of the corpus (Werkzeug access lines, the Flask
// app logger, Spring Boot, Spring Security, SQL echo), about 2% of them events the rules
// count, with timestamps advancing 5 ms per line.
func writeInput(tb testing.TB, path string, n int) int64 {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	base := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	paths := []string{"/api/orders", "/api/users/me", "/static/app.js", "/health", "/api/users/7"}
	for i := 0; i < n; i++ {
		t := base.Add(time.Duration(i) * 5 * time.Millisecond)
		ip := fmt.Sprintf("172.22.%d.%d", (i/251)%200, i%251)
		switch r := i % 100; {
		case r < 55:
			fmt.Fprintf(w, "%s - - [%s] \"GET %s HTTP/1.1\" 200 -\n", ip, t.Format("02/Jan/2006 15:04:05"), paths[i%len(paths)])
		case r < 70:
			fmt.Fprintf(w, "%s  INFO 1 --- [nio-8080-exec-%d] c.e.demo.web.OrderController             : order %d listed in %dms\n",
				t.Format("2006-01-02T15:04:05.000Z"), i%8+1, 10000+i%90000, i%90)
		case r < 85:
			fmt.Fprintf(w, "[%s] INFO in orders: order %d shipped to customer %d\n", t.Format("2006-01-02 15:04:05,000"), i, i%5000)
		case r < 93:
			fmt.Fprintf(w, "%s DEBUG 1 --- [nio-8080-exec-%d] o.h.SQL                                  : select o1_0.id from orders o1_0 where o1_0.customer_id=?\n",
				t.Format("2006-01-02T15:04:05.000Z"), i%8+1)
		case r < 96:
			fmt.Fprintf(w, "%s - - [%s] \"POST /login HTTP/1.1\" 401 -\n", ip, t.Format("02/Jan/2006 15:04:05"))
		case r < 98:
			fmt.Fprintf(w, "[%s] INFO in auth: password_changed user_id=%d actor=u%d actor_role=user ip=%s\n",
				t.Format("2006-01-02 15:04:05,000"), i%9000, i%700, ip)
		default:
			fmt.Fprintf(w, "%s  WARN 1 --- [nio-8080-exec-3] o.s.s.a.event.LoggerListener             : Authentication event AuthenticationFailureBadCredentialsEvent: u%d; details: WebAuthenticationDetails [RemoteIpAddress=%s, SessionId=null]; exception: Bad credentials\n",
				t.Format("2006-01-02T15:04:05.000Z"), i%300, ip)
		}
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	st, _ := f.Stat()
	return st.Size()
}

const pipelineConfig = `
agent {
  data_dir             = "DIR/data"
  max_inflight_batches = 16
}

source "file" "in" {
  paths     = ["DIR/input.log"]
  follow    = false
  read_from = "beginning"
}

processor "rules" "anomalies" {
  rule "mass_password_reset" {
    match     = "password_changed"
    unless    = "actor_role == admin"
    threshold = 10
    window    = "60s"
    severity  = "HIGH"
  }
  rule "bulk_user_creation" {
    match     = "user_created"
    threshold = 20
    window    = "60s"
    severity  = "MEDIUM"
  }
  rule "bulk_deletion" {
    match     = "user_deleted|rows_deleted"
    threshold = 10
    window    = "60s"
    severity  = "HIGH"
  }
  rule "auth_failures" {
    match     = "login_failed"
    threshold = 5
    window    = "60s"
    group_by  = "ip"
    severity  = "MEDIUM"
  }
}

sink "jsonl" "alerts" {
  path = "DIR/alerts.jsonl"
}

pipeline "detect" {
  from    = [source.file.in]
  through = [processor.rules.anomalies]
  to      = [sink.jsonl.alerts]
}
`

type result struct {
	wall      time.Duration
	cpu       time.Duration
	faults    int64
	peakRSS   int64
	alerts    int
	bytes     int64
	processes int
}

func (r result) report(b *testing.B, lines int) {
	b.ReportMetric(float64(lines)/r.wall.Seconds(), "lines/s")
	b.ReportMetric(r.cpu.Seconds(), "cpu-s")
	b.ReportMetric(float64(r.cpu.Microseconds())/float64(lines), "cpu-µs/line")
	b.ReportMetric(float64(r.peakRSS)/(1<<20), "peak-rss-MB")
	b.ReportMetric(float64(r.faults), "page-faults")
	b.ReportMetric(float64(r.bytes)/(1<<20)/r.wall.Seconds(), "MB/s")
	b.ReportMetric(float64(r.alerts), "alerts")
}

// usage is the CPU time and page faults (minor and major) of getrusage(who).
func usage(who int) (time.Duration, int64) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(who, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ru.Minflt + ru.Majflt
}

// rss returns the resident set size of pid and, with children, of its child processes.
func rss(pid int, children bool) int64 {
	total := agenttest.ProcStatus(pid, "VmRSS:")
	if children {
		for child := range agenttest.Children(pid) {
			total += agenttest.ProcStatus(child, "VmRSS:")
		}
	}
	return total
}

// sampler records the peak of f every 20 ms until stopped.
func sampler(f func() int64) (stop func() int64) {
	var mu sync.Mutex
	peak := int64(0)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			v := f()
			mu.Lock()
			if v > peak {
				peak = v
			}
			mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		<-finished
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

func outOfProcess(b *testing.B, dir string, size int64) result {
	bins := agenttest.Build(b, "file", "detect", "jsonl")
	cfgPath := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(cfgPath, []byte(strings.ReplaceAll(pipelineConfig, "DIR", dir)), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bins.Tda, "run", "-config", cfgPath, "-plugin-dir", bins.PluginDir, "-log-level", "warn")
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	// RUSAGE_CHILDREN accumulates every child this process waited for (go build included):
	// measure the difference over the run.
	cpu0, faults0 := usage(syscall.RUSAGE_CHILDREN)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	pid := cmd.Process.Pid
	stopSampling := sampler(func() int64 { return rss(pid, true) })
	err := cmd.Wait()
	wall := time.Since(start)
	peak := stopSampling()
	if err != nil {
		b.Fatalf("tda run: %v\n%s", err, stderr.String())
	}
	// tda waited for its plugin processes, so their time is in its children's total too.
	cpu1, faults1 := usage(syscall.RUSAGE_CHILDREN)
	return result{wall: wall, cpu: cpu1 - cpu0, faults: faults1 - faults0, peakRSS: peak,
		alerts: agenttest.CountLines(filepath.Join(dir, "alerts.jsonl")), bytes: size, processes: 4}
}

func inProcess(b *testing.B, dir string, size int64) result {
	cfg, diags := config.LoadBytes("bench.hcl", []byte(strings.ReplaceAll(pipelineConfig, "DIR", dir)))
	if diags.HasErrors() {
		b.Fatal(diags)
	}
	comps := map[string]sdk.Component{"source.file": file.Component(), "processor.rules": detect.RulesComponent(),
		"sink.jsonl": jsonl.Component()}
	for _, c := range cfg.Components {
		if d := cfg.Decode(c, comps[string(c.Kind)+"."+c.Type].Spec); d.HasErrors() {
			b.Fatal(d)
		}
	}
	store, err := state.Open(cfg.Agent.DataDir, state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	cpu0, faults0 := usage(syscall.RUSAGE_SELF)
	pid := os.Getpid()
	stopSampling := sampler(func() int64 { return rss(pid, false) })
	start := time.Now()
	rt, err := runtime.New(runtime.Options{Config: cfg, Store: store, Live: true,
		Launcher: &runtime.InProcessLauncher{Components: comps}, Logger: hclog.NewNullLogger()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := rt.Start(ctx); err != nil {
		b.Fatal(err)
	}
	<-rt.SourcesEnded()
	stopCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := rt.Stop(stopCtx); err != nil {
		b.Fatal(err)
	}
	wall := time.Since(start)
	cpu1, faults1 := usage(syscall.RUSAGE_SELF)
	return result{wall: wall, cpu: cpu1 - cpu0, faults: faults1 - faults0, peakRSS: stopSampling(), bytes: size,
		alerts: agenttest.CountLines(filepath.Join(dir, "alerts.jsonl")), processes: 1}
}

// BenchmarkEndToEnd runs file -> rules -> jsonl over Lines lines, in process and out of
// process. Run it with -benchtime 1x: one iteration is a whole run. make bench builds the
// binaries as make build does (static, CGO_ENABLED=0).
//
// Out of process, a run is the whole `tda run`: starting the agent and the plugin processes
// (each plugin binary is also run once to describe itself), the TLS handshakes, the work, the
// drain and the exit. Its fixed part is measured on its own over an empty input and reported
// as fixed-cpu-s; cpu-x-inproc is the out-of-process CPU over the in-process CPU, and
// net-cpu-x-inproc the same without the fixed part (what moving the lines between processes
// costs).
func BenchmarkEndToEnd(b *testing.B) {
	input := filepath.Join(b.TempDir(), "input.log")
	size := writeInput(b, input, Lines)
	empty := filepath.Join(b.TempDir(), "input.log")
	writeInput(b, empty, 0)
	var in result
	b.Run("in-process", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			in = inProcess(b, linked(b, input), size)
		}
		in.report(b, Lines)
	})
	b.Run("out-of-process", func(b *testing.B) {
		var out, fixed result
		for i := 0; i < b.N; i++ {
			fixed = outOfProcess(b, linked(b, empty), 0)
			out = outOfProcess(b, linked(b, input), size)
		}
		out.report(b, Lines)
		b.ReportMetric(fixed.cpu.Seconds(), "fixed-cpu-s")
		if in.cpu > 0 {
			b.ReportMetric(out.cpu.Seconds()/in.cpu.Seconds(), "cpu-x-inproc")
			b.ReportMetric((out.cpu-fixed.cpu).Seconds()/in.cpu.Seconds(), "net-cpu-x-inproc")
		}
	})
}

// linked returns a new directory holding input as input.log.
func linked(b *testing.B, input string) string {
	dir := b.TempDir()
	if err := os.Link(input, filepath.Join(dir, "input.log")); err != nil {
		b.Fatal(err)
	}
	return dir
}
