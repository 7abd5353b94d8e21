package cli

import (
	"github.com/tda-dev/tda/sdk/snapshotapi"
)

// listingJSON is the stable shape of `tda snapshot list -json` (docs/recovery.md documents
// it): the provider's listing without the RPO for people, which the JSON gives in seconds.
// Durations are in seconds; times are RFC 3339 in UTC.
func listingJSON(l snapshotapi.Listing) snapshotapi.Listing {
	if l.Tiers == nil {
		l.Tiers = []snapshotapi.Tier{}
	}
	if l.Warnings == nil {
		l.Warnings = []string{}
	}
	tiers := make([]snapshotapi.Tier, len(l.Tiers))
	for i, t := range l.Tiers {
		t.RPO = ""
		if t.Snapshots == nil {
			t.Snapshots = []snapshotapi.Snapshot{}
		}
		tiers[i] = t
	}
	l.Tiers = tiers
	return l
}
