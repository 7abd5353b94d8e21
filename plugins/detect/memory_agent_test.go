package detect_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/agenttest"
)

// BenchmarkProcessMemoryDistinctIPs floods the real agent with failed logins from 1,000,000
// distinct IPs within one window and reports the peak resident size of the detect plugin's
// process (the whole processor: its heap, the garbage collector's headroom, the snapshots
// taken at every checkpoint, the runtime and the binary). Cases: the shipped max_keys, every
// key kept, and every key kept under a plugin memory_limit.
//
//	go test ./plugins/detect -run '^$' -bench ProcessMemory -benchtime 1x
func BenchmarkProcessMemoryDistinctIPs(b *testing.B) {
	const ips = 1_000_000
	bins := agenttest.Build(b, "file", "detect", "jsonl")
	input := filepath.Join(b.TempDir(), "flood.log")
	writeFlood(b, input, ips)
	cases := []struct {
		name        string
		maxKeys     int
		memoryLimit string
	}{
		{"max_keys=100000", 100_000, ""},
		{"max_keys=1000000", 1_000_000, ""},
		{"max_keys=1000000/memory_limit=170MiB", 1_000_000, "170MiB"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				peak, took := floodAgent(b, bins, input, c.maxKeys, c.memoryLimit)
				b.ReportMetric(float64(peak)/(1<<20), "detect-peak-rss-MB")
				b.ReportMetric(ips/took.Seconds(), "lines/s")
			}
		})
	}
}

// writeFlood writes one failed login (Werkzeug access line, 401 on POST /login) from each of
// n distinct IPs over 50 seconds, then six from 203.0.113.9, which make the rule fire: its
// alert tells that every line before it was counted.
func writeFlood(tb testing.TB, path string, n int) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	base := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		t := base.Add(time.Duration(i) * 50 * time.Second / time.Duration(n))
		fmt.Fprintf(w, "10.%d.%d.%d - - [%s] \"POST /login HTTP/1.1\" 401 -\n",
			i>>16&255, i>>8&255, i&255, t.Format("02/Jan/2006 15:04:05"))
	}
	for i := 0; i < 6; i++ {
		fmt.Fprintf(w, "203.0.113.9 - - [%s] \"POST /login HTTP/1.1\" 401 -\n", base.Add(50*time.Second).Format("02/Jan/2006 15:04:05"))
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
}

// floodAgent runs the agent over input and returns the detect process's peak resident size
// (VmHWM) once every line is counted and two checkpoints (with their snapshots) have passed.
func floodAgent(b *testing.B, bins agenttest.Binaries, input string, maxKeys int, memoryLimit string) (int64, time.Duration) {
	plugin := ""
	if memoryLimit != "" {
		plugin = fmt.Sprintf("plugin \"detect\" {\n  memory_limit = %q\n}\n", memoryLimit)
	}
	a := agenttest.New(b, bins, fmt.Sprintf(`
agent {
  data_dir = "DIR/data"
}
%s
source "file" "in" {
  paths     = [%q]
  read_from = "beginning"
}
processor "rules" "anomalies" {
  rule "auth_failures" {
    match     = "login_failed"
    threshold = 5
    window    = "60s"
    group_by  = "ip"
    max_keys  = %d
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
`, plugin, input, maxKeys))
	start := time.Now()
	a.Start()
	agenttest.WaitFor(b, "the alert after the flood", 5*time.Minute, func() bool {
		return agenttest.CountLines(a.Path("alerts.jsonl")) > 0
	})
	took := time.Since(start)
	time.Sleep(2500 * time.Millisecond) // two more checkpoints, each with a snapshot of every key
	var peak int64
	for pid, name := range a.PluginPids() {
		if name == "tda-plugin-detect" {
			peak = agenttest.ProcStatus(pid, "VmHWM:")
		}
	}
	if peak == 0 {
		b.Fatalf("no detect plugin process under the agent:\n%s", a.Logs())
	}
	if code, _ := a.Stop(); code != 0 {
		b.Fatalf("tda exited %d:\n%s", code, a.Logs())
	}
	return peak, took
}
