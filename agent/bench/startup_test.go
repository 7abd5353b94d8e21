package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/agenttest"
)

// clockTicks is the unit of utime and stime in /proc/PID/stat (USER_HZ, 100 on Linux).
const clockTicks = 100

// cpuOf is the CPU time a process has used so far, from /proc/PID/stat.
func cpuOf(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	// After the command: state(0) ppid(1) ... utime(11) stime(12).
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// pss is the proportional set size of a process: its resident memory with the pages it
// shares with others (the tda binary, mapped by the agent and its plugin process) divided
// among them, so that the sum over processes counts each page once.
func pss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Pss:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// runningAt is the time the agent logged "pipelines running" (hclog stamps to the
// millisecond).
func runningAt(logs string) (time.Time, bool) {
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, "pipelines running") {
			continue
		}
		ts, _, _ := strings.Cut(line, " ")
		t, err := time.Parse("2006-01-02T15:04:05.000Z0700", ts)
		return t, err == nil
	}
	return time.Time{}, false
}

// startupSteps reads the agent's "start-up" log line: the milliseconds of each step of
// `tda run` until its pipelines ran (config, state, control, pipelines, serve, ...), by
// name, in the line's order.
func startupSteps(logs string) (names []string, ms map[string]float64, ok bool) {
	for _, line := range strings.Split(logs, "\n") {
		_, rest, found := strings.Cut(line, "start-up: ")
		if !found {
			continue
		}
		ms = map[string]float64{}
		for _, f := range strings.Fields(rest) {
			k, v, _ := strings.Cut(f, "=")
			name, isStep := strings.CutSuffix(k, "_ms")
			n, err := strconv.ParseFloat(v, 64)
			if !isStep || err != nil {
				continue
			}
			names = append(names, name)
			ms[name] = n
		}
		return names, ms, len(ms) > 0
	}
	return nil, nil, false
}

// BenchmarkStartup starts `tda run` on the default config (configs/agent.hcl: the example
// logs, override and rules, console and jsonl sinks) until it logs "pipelines running",
// lets it idle for three seconds, and stops it. It reports the time to running, the CPU
// time all tda processes used until then, their number, and their resident memory when
// idle (RSS summed over the processes, which counts the shared binary once per process, and
// PSS, which counts it once), and the mean time of each step of start-up as the agent logs
// it ("start-up": config, state, control, pipelines, serve, approvals; step-NAME-ms), the
// time before the first step (exec and package initialisation) being what is left of
// ms-to-running. "in-agent" is how tda runs by default: the plugins built into tda run
// inside the agent's process; "shared-process" is bundled_plugins = "shared_process", one
// `tda plugin-serve` process for all their instances; "per-instance" puts each plugin's
// separate binary in the plugin directory, which replaces the built-in components and gives
// every instance a process of its own.
//
//	go test -run '^$' -bench Startup -benchtime 3x ./agent/bench/
func BenchmarkStartup(b *testing.B) {
	root := agenttest.RepoRoot()
	config, err := os.ReadFile(filepath.Join(root, "configs", "agent.hcl"))
	if err != nil {
		b.Fatal(err)
	}
	logs, err := filepath.Glob(filepath.Join(root, "examples", "logs", "*.log"))
	if err != nil || len(logs) == 0 {
		b.Fatalf("no example logs: %v", err)
	}
	for _, layout := range []struct {
		name    string
		plugins []string
		bundled string // the agent's bundled_plugins ("": the default, inside the agent)
	}{
		{"in-agent", nil, ""},
		{"shared-process", nil, "shared_process"},
		{"per-instance", []string{"file", "detect", "jsonl", "console"}, ""},
	} {
		b.Run(layout.name, func(b *testing.B) {
			bins := agenttest.Build(b, layout.plugins...)
			if layout.plugins == nil {
				// The plugin directory Build fills is shared by every benchmark of this
				// process: the built-in plugins alone get an empty one.
				bins = bins.BuiltinOnly(b)
			}
			config := string(config)
			if layout.bundled != "" {
				config = strings.Replace(config, "agent {", "agent {\n  bundled_plugins = \""+layout.bundled+"\"", 1)
			}
			var toRunning, fastest, cpu time.Duration
			var procs, rssSum, pssSum int64
			var stepNames []string
			stepSum := map[string]float64{}
			for i := 0; i < b.N; i++ {
				a := agenttest.New(b, bins, config)
				for _, l := range logs {
					data, err := os.ReadFile(l)
					if err != nil {
						b.Fatal(err)
					}
					dst := a.Path("examples", "logs", filepath.Base(l))
					if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
						b.Fatal(err)
					}
					if err := os.WriteFile(dst, data, 0o644); err != nil {
						b.Fatal(err)
					}
				}
				start := time.Now()
				a.Start()
				at, ok := runningAt(a.Logs())
				if !ok {
					b.Fatalf("no pipelines running line:\n%s", a.Logs())
				}
				toRunning += at.Sub(start)
				// The start-up line follows "pipelines running" once the control socket
				// listens.
				names, ms, ok := startupSteps(a.Logs())
				for wait := time.Now().Add(10 * time.Second); !ok && time.Now().Before(wait); {
					time.Sleep(10 * time.Millisecond)
					names, ms, ok = startupSteps(a.Logs())
				}
				if !ok {
					b.Fatalf("no start-up line:\n%s", a.Logs())
				}
				stepNames = names
				for n, v := range ms {
					stepSum[n] += v
				}
				if fastest == 0 || at.Sub(start) < fastest {
					fastest = at.Sub(start)
				}
				pids := []int{a.Pid()}
				for pid := range agenttest.Children(a.Pid()) {
					pids = append(pids, pid)
				}
				for _, pid := range pids {
					cpu += cpuOf(pid)
				}
				time.Sleep(3 * time.Second)
				pids = pids[:1]
				for pid := range agenttest.Children(a.Pid()) {
					pids = append(pids, pid)
				}
				procs += int64(len(pids))
				for _, pid := range pids {
					rssSum += agenttest.ProcStatus(pid, "VmRSS:")
					pssSum += pss(pid)
				}
				if code, _ := a.Stop(); code != 0 {
					b.Fatalf("tda exited %d:\n%s", code, a.Logs())
				}
			}
			n := float64(b.N)
			b.ReportMetric(float64(toRunning.Milliseconds())/n, "ms-to-running")
			// The fastest start is the one least slowed by whatever else the machine runs.
			b.ReportMetric(float64(fastest.Milliseconds()), "min-ms-to-running")
			b.ReportMetric(float64(cpu.Milliseconds())/n, "cpu-ms-to-running")
			b.ReportMetric(float64(procs)/n, "processes")
			b.ReportMetric(float64(rssSum)/n/(1<<20), "idle-rss-MiB")
			b.ReportMetric(float64(pssSum)/n/(1<<20), "idle-pss-MiB")
			for _, name := range stepNames {
				b.ReportMetric(stepSum[name]/n, "step-"+name+"-ms")
			}
		})
	}
}
