package snapshot

import (
	"context"
	"errors"
	"time"

	"github.com/tda-dev/tda/plugins/snapshot/provider"
	"github.com/tda-dev/tda/plugins/snapshot/retention"
)

// Tier names in a Listing.
const (
	TierPointInTime = "point-in-time"
	TierExternal    = "not created by tda"
)

// Tier is one recovery tier: point in time, or the snapshots of one trigger.
type Tier struct {
	Name string
	// Snapshots are newest first, each with its retention verdict.
	Snapshots []retention.Decision
	// Newest is the recovery point of the newest usable restore in the tier (zero: none).
	Newest time.Time
	// RPO is how much would be lost restoring the tier's newest point now (now - Newest).
	RPO time.Duration
	// Window is the restorable range of the point-in-time tier.
	Window *provider.TimeRange
}

// Listing is what `tda snapshot list` shows.
type Listing struct {
	Name   string
	Kind   string
	Target string
	Now    time.Time
	Tiers  []Tier
	// Quota is the provider's snapshot quota (nil when it has none).
	Quota *provider.Quota
	// Warnings are problems that did not stop the listing (quota or window unreadable).
	Warnings []string
}

// List gathers the snapshots by tier with their age and retention verdict, and the RPO of each
// tier.
func (m *Manager) List(ctx context.Context) (Listing, error) {
	snaps, err := m.prov.List(ctx)
	if err != nil {
		return Listing{}, err
	}
	now := m.now()
	l := Listing{Name: m.settings.Name, Kind: m.prov.Kind(), Target: m.prov.Target(), Now: now}
	if m.prov.Capabilities().PointInTime {
		tier := Tier{Name: TierPointInTime}
		if r, err := m.prov.RestorableRange(ctx); err == nil {
			tier.Window, tier.Newest, tier.RPO = &r, r.Latest, now.Sub(r.Latest)
		} else {
			l.Warnings = append(l.Warnings, "point-in-time window: "+err.Error())
		}
		l.Tiers = append(l.Tiers, tier)
	}
	if q, err := m.prov.Quota(ctx); err == nil {
		l.Quota = q
	} else if !errors.Is(err, provider.ErrNotSupported) {
		l.Warnings = append(l.Warnings, "quota: "+err.Error())
	}
	opt, err := m.retentionOptions()
	if err != nil {
		opt = retention.Options{DeleteFailed: m.prov.Capabilities().DeletesFailed}
		l.Warnings = append(l.Warnings, "open incidents: "+err.Error()+"; the verdicts below do not show their pins")
	}
	decisions := retention.Apply(snaps, m.settings.Retention, now, opt)
	byTier := map[string]*Tier{}
	order := append(append([]string(nil), provider.Triggers...), TierExternal)
	for _, name := range order {
		byTier[name] = &Tier{Name: name}
	}
	for _, d := range decisions {
		name := d.Snapshot.Trigger()
		if !d.Snapshot.Managed() || byTier[name] == nil {
			name = TierExternal
		}
		t := byTier[name]
		t.Snapshots = append(t.Snapshots, d)
		if d.Snapshot.Available() && d.Snapshot.Time.After(t.Newest) {
			t.Newest, t.RPO = d.Snapshot.Time, now.Sub(d.Snapshot.Time)
		}
	}
	for _, name := range order {
		// Snapshots tda did not take and pre-repair snapshots are a tier only when there are some.
		if t := byTier[name]; len(t.Snapshots) > 0 || (name != TierExternal && name != provider.TriggerPreRepair) {
			l.Tiers = append(l.Tiers, *t)
		}
	}
	return l, nil
}
