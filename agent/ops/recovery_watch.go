package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/sdk"
)

// TargetHealth is what the last probe of a snapshot target found.
type TargetHealth struct {
	Name    string `json:"name"`
	Healthy bool   `json:"healthy"`
	// Reason says what failed and what to fix (empty when healthy).
	Reason  string    `json:"reason,omitempty"`
	Checked time.Time `json:"checked"`
	// Since is when the target entered its current state.
	Since time.Time `json:"since"`
}

// SnapshotProber is implemented by snapshot targets that can be probed without changing
// anything (the agent's). The service probes each target at start and every ProbeInterval.
type SnapshotProber interface {
	// ProbeIntervals returns each target's probe interval, by target name.
	ProbeIntervals() map[string]time.Duration
	// Probe checks that snapshots and restores of the target would work now; the error says
	// what to fix and where.
	Probe(ctx context.Context, target string) error
}

var bucketAuditedSnapshots = []string{"ops", "audited_snapshots"}

// Recovery watch bounds.
const (
	// probeTimeout bounds one probe.
	probeTimeout = 20 * time.Second
	// anomalyScanEvery and anomalyScanFor: after a firing alert, the snapshot lists are read
	// this often, for at most this long, until the alert's anomaly snapshot shows.
	anomalyScanEvery = 2 * time.Second
	anomalyScanFor   = 90 * time.Second
	// maxPendingAlerts bounds the alerts waiting for their anomaly snapshot; more are
	// caught by the next probe round's scan.
	maxPendingAlerts = 256
)

// recoveryWatch holds the probes' results and the alerts awaiting their anomaly snapshot.
type recoveryWatch struct {
	// alerts receives the fingerprints of firing alerts from Observe; never blocks it.
	alerts chan string

	mu     sync.Mutex
	health map[string]TargetHealth // by target name: bounded by the configured targets
}

func newRecoveryWatch() *recoveryWatch {
	return &recoveryWatch{alerts: make(chan string, 64), health: map[string]TargetHealth{}}
}

// noticeAlert hands a firing alert to the watch without blocking the pipeline: when the
// channel is full, the next scan round finds its snapshot.
func (w *recoveryWatch) noticeAlert(e sdk.Event) {
	if e.Kind != sdk.KindAlert || e.Alert == nil || e.Alert.State != sdk.StateFiring {
		return
	}
	select {
	case w.alerts <- e.Alert.Fingerprint:
	default:
	}
}

func (w *recoveryWatch) set(name string, err error, now time.Time) (changed bool, h TargetHealth) {
	w.mu.Lock()
	defer w.mu.Unlock()
	prev, known := w.health[name]
	h = TargetHealth{Name: name, Healthy: err == nil, Checked: now, Since: now}
	if err != nil {
		h.Reason = err.Error()
	}
	if known && prev.Healthy == h.Healthy {
		h.Since = prev.Since
	}
	w.health[name] = h
	return !known || prev.Healthy != h.Healthy || prev.Reason != h.Reason, h
}

func (w *recoveryWatch) snapshot() []TargetHealth {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]TargetHealth, 0, len(w.health))
	for _, h := range w.health {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// targetProblems are the degraded reasons of the targets whose last probe failed.
func (s *Service) targetProblems() ([]TargetHealth, []string) {
	all := s.recovery.snapshot()
	var out []string
	for _, h := range all {
		if !h.Healthy {
			out = append(out, fmt.Sprintf("snapshot target %s: %s (failing since %s)", h.Name, h.Reason,
				h.Since.Format(time.RFC3339)))
		}
	}
	return all, out
}

// startRecoveryWatch probes the snapshot targets and audits the anomaly snapshots the sinks
// take, in the background until Close. Only the agent's service runs it.
func (s *Service) startRecoveryWatch() {
	p, ok := s.snapshots.(SnapshotProber)
	if !ok || s.agent == nil {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.watch(p)
	}()
}

// watch is the recovery watch's loop. Invariant: every target is probed at start and then
// at least every interval; the loop ends when the service closes.
func (s *Service) watch(p SnapshotProber) {
	intervals := p.ProbeIntervals()
	next := map[string]time.Time{}
	for name := range intervals {
		next[name] = time.Time{} // probe at once
	}
	pending := map[string]time.Time{} // alert fingerprint -> give up scanning at
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case fp := <-s.recovery.alerts:
			if len(pending) < maxPendingAlerts {
				pending[fp] = time.Now().Add(anomalyScanFor)
			}
		case <-timer.C:
		}
		now := time.Now()
		probed := false
		for name, at := range next {
			if now.Before(at) {
				continue
			}
			s.probe(p, name)
			next[name] = time.Now().Add(intervals[name])
			probed = true
		}
		if probed || len(pending) > 0 {
			s.auditAnomalySnapshots(pending)
		}
		for fp, until := range pending {
			if now.After(until) {
				delete(pending, fp)
			}
		}
		// A probe already due (the probes and the scan took longer than an interval) waits
		// the minimum, not the hour of a watch with nothing to probe.
		wait, due := time.Duration(0), false
		for _, at := range next {
			if d := time.Until(at); !due || d < wait {
				wait, due = d, true
			}
		}
		if len(pending) > 0 && (!due || wait > anomalyScanEvery) {
			wait, due = anomalyScanEvery, true
		}
		if !due {
			wait = time.Hour
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(max(wait, 10*time.Millisecond))
	}
}

// probe checks one target and logs a change of its health.
func (s *Service) probe(p SnapshotProber, name string) {
	ctx, cancel := context.WithTimeout(s.ctx, probeTimeout)
	defer cancel()
	err := p.Probe(ctx, name)
	if s.ctx.Err() != nil {
		return // the agent stops: not the target's fault
	}
	changed, h := s.recovery.set(name, err, s.now().UTC())
	switch {
	case !changed:
	case h.Healthy:
		s.log.Info("snapshot target probed: snapshots and restores can run", "target", name)
	default:
		s.log.Warn("snapshot target failed its probe: the system is degraded until it passes", "target", name, "reason", h.Reason)
	}
}

// auditAnomalySnapshots records in the audit log every anomaly snapshot the sinks took that is
// not recorded yet, and clears the pending alerts whose snapshot showed. Invariant: each
// snapshot is recorded once (its id is kept in bucketAuditedSnapshots); ids of snapshots that
// no longer exist are forgotten, which bounds the bucket by the snapshots kept.
func (s *Service) auditAnomalySnapshots(pending map[string]time.Time) {
	ctx, cancel := context.WithTimeout(s.ctx, probeTimeout)
	defer cancel()
	targets, err := s.snapshots.List(ctx)
	if err != nil {
		s.log.Debug("snapshot lists unreadable; anomaly snapshots are recorded later", "error", err)
		return
	}
	complete := true
	present := map[string]bool{}
	type found struct {
		t SnapshotTarget
		s SnapshotInfo
	}
	var fresh []found
	err = s.store.View(func(tx *state.Tx) error {
		for _, t := range targets {
			if t.Error != "" {
				complete = false
				continue
			}
			for _, tier := range t.Tiers {
				for _, snap := range tier.Snapshots {
					if snap.Trigger != triggerAnomaly || snap.Tags[tagCreatedBy] != createdByTDA {
						continue
					}
					present[snap.ID] = true
					delete(pending, snap.Tags[tagSnapshotAlert])
					v, err := tx.Get(bucketAuditedSnapshots, []byte(snap.ID))
					if err != nil {
						return err
					}
					if v == nil {
						fresh = append(fresh, found{t, snap})
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		s.log.Error("could not read the recorded anomaly snapshots", "error", err)
		return
	}
	sort.Slice(fresh, func(i, j int) bool { return fresh[i].s.Time.Before(fresh[j].s.Time) })
	for _, f := range fresh {
		s.auditAnomalySnapshot(f.t, f.s)
	}
	if !complete {
		return
	}
	var stale [][]byte
	if err := s.store.View(func(tx *state.Tx) error {
		return tx.ForEach(bucketAuditedSnapshots, func(k, _ []byte) error {
			if !present[string(k)] {
				stale = append(stale, append([]byte(nil), k...))
			}
			return nil
		})
	}); err != nil || len(stale) == 0 {
		return
	}
	if err := s.store.Update(func(tx *state.Tx) error {
		for _, k := range stale {
			if err := tx.Delete(bucketAuditedSnapshots, k); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		s.log.Error("could not forget deleted anomaly snapshots", "error", err)
	}
}

// auditAnomalySnapshot writes the audit entry of one anomaly snapshot and marks it recorded,
// in one transaction.
func (s *Service) auditAnomalySnapshot(t SnapshotTarget, snap SnapshotInfo) {
	fp, rule := snap.Tags[tagSnapshotAlert], snap.Tags[tagSnapshotRule]
	detail := map[string]string{"target": t.Name, "source": t.Target, "trigger": triggerAnomaly,
		"taken": snap.Time.UTC().Format(time.RFC3339Nano), "status": snap.Status}
	reason := "anomaly snapshot of " + t.Target
	if rule != "" {
		detail["rule"] = rule
		reason = fmt.Sprintf("anomaly snapshot of %s for alert %s", t.Target, rule)
	}
	var note *TimelineEntry
	if fp != "" {
		detail["fingerprint"] = fp
		if in, err := s.findIncident(fp); err == nil {
			ref := refOf(in)
			reason = fmt.Sprintf("anomaly snapshot of %s for incident %s", t.Target, ref.Describe())
			detail["incident"] = ref.ID
			if ref.Key != "" {
				detail["key"] = ref.Key
			}
			p := RecoveryPoint{SnapshotID: snap.ID, Time: snap.Time}
			place(ref, &p)
			detail["relation"] = p.Relation
			note = &TimelineEntry{At: snap.Time.UTC(), What: TimelineSnapshot, Snapshot: snap.ID, By: SystemActorName,
				Text: fmt.Sprintf("anomaly snapshot of %s (%s), %s", t.Target, t.Name, p.Relation)}
		}
	}
	e := AuditEntry{Time: s.now().UTC(), Actor: SystemActorName, Via: SystemVia, Action: ActionSnapshotAnomaly,
		Target: snap.ID, Reason: reason, Outcome: "ok", Detail: detail}
	if err := s.store.Update(func(tx *state.Tx) error {
		if v, err := tx.Get(bucketAuditedSnapshots, []byte(snap.ID)); err != nil || v != nil {
			return err // recorded meanwhile
		}
		if _, err := appendAudit(tx, e); err != nil {
			return err
		}
		b, _ := json.Marshal(e.Time)
		return tx.Put(bucketAuditedSnapshots, []byte(snap.ID), b)
	}); err != nil {
		s.log.Error("could not record an anomaly snapshot in the audit log", "snapshot", snap.ID, "error", err)
		return
	}
	if note != nil {
		if err := s.NoteIncident(fp, *note); err != nil {
			s.log.Warn("could not add the anomaly snapshot to its incident's timeline", "snapshot", snap.ID, "error", err)
		}
	}
}
