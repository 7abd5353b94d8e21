package ops

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkTrailLoad reads an audit trail of 100,000 alert records (10,000 incidents) from
// the start, as the panel does when the agent starts.
func BenchmarkTrailLoad(b *testing.B) {
	path := filepath.Join(b.TempDir(), "alerts.jsonl")
	var sb strings.Builder
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 100000; i++ {
		sb.WriteString(alertLine(fmt.Sprintf("fp%05d", i%10000), "auth_failures", "MEDIUM", "firing", at.Add(time.Duration(i)*time.Second)))
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(sb.Len()))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tr := NewTrail(path)
		if err := tr.Refresh(); err != nil {
			b.Fatal(err)
		}
		if n := len(tr.Incidents()); n != 10000 {
			b.Fatalf("incidents: %d", n)
		}
	}
}

// BenchmarkTrailRefreshIdle is the cost of a panel refresh when nothing was appended.
func BenchmarkTrailRefreshIdle(b *testing.B) {
	path := filepath.Join(b.TempDir(), "alerts.jsonl")
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.WriteFile(path, []byte(alertLine("fp", "r", "HIGH", "firing", at)), 0o600); err != nil {
		b.Fatal(err)
	}
	tr := NewTrail(path)
	for i := 0; i < b.N; i++ {
		if err := tr.Refresh(); err != nil {
			b.Fatal(err)
		}
	}
}
