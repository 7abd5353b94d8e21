package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tda-dev/tda/agent/agenttest"
	"github.com/tda-dev/tda/sdk"
)

// The test binary doubles as the test plugins: run as tda-plugin-chaosfeed it serves the
// alert feed source and the poison processor (plugins_test.go).
const feedPluginName = "tda-plugin-chaosfeed"

func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == feedPluginName {
		sdk.Serve(sdk.PluginInfo{Name: "chaosfeed", Version: "0.0.1"}, alertFeedComponent(), poisonComponent())
		os.Exit(0)
	}
	agenttest.Main(m)
}

// scenarios run in this order, one at a time: each measures what the agent does under one
// fault, and timings taken while another scenario loads the machine would mean little.
var scenarios = []struct {
	name string
	run  func(t *testing.T)
}{
	{"disk_full", scenarioDiskFull},
	{"capture_disk_full", scenarioCaptureDiskFull},
	{"sink_stopped", scenarioSinkStopped},
	{"poison_line", scenarioPoisonLine},
	{"slack_revoked", scenarioSlackRevoked},
	{"kill_9_five_times", scenarioKilledFiveTimes},
	{"docker_killed", scenarioDockerKilled},
	{"slack_outage", scenarioSlackOutage},
}

// TestChaos runs every scenario (TDA_CHAOS=1 only) and prints the table of what happened.
func TestChaos(t *testing.T) {
	if os.Getenv("TDA_CHAOS") != "1" {
		t.Skip("chaos scenarios run with TDA_CHAOS=1 (make chaos)")
	}
	only := os.Getenv("TDA_CHAOS_ONLY") // a comma-separated subset, for working on one
	for _, sc := range scenarios {
		if only != "" && !strings.Contains(","+only+",", ","+sc.name+",") {
			continue
		}
		t.Run(sc.name, sc.run)
	}
	printReport()
}

// row is one line of the report.
type row struct {
	fault, expected, happened, figures string
	failed                             bool
}

var report struct {
	mu    sync.Mutex
	rows  map[string]*row
	order []string
}

// outcome is a scenario's line in the report; the scenario fills it in as it learns things.
type outcome struct {
	t   *testing.T
	row *row
	got []string
	fig []string
}

// record starts a scenario's report line; it is printed when the test ends, passed or not.
func record(t *testing.T, fault, expected string) *outcome {
	o := &outcome{t: t, row: &row{fault: fault, expected: expected}}
	report.mu.Lock()
	if report.rows == nil {
		report.rows = map[string]*row{}
	}
	report.order = append(report.order, t.Name())
	report.rows[t.Name()] = o.row
	report.mu.Unlock()
	t.Cleanup(func() {
		report.mu.Lock()
		defer report.mu.Unlock()
		o.row.happened = strings.Join(o.got, "; ")
		o.row.figures = strings.Join(o.fig, "; ")
		o.row.failed = t.Failed()
		printRow(t, o.row)
	})
	return o
}

// happened notes an observation.
func (o *outcome) happened(format string, args ...any) {
	o.got = append(o.got, fmt.Sprintf(format, args...))
}

// figure notes a measured figure.
func (o *outcome) figure(format string, args ...any) {
	o.fig = append(o.fig, fmt.Sprintf(format, args...))
}

func printRow(t *testing.T, r *row) {
	status := "PASS"
	if r.failed {
		status = "FAIL"
	}
	t.Logf("\n| %s | %s | %s | %s | %s |", status, r.fault, r.expected, r.happened, r.figures)
}

// printReport writes every scenario's line as one table.
func printReport() {
	report.mu.Lock()
	defer report.mu.Unlock()
	if len(report.rows) == 0 {
		return
	}
	names := report.order
	var b strings.Builder
	b.WriteString("\n| result | fault | expected | happened | figures |\n|---|---|---|---|---|\n")
	for _, n := range names {
		r := report.rows[n]
		status := "PASS"
		if r.failed {
			status = "FAIL"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", status, r.fault, r.expected, r.happened, r.figures)
	}
	fmt.Print(b.String())
}
