package ops

import (
	"context"
	"strings"
	"testing"
)

// A healthy source's report (a fleet detector's partitions and edges) is in the state's
// reports, not its reasons: the state stays normal. An unhealthy one's reason makes it
// degraded, and its report, if any, is not shown as a report.
func TestStateReportsWhatHealthySourcesSay(t *testing.T) {
	tests := []struct {
		name    string
		health  []ComponentHealth
		status  string
		reports []string
	}{
		{"healthy with a report", []ComponentHealth{{Address: "source.nats.fleet", Healthy: true,
			Report: "fleet detectors member d1: partitions [0,1] of 4; edges: web-1 (lag 0s)"}},
			StatusNormal, []string{"source.nats.fleet: fleet detectors member d1: partitions [0,1] of 4; edges: web-1 (lag 0s)"}},
		{"healthy without one", []ComponentHealth{{Address: "source.file.app", Healthy: true}}, StatusNormal, nil},
		{"unhealthy", []ComponentHealth{{Address: "source.nats.fleet", Healthy: false,
			Reason: "NATS unreachable: no partition is read", Report: "stale"}}, StatusDegraded, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, _ := newLetterFixture(t, newMemLetters(), tt.health...)
			st, err := svc.State(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if st.Status != tt.status || strings.Join(st.Reports, "|") != strings.Join(tt.reports, "|") {
				t.Fatalf("status %s reports %q; want %s %q", st.Status, st.Reports, tt.status, tt.reports)
			}
			for _, r := range st.Reasons {
				if strings.Contains(r, "partitions [") {
					t.Fatalf("a report is among the reasons: %q", st.Reasons)
				}
			}
		})
	}
}
