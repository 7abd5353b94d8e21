package runtime

import (
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/tda-dev/tda/sdk"
)

// TestClockReportsDegradeUntilQuiet: a processor's clock report counts in the metric and
// degrades the pipeline with what to do; another report keeps it degraded; ten quiet minutes
// after the last one it clears by itself, while a failure another owner reported stays.
func TestClockReportsDegradeUntilQuiet(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	h := newHealth()
	h.now = func() time.Time { return now }
	rt := &Runtime{health: h, metrics: newMetrics()}
	report := func(future, outOfRange string) *sdk.Event {
		return &sdk.Event{Kind: sdk.KindAudit, Fields: map[string]string{sdk.FieldAuditEvent: sdk.AuditClockSkew,
			sdk.FieldFutureSkew: future, sdk.FieldOutOfRange: outOfRange,
			sdk.FieldExampleOrigin: "app.log", sdk.FieldExampleLineTime: "2027-01-01T00:00:00Z"}}
	}
	reasons := func() string { return strings.Join(h.Degraded(), "\n") }

	// Not a clock report: nothing happens.
	rt.observeClockReport("main", &sdk.Event{Kind: sdk.KindAudit, Fields: map[string]string{"event": "override_enabled"}})
	rt.observeClockReport("main", report("0", "0"))
	if r := reasons(); r != "" {
		t.Fatalf("degraded without a clock report: %s", r)
	}

	rt.observeClockReport("main", report("3", "1"))
	if r := reasons(); !strings.Contains(r, "clocks.main: lines with impossible clocks: 3 dated too far ahead of their arrival, 1 outside 1970-2200 (e.g. app.log wrote 2027-01-01T00:00:00Z)") ||
		!strings.Contains(r, "fix the clock") {
		t.Fatalf("reasons: %s", r)
	}
	h.set("clocks.main", false, "") // a failure of another owner of the record
	h.set("clocks.main", true, "")
	now = now.Add(9 * time.Minute)
	rt.observeClockReport("main", report("2", "0"))
	now = now.Add(9 * time.Minute)
	if r := reasons(); !strings.Contains(r, "2 dated too far ahead") {
		t.Fatalf("a second report within ten minutes keeps the pipeline degraded: %q", r)
	}
	now = now.Add(time.Minute)
	if r := reasons(); r != "" {
		t.Fatalf("still degraded ten quiet minutes after the last report: %s", r)
	}
	for clock, want := range map[string]float64{"future_skew": 5, "out_of_range": 1} {
		var m dto.Metric
		if err := rt.metrics.clockSkew.WithLabelValues("main", clock).Write(&m); err != nil {
			t.Fatal(err)
		}
		if got := m.GetCounter().GetValue(); got != want {
			t.Errorf("tda_event_clock_skew_total{clock=%q} = %v, want %v", clock, got, want)
		}
	}

	// An expiring facet never hides what another owner reports.
	rt.observeClockReport("main", report("1", "0"))
	h.setProcess("clocks.main", false, "something else")
	now = now.Add(time.Hour)
	if r := reasons(); r != "clocks.main: something else" {
		t.Fatalf("after expiry: %q", r)
	}
}
