package snapshot

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/plugins/snapshot/provider"
	"github.com/tda-dev/tda/plugins/snapshot/retention"
)

// Manager runs snapshot operations for one configured target. The sink, the CLI and the
// control panel all go through it.
type Manager struct {
	settings Settings
	prov     provider.Provider
	log      hclog.Logger
	now      func() time.Time
	// incidents pin their recovery snapshots against retention.
	incidents *openIncidents
}

// NewManager returns a manager over an opened provider.
func NewManager(settings Settings, prov provider.Provider, log hclog.Logger) *Manager {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Manager{settings: settings, prov: prov, log: log, now: func() time.Time { return time.Now().UTC() },
		incidents: newOpenIncidents(settings.DataDir)}
}

// Open parses nothing and connects the provider of settings.
func Open(ctx context.Context, settings Settings, log hclog.Logger) (*Manager, error) {
	prov, err := settings.Open(ctx, log)
	if err != nil {
		return nil, err
	}
	return NewManager(settings, prov, log), nil
}

// Settings returns the manager's settings.
func (m *Manager) Settings() Settings { return m.settings }

// Provider returns the provider.
func (m *Manager) Provider() provider.Provider { return m.prov }

// Close releases the provider, waiting for background work until ctx ends.
func (m *Manager) Close(ctx context.Context) error { return m.prov.Close(ctx) }

// CreateOptions describe a snapshot to take.
type CreateOptions struct {
	// Trigger is one of provider.Trigger*.
	Trigger string
	// At is the time in the identifier (a tick's scheduled time, an incident's first sighting),
	// so that a retried request finds the snapshot it already took; zero means now.
	At time.Time
	// Fingerprint and Rule name the alert that caused an anomaly snapshot.
	Fingerprint string
	Rule        string
	// AppVersion overrides the configured app version.
	AppVersion string
	// Wait blocks until the snapshot is available (bounded by wait_timeout).
	Wait bool
}

// Tags returns the tags a snapshot taken with opt carries.
func (m *Manager) Tags(opt CreateOptions) map[string]string {
	version := opt.AppVersion
	if version == "" {
		version = m.settings.AppVersion
	}
	if version == "" {
		version = "unknown"
	}
	tags := map[string]string{
		provider.TagCreatedAt:  m.now().Format(time.RFC3339),
		provider.TagTrigger:    opt.Trigger,
		provider.TagAppVersion: version,
		provider.TagCreatedBy:  provider.CreatedByTDA,
	}
	if opt.Fingerprint != "" {
		tags[provider.TagAlertFingerprint] = opt.Fingerprint
	}
	if opt.Rule != "" {
		tags[provider.TagAlertRule] = opt.Rule
	}
	return tags
}

// ID returns the identifier a snapshot taken with opt gets.
func (m *Manager) ID(opt CreateOptions) string {
	at := opt.At
	if at.IsZero() {
		at = m.now()
	}
	suffix := opt.Fingerprint
	if len(suffix) > 8 {
		suffix = suffix[:8]
	}
	return provider.NewID(m.prov.Target(), opt.Trigger, at, suffix)
}

// Create takes a snapshot. When a snapshot with the same identifier and trigger already
// exists (a retried request), that one is returned instead of an error.
func (m *Manager) Create(ctx context.Context, opt CreateOptions) (provider.Snapshot, error) {
	known := false
	for _, t := range provider.Triggers {
		known = known || t == opt.Trigger
	}
	if !known {
		return provider.Snapshot{}, fmt.Errorf("unknown trigger %q", opt.Trigger)
	}
	id := m.ID(opt)
	s, err := m.prov.Create(ctx, provider.CreateRequest{ID: id, Tags: m.Tags(opt)})
	if errors.Is(err, provider.ErrAlreadyExists) {
		if existing, gerr := m.prov.Get(ctx, id); gerr == nil && existing.Managed() && existing.Trigger() == opt.Trigger {
			m.log.Info("snapshot already taken for this request", "snapshot", id, "status", existing.Status)
			s, err = existing, nil
		}
	}
	if err != nil {
		return provider.Snapshot{}, err
	}
	if opt.Wait {
		return m.Wait(ctx, s.ID)
	}
	return s, nil
}

// Wait waits until the snapshot is available, at most wait_timeout.
func (m *Manager) Wait(ctx context.Context, id string) (provider.Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, m.settings.WaitTimeout)
	defer cancel()
	return m.prov.Wait(ctx, id)
}

// PruneReport is the outcome of a prune.
type PruneReport struct {
	DryRun    bool
	Decisions []retention.Decision
	// Deleted lists the snapshots deleted; Failed the ones whose deletion failed, with why.
	Deleted []string
	Failed  map[string]error
}

// Prune applies the retention policy and deletes what it does not keep (nothing with dryRun).
// Only snapshots tda took are ever deleted, and never the newest nor one an open incident
// pins; when the open incidents cannot be read, nothing is.
func (m *Manager) Prune(ctx context.Context, dryRun bool) (PruneReport, error) {
	list, err := m.prov.List(ctx)
	if err != nil {
		return PruneReport{}, err
	}
	opt, err := m.retentionOptions()
	if err != nil {
		return PruneReport{}, err
	}
	rep := PruneReport{DryRun: dryRun, Failed: map[string]error{},
		Decisions: retention.Apply(list, m.settings.Retention, m.now(), opt)}
	if dryRun {
		return rep, nil
	}
	for _, d := range rep.Decisions {
		if d.Keep || !d.Snapshot.Managed() {
			continue
		}
		if err := m.prov.Delete(ctx, d.Snapshot.ID); err != nil {
			rep.Failed[d.Snapshot.ID] = err
			m.log.Warn("could not delete snapshot", "snapshot", d.Snapshot.ID, "error", err)
			continue
		}
		rep.Deleted = append(rep.Deleted, d.Snapshot.ID)
		m.log.Info("snapshot deleted by retention", "snapshot", d.Snapshot.ID, "reason", d.Reasons)
	}
	return rep, nil
}
