package snapshot

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/snapshot/provider"
	"github.com/tda-dev/tda/plugins/snapshot/retention"
)

// TestReportsEscapeProviderText: what a provider returns (a status detail, tags of snapshots
// tda did not take, an id) is printed escaped by snapshot list, create and restore.
func TestReportsEscapeProviderText(t *testing.T) {
	const forged = "1.0\x1b]0;pwned\x07\nrds:x  2026-11-29  available  keep"
	now := time.Date(2026, 11, 29, 22, 0, 0, 0, time.UTC)
	snap := provider.Snapshot{ID: "tda-x\n", Target: "orders", Time: now.Add(-time.Hour), Status: "failed", Detail: forged,
		Tags: map[string]string{provider.TagAppVersion: forged, "owner\x1b[2J": forged}}
	var out bytes.Buffer
	WriteListing(&out, Listing{Name: "guard", Kind: "aurora", Target: "orders", Now: now, Warnings: []string{forged},
		Tiers: []Tier{{Name: "other", Newest: snap.Time, Snapshots: []retention.Decision{{Snapshot: snap, Keep: true, Reasons: []string{forged}}}}}})
	WriteSnapshot(&out, snap)
	WriteRestorePlan(&out, RestorePlan{Kind: "aurora", Source: "orders", NewName: "drill", Snapshot: &snap, Note: forged})
	got := out.String()
	if strings.ContainsAny(got, "\x1b\x07") {
		t.Fatalf("raw control characters:\n%q", got)
	}
	for _, line := range strings.Split(got, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "rds:x") {
			t.Fatalf("a forged row:\n%s", got)
		}
	}
	if !strings.Contains(got, `1.0\x1b]0;pwned\a\nrds:x`) {
		t.Fatalf("not shown escaped:\n%s", got)
	}
}
