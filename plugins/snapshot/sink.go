package snapshot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/plugins/snapshot/provider"
	"github.com/tda-dev/tda/sdk"
)

// Tick fields the sink reads (set by the schedule source).
const (
	TickFieldScheduledAt = "scheduled_at"
	TickFieldSchedule    = "schedule"
)

// Component returns the snapshot sink. It accepts alerts and ticks, and uses a durable queue:
// a batch is persisted by the agent before Write, so retries never hold up the pipeline.
func Component() sdk.Component {
	return sdk.SinkComponent("snapshot", Spec, New).
		WithAccepts(sdk.KindAlert, sdk.KindTick).
		WithQueue(sdk.QueueDurable).
		WithActions(actions()...)
}

// Sink takes snapshots on ticks and alerts.
type Sink struct {
	settings Settings
	log      hclog.Logger
	mgr      *Manager

	// bg bounds the background waits and prunes; Close cancels it.
	bg     context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu sync.Mutex
	// lastAnomaly is the recovery point of the newest anomaly snapshot (looked up once).
	lastAnomaly      time.Time
	lastAnomalyKnown bool
}

// New builds the sink from its config; it does no I/O.
func New(conf *sdk.Config, res sdk.Resources) (sdk.Sink, error) {
	settings, err := ParseSettings(conf, res)
	if err != nil {
		return nil, err
	}
	return &Sink{settings: settings, log: res.Logger}, nil
}

// Start opens the provider.
func (s *Sink) Start(ctx context.Context) error {
	mgr, err := Open(ctx, s.settings, s.log)
	if err != nil {
		return err
	}
	s.mgr = mgr
	s.bg, s.cancel = context.WithCancel(context.Background())
	return nil
}

// Close waits for background work (waits for availability, prunes) until ctx ends.
func (s *Sink) Close(ctx context.Context) error {
	if s.mgr == nil {
		return nil
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.cancel()
		<-done
	}
	s.cancel()
	return s.mgr.Close(ctx)
}

// Write takes at most one anomaly snapshot (for the first qualifying alert) and one scheduled
// snapshot (for the latest tick) per batch. It returns once each snapshot's recovery point is
// fixed; waiting until it is available, and pruning after a scheduled one, run in the
// background and are logged.
func (s *Sink) Write(ctx context.Context, b sdk.Batch) error {
	if s.mgr == nil {
		return sdk.Permanent(errors.New("snapshot sink used before Start"))
	}
	// First, so that a prune never runs without the pins of the incidents this batch opens.
	// The snapshots are taken even when the list cannot be written; the batch is retried.
	noted := s.mgr.NoteAlerts(b.Events)
	var alert *sdk.Event
	var tick *sdk.Event
	var tickAt time.Time
	for i := range b.Events {
		e := &b.Events[i]
		switch e.Kind {
		case sdk.KindAlert:
			if alert == nil && s.qualifies(e.Alert) {
				alert = e
			}
		case sdk.KindTick:
			if at := tickTime(e); tick == nil || at.After(tickAt) {
				tick, tickAt = e, at
			}
		}
	}
	var errs []error
	if alert != nil {
		errs = append(errs, s.onAlert(ctx, alert))
	}
	if tick != nil {
		errs = append(errs, s.onTick(ctx, tick, tickAt))
	}
	err := errors.Join(append(errs, noted)...)
	if err == nil {
		return nil
	}
	if noted != nil {
		return err
	}
	for _, e := range errs {
		if e != nil && provider.Transient(e) {
			return err
		}
	}
	return sdk.Permanent(err)
}

func (s *Sink) qualifies(a *sdk.Alert) bool {
	return a != nil && a.State == sdk.StateFiring && slices.Contains(s.settings.WhenSeverity, a.Severity)
}

func tickTime(e *sdk.Event) time.Time {
	if v := e.Field(TickFieldScheduledAt); v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t
		}
	}
	if !e.Time.IsZero() {
		return e.Time
	}
	return time.Now()
}

func (s *Sink) onAlert(ctx context.Context, e *sdk.Event) error {
	a := e.Alert
	now := time.Now()
	last, err := s.lastAnomalyTime(ctx)
	if err != nil {
		return fmt.Errorf("anomaly snapshot for alert %s: %w", a.Fingerprint, err)
	}
	if !last.IsZero() && now.Sub(last) < s.settings.AnomalyInterval {
		s.log.Info("anomaly snapshot skipped: a recent one covers this alert", "rule", a.Rule,
			"fingerprint", a.Fingerprint, "last", last, "anomaly_interval", s.settings.AnomalyInterval.String())
		return nil
	}
	at := a.FirstSeen
	if at.IsZero() {
		at = e.Time
	}
	snap, err := s.mgr.Create(ctx, CreateOptions{Trigger: provider.TriggerAnomaly, At: at,
		Fingerprint: a.Fingerprint, Rule: a.Rule})
	if err != nil {
		return fmt.Errorf("anomaly snapshot for alert %s (%s): %w", a.Rule, a.Fingerprint, err)
	}
	s.setLastAnomaly(snap.Time)
	s.log.Warn("anomaly snapshot taken", "snapshot", snap.ID, "rule", a.Rule, "fingerprint", a.Fingerprint,
		"recovery_point", snap.Time)
	s.background(func(ctx context.Context) {
		if _, err := s.mgr.Wait(ctx, snap.ID); err != nil {
			s.log.Error("anomaly snapshot did not become available; the next alert will try again",
				"snapshot", snap.ID, "error", err)
			s.clearLastAnomaly(snap.Time)
			return
		}
		s.log.Info("anomaly snapshot available", "snapshot", snap.ID)
	})
	return nil
}

func (s *Sink) onTick(ctx context.Context, e *sdk.Event, at time.Time) error {
	snap, err := s.mgr.Create(ctx, CreateOptions{Trigger: provider.TriggerScheduled, At: at})
	if err != nil {
		return fmt.Errorf("scheduled snapshot (%s): %w", e.Field(TickFieldSchedule), err)
	}
	s.log.Info("scheduled snapshot taken", "snapshot", snap.ID, "schedule", e.Field(TickFieldSchedule))
	s.background(func(ctx context.Context) {
		if _, err := s.mgr.Wait(ctx, snap.ID); err != nil {
			s.log.Error("scheduled snapshot did not become available; nothing is pruned", "snapshot", snap.ID, "error", err)
			return
		}
		rep, err := s.mgr.Prune(ctx, false)
		if err != nil {
			s.log.Error("prune after scheduled snapshot failed", "error", err)
			return
		}
		s.log.Info("scheduled snapshot available, retention applied", "snapshot", snap.ID,
			"deleted", len(rep.Deleted), "delete_failed", len(rep.Failed))
	})
	return nil
}

func (s *Sink) background(fn func(ctx context.Context)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn(s.bg)
	}()
}

// lastAnomalyTime returns the newest anomaly snapshot's recovery point, asking the provider
// the first time (so the interval holds across restarts).
func (s *Sink) lastAnomalyTime(ctx context.Context) (time.Time, error) {
	s.mu.Lock()
	known, last := s.lastAnomalyKnown, s.lastAnomaly
	s.mu.Unlock()
	if known {
		return last, nil
	}
	list, err := s.mgr.Provider().List(ctx)
	if err != nil {
		return time.Time{}, err
	}
	for _, snap := range list {
		if snap.Managed() && snap.Trigger() == provider.TriggerAnomaly && snap.Status != provider.StatusFailed &&
			snap.Time.After(last) {
			last = snap.Time
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.lastAnomalyKnown {
		s.lastAnomaly, s.lastAnomalyKnown = last, true
	}
	return s.lastAnomaly, nil
}

func (s *Sink) setLastAnomaly(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.After(s.lastAnomaly) {
		s.lastAnomaly = t
	}
	s.lastAnomalyKnown = true
}

func (s *Sink) clearLastAnomaly(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastAnomaly.Equal(t) {
		s.lastAnomaly = time.Time{}
	}
}
