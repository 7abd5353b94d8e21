package detect_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/agenttest"
	"github.com/tda-dev/tda/sdk"
)

func TestMain(m *testing.M) { agenttest.Main(m) }

// agentConfig is a tda config around the shipped detection blocks: the file source tails
// DIR/in, alerts and audit records go to DIR/alerts.jsonl.
func agentConfig(t testing.TB, rulesBody string) string {
	blocks := shippedBlocks(t)
	if rulesBody == "" {
		rulesBody = blocks["rules"]
	}
	return fmt.Sprintf(`
agent {
  data_dir            = "DIR/data"
  checkpoint_interval = "200ms"
}
source "file" "in" {
  paths     = ["DIR/in/*.log"]
  read_from = "beginning"
}
processor "override" "flags" {
%s
}
processor "rules" "anomalies" {
%s
}
sink "jsonl" "alerts" {
  path  = "DIR/alerts.jsonl"
  kinds = ["alert", "audit"]
}
pipeline "detect" {
  from    = [source.file.in]
  through = [processor.override.flags, processor.rules.anomalies]
  to      = [sink.jsonl.alerts]
}
`, blocks["override"], rulesBody)
}

// TestAgentDetectsCorpus runs the real agent with the detect plugin as processes: each corpus
// file is tailed and the incidents written to alerts.jsonl are those of
// expected-alerts.jsonl, with the override audit trail beside them.
func TestAgentDetectsCorpus(t *testing.T) {
	bins := agenttest.Build(t, "file", "detect", "jsonl")
	expected := loadExpected(t)
	for _, name := range []string{"flask-sample.log", "spring-sample.log"} {
		t.Run(name, func(t *testing.T) {
			a := agenttest.New(t, bins, agentConfig(t, ""))
			if err := os.MkdirAll(a.Path("in"), 0o755); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join("testdata", "corpus", name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(a.Path("in", name), data, 0o644); err != nil {
				t.Fatal(err)
			}
			var want []expectedAlert
			for _, e := range expected {
				if e.File == name {
					want = append(want, e)
				}
			}
			a.Start()
			out := a.Path("alerts.jsonl")
			var firsts []sdk.Event
			agenttest.WaitFor(t, "the expected incidents", 60*time.Second, func() bool {
				firsts = firstRecords(alertsOf(agenttest.ReadJSONL(t, out)))
				return len(firsts) >= len(want)
			})
			time.Sleep(300 * time.Millisecond)
			if code, _ := a.Stop(); code != 0 {
				t.Fatalf("stop: exit %d\n%s", code, a.Logs())
			}
			events := agenttest.ReadJSONL(t, out)
			firsts = firstRecords(alertsOf(events))
			if len(firsts) != len(want) {
				t.Fatalf("%d incidents, want %d:\n%s", len(firsts), len(want), jsonLines(firsts))
			}
			for _, e := range want {
				found := false
				for _, a := range firsts {
					found = found || e.matches(a)
				}
				if !found {
					t.Errorf("missing %s %s in [%s, %s]", e.Rule, e.State, e.From, e.To)
				}
			}
			// No record is delivered twice.
			seen := map[string]bool{}
			for _, ev := range alertsOf(events) {
				if k := ev.Alert.DeliveryKey(); seen[k] {
					t.Errorf("delivered twice: %s", k)
				} else {
					seen[k] = true
				}
			}
			if name == "flask-sample.log" {
				var trail []string
				for _, ev := range events {
					if ev.Kind == sdk.KindAudit && ev.Fields["event"] != sdk.EventIncidentUpdate {
						trail = append(trail, ev.Fields["event"]+" by "+ev.Fields["actor"]+" until "+ev.Fields["until"])
					}
				}
				want := "override_enabled by carol until 2026-11-29T11:00:00.000000000Z," +
					"override_expired by carol until 2026-11-29T11:00:00.000000000Z"
				if strings.Join(trail, ",") != want {
					t.Errorf("audit trail %q, want %q", trail, want)
				}
			}
		})
	}
}

func jsonLines(evs []sdk.Event) string {
	var b strings.Builder
	for _, e := range evs {
		b.Write(e.AppendJSON(nil))
		b.WriteByte('\n')
	}
	return b.String()
}

// BenchmarkEndToEndLatency measures detection latency in the real agent: a line that completes
// an attack is appended to a tailed file, and the clock stops when its alert is in
// alerts.jsonl. p50 and p99 over 100 trials (the file source watches with inotify; the jsonl
// sink fsyncs every batch).
func BenchmarkEndToEndLatency(b *testing.B) {
	bins := agenttest.Build(b, "file", "detect", "jsonl")
	rules := `
rule "auth_failures" {
  match     = "login_failed"
  threshold = 0
  window    = "60s"
  group_by  = "ip"
}`
	for b.Loop() {
		a := agenttest.New(b, bins, agentConfig(b, rules))
		if err := os.MkdirAll(a.Path("in"), 0o755); err != nil {
			b.Fatal(err)
		}
		input := a.Path("in", "access.log")
		if err := os.WriteFile(input, nil, 0o644); err != nil {
			b.Fatal(err)
		}
		a.Start()
		out := a.Path("alerts.jsonl")
		f, err := os.OpenFile(input, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			b.Fatal(err)
		}
		var lat []time.Duration
		for trial := 0; trial < 100; trial++ {
			before := agenttest.CountLines(out)
			line := fmt.Sprintf("203.0.%d.%d - - [%s] \"POST /login HTTP/1.1\" 401 -\n", trial/200, trial%200+1,
				time.Now().UTC().Format("02/Jan/2006 15:04:05"))
			start := time.Now()
			if _, err := f.WriteString(line); err != nil {
				b.Fatal(err)
			}
			for agenttest.CountLines(out) <= before {
				if time.Since(start) > 10*time.Second {
					b.Fatalf("trial %d: no alert after 10s\n%s", trial, a.Logs())
				}
				time.Sleep(100 * time.Microsecond)
			}
			lat = append(lat, time.Since(start))
			time.Sleep(20 * time.Millisecond)
		}
		f.Close()
		a.Stop()
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(float64(lat[49].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[98].Microseconds())/1000, "p99-ms")
	}
}
