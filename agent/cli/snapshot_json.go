package cli

import (
	"time"

	"github.com/tda-dev/tda/plugins/snapshot"
)

// snapshotListJSON is the stable shape of `tda snapshot list -json`; docs/recovery.md documents
// it. Durations are in seconds; times are RFC 3339 in UTC.
type snapshotListJSON struct {
	Name     string             `json:"name"`
	Kind     string             `json:"kind"`
	Target   string             `json:"target"`
	Now      time.Time          `json:"now"`
	Tiers    []snapshotTierJSON `json:"tiers"`
	Quota    *snapshotQuotaJSON `json:"quota,omitempty"`
	Warnings []string           `json:"warnings"`
}

type snapshotTierJSON struct {
	Name string `json:"name"`
	// Newest and RPOSeconds are absent when the tier holds no usable recovery point.
	Newest     *time.Time          `json:"newest,omitempty"`
	RPOSeconds *float64            `json:"rpo_seconds,omitempty"`
	Window     *snapshotWindowJSON `json:"window,omitempty"`
	Snapshots  []snapshotJSON      `json:"snapshots"`
}

type snapshotWindowJSON struct {
	Earliest time.Time `json:"earliest"`
	Latest   time.Time `json:"latest"`
}

type snapshotJSON struct {
	ID         string            `json:"id"`
	Target     string            `json:"target"`
	Time       time.Time         `json:"time"`
	AgeSeconds float64           `json:"age_seconds"`
	Status     string            `json:"status"`
	Trigger    string            `json:"trigger"`
	Managed    bool              `json:"managed"`
	SizeBytes  int64             `json:"size_bytes"`
	Tags       map[string]string `json:"tags"`
	Detail     string            `json:"detail,omitempty"`
	Keep       bool              `json:"keep"`
	Reasons    []string          `json:"reasons"`
}

type snapshotQuotaJSON struct {
	Name string `json:"name"`
	Used int64  `json:"used"`
	Max  int64  `json:"max"`
}

func listingJSON(l snapshot.Listing) snapshotListJSON {
	out := snapshotListJSON{Name: l.Name, Kind: l.Kind, Target: l.Target, Now: l.Now.UTC(),
		Tiers: []snapshotTierJSON{}, Warnings: append([]string{}, l.Warnings...)}
	if l.Quota != nil {
		out.Quota = &snapshotQuotaJSON{Name: l.Quota.Name, Used: l.Quota.Used, Max: l.Quota.Max}
	}
	for _, t := range l.Tiers {
		tj := snapshotTierJSON{Name: t.Name, Snapshots: []snapshotJSON{}}
		if !t.Newest.IsZero() {
			newest, rpo := t.Newest.UTC(), t.RPO.Seconds()
			tj.Newest, tj.RPOSeconds = &newest, &rpo
		}
		if t.Window != nil {
			tj.Window = &snapshotWindowJSON{Earliest: t.Window.Earliest.UTC(), Latest: t.Window.Latest.UTC()}
		}
		for _, d := range t.Snapshots {
			s := d.Snapshot
			tags := map[string]string{}
			for k, v := range s.Tags {
				tags[k] = v
			}
			tj.Snapshots = append(tj.Snapshots, snapshotJSON{ID: s.ID, Target: s.Target, Time: s.Time.UTC(),
				AgeSeconds: l.Now.Sub(s.Time).Seconds(), Status: s.Status, Trigger: s.Trigger(),
				Managed: s.Managed(), SizeBytes: s.SizeBytes, Tags: tags, Detail: s.Detail, Keep: d.Keep,
				Reasons: append([]string{}, d.Reasons...)})
		}
		out.Tiers = append(out.Tiers, tj)
	}
	return out
}
