package ops

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/state"
)

// BenchmarkStateWithIncidents reads the system state (what the panel does every 5 seconds)
// with MaxIncidentRecords incident records, 5 of them blocking, and nothing new in the
// audit trail.
func BenchmarkStateWithIncidents(b *testing.B) {
	dir := b.TempDir()
	store, err := state.Open(filepath.Join(dir, "data"), state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	f := &fixture{clock: &clock{t: time.Date(2026, 11, 29, 22, 0, 0, 0, time.UTC)}, store: store,
		trail: filepath.Join(dir, "alerts.jsonl")}
	var sb strings.Builder
	for i := 0; i < MaxIncidentRecords; i++ {
		sev := "MEDIUM"
		if i%(MaxIncidentRecords/5) == 0 {
			sev = "HIGH"
		}
		sb.WriteString(alertLine(fmt.Sprintf("fp-%05d", i), "auth_failures", sev, "firing", f.clock.Now()))
	}
	f.appendTrail(&testing.T{}, sb.String())
	svc, err := NewService(Options{Store: store, Trail: NewTrail(f.trail), Now: f.clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Close(context.Background())
	ctx := context.Background()
	start := time.Now()
	if _, err := svc.State(ctx); err != nil { // records every incident
		b.Fatal(err)
	}
	firstSync := time.Since(start)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st, err := svc.State(ctx)
		if err != nil || len(st.Blocking) != 5 {
			b.Fatalf("%d blocking, %v", len(st.Blocking), err)
		}
	}
	b.ReportMetric(float64(firstSync.Milliseconds()), "first-sync-ms")
}
