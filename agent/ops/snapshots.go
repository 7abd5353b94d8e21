package ops

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/tda-dev/tda/agent/state"
)

func (s *Service) needSnapshots() error {
	if s.snapshots == nil {
		return errorf(KindUnavailable, "no snapshot target is configured: add a sink \"snapshot\" block (see docs/recovery.md)")
	}
	return nil
}

// Snapshots implements Operations.
func (s *Service) Snapshots(ctx context.Context) ([]SnapshotTarget, error) {
	if s.snapshots == nil {
		return []SnapshotTarget{}, nil
	}
	targets, err := s.snapshots.List(ctx)
	if err != nil {
		return nil, err
	}
	restores, err := s.Restores(ctx)
	if err != nil {
		return nil, err
	}
	for i := range targets {
		for _, r := range restores {
			if r.Target == targets[i].Name {
				r := r
				targets[i].LastRestore = &r
				break
			}
		}
	}
	return targets, nil
}

// CreateSnapshot implements Operations.
func (s *Service) CreateSnapshot(ctx context.Context, by Actor, req SnapshotRequest) (SnapshotInfo, error) {
	by, err := s.actor(by)
	if err != nil {
		return SnapshotInfo{}, err
	}
	if err := checkLines("reason", req.Reason, "target", req.Target); err != nil {
		return SnapshotInfo{}, err
	}
	reason := strings.TrimSpace(req.Reason)
	var info SnapshotInfo
	detail := map[string]string{}
	err = func() error {
		if reason == "" {
			return errorf(KindInvalid, "a reason is required: say why this snapshot is taken")
		}
		if err := s.needSnapshots(); err != nil {
			return err
		}
		name, protected, err := s.snapshots.Resolve(ctx, req.Target)
		if err != nil {
			return err
		}
		detail["target"], detail["source"] = name, protected
		info, err = s.snapshots.Create(ctx, name)
		return err
	}()
	target := info.ID
	if target == "" && detail["source"] != "" {
		target = "new snapshot of " + detail["source"] // none was taken: name what it was of
	}
	s.audit(by, ActionSnapshotCreate, target, reason, detail, err)
	return info, err
}

// Restores implements Operations.
func (s *Service) Restores(context.Context) ([]Restore, error) {
	var vals [][]byte
	err := s.store.View(func(tx *state.Tx) error {
		var err error
		vals, err = lastMatching(tx, bucketRestores, 100, func([]byte) (bool, error) { return true, nil })
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Restore, 0, len(vals))
	for _, v := range vals {
		var r Restore
		if json.Unmarshal(v, &r) == nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// StartRestore implements Operations. The restore runs in the background; Restores reports
// its progress and, once done, its RPO, RTO, the new database's connection details and the
// next steps.
func (s *Service) StartRestore(ctx context.Context, by Actor, req RestoreRequest) (Restore, error) {
	by, err := s.actor(by)
	if err != nil {
		return Restore{}, err
	}
	if err := checkLines("reason", req.Reason, "target", req.Target, "new name", req.NewName, "confirmation", req.Confirm,
		"incident", req.Incident); err != nil {
		return Restore{}, err
	}
	req.SnapshotID, req.Incident = strings.TrimSpace(req.SnapshotID), strings.TrimSpace(req.Incident)
	if !req.ToTime.IsZero() {
		req.ToTime = req.ToTime.UTC()
	}
	r := Restore{SnapshotID: req.SnapshotID, ToTime: req.ToTime,
		NewName: strings.TrimSpace(req.NewName), By: by.Name, Reason: strings.TrimSpace(req.Reason),
		Started: s.now().UTC(), Status: RestoreRunning}
	detail := map[string]string{"new_name": r.NewName}
	var incident *IncidentRef
	err = func() error {
		if r.Reason == "" {
			return errorf(KindInvalid, "a reason is required: say why you restore")
		}
		if err := s.needSnapshots(); err != nil {
			return err
		}
		name, protected, err := s.snapshots.Resolve(ctx, req.Target)
		if err != nil {
			return err
		}
		r.Target, r.Source = name, protected
		detail["target"], detail["source"] = name, protected
		switch {
		case r.SnapshotID != "" && !r.ToTime.IsZero():
			return errorf(KindInvalid, "give a snapshot id or a point in time, not both")
		case r.NewName == "":
			return errorf(KindInvalid, "name the new cluster or database: restores never overwrite")
		case r.NewName == protected:
			return errorf(KindInvalid, "%s is the protected cluster or database itself: restores never overwrite; choose a new name", protected)
		case strings.TrimSpace(req.Confirm) != protected:
			return errorf(KindInvalid, "type the protected cluster or database name (%s) to confirm the restore", protected)
		}
		if req.Incident != "" {
			detail["incident"] = req.Incident
			ref, point, err := s.incidentRestore(ctx, &req, name)
			if err != nil {
				return err
			}
			incident = &ref
			r.SnapshotID, r.ToTime = req.SnapshotID, req.ToTime
			r.Incident, r.IncidentFingerprint, r.Phase, r.Relation = ref.ID, ref.Fingerprint, point.Phase, point.Relation
			detail["incident"], detail["rule"], detail["phase"] = ref.ID, ref.Rule, point.Phase
			if ref.Key != "" {
				detail["key"] = ref.Key
			}
			if point.Phase != PhaseBefore {
				detail["confirmed"] = point.Warning
			}
		}
		if r.SnapshotID == "" && r.ToTime.IsZero() {
			return errorf(KindInvalid, "choose what to restore: a snapshot id or a point in time")
		}
		if r.SnapshotID != "" {
			detail["snapshot"] = r.SnapshotID
			// Whether typed or chosen for an incident, the id is checked before the restore is
			// accepted: one that could name a file outside a dump directory never reaches it.
			if err := s.snapshots.ValidID(r.SnapshotID); err != nil {
				return errorf(KindInvalid, "%v", err)
			}
		}
		if err := s.requireOverrideIfBlocked("restoring"); err != nil {
			return err
		}
		if s.agent == nil {
			return errorf(KindUnavailable, "restores started here run inside the agent: start it (tda run), or use tda restore")
		}
		return s.store.Update(func(tx *state.Tx) error {
			n, err := tx.NextSequence(bucketRestores)
			if err != nil {
				return err
			}
			r.ID = strconv.FormatUint(n, 10)
			return putJSON(tx, bucketRestores, seqKey(n), r)
		})
	}()
	if r.ID != "" {
		detail["restore"] = r.ID
	}
	s.audit(by, ActionRestoreStart, restoreTarget(r), r.Reason, detail, err)
	if err != nil {
		return r, err
	}
	req.Target = r.Target
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.runRestore(by, req, r, incident)
	}()
	return r, nil
}

func (s *Service) runRestore(by Actor, req RestoreRequest, r Restore, incident *IncidentRef) {
	res, err := s.snapshots.Restore(s.ctx, req)
	done := r
	done.Finished = s.now().UTC()
	detail := map[string]string{"restore": r.ID, "target": r.Target, "source": r.Source, "new_name": r.NewName}
	if r.Incident != "" {
		detail["incident"] = r.Incident
	}
	if err != nil {
		done.Status, done.Error = RestoreFailed, err.Error()
		if s.ctx.Err() != nil {
			done.Error = "interrupted: the agent stopped during the restore; check " + r.NewName + " and start again"
		}
	} else {
		done.Status = RestoreSucceeded
		done.RecoveryPoint, done.RPOSeconds, done.RTOSeconds = res.RecoveryPoint, res.RPOSeconds, res.RTOSeconds
		done.Endpoint, done.Connection = res.Endpoint, res.Connection
		done.NextSteps = NextSteps(done, incident)
		detail["recovery_point"] = done.RecoveryPoint.UTC().Format(time.RFC3339Nano)
		detail["rpo_seconds"] = seconds(done.RPOSeconds)
		if c := done.Connection; c != nil {
			detail["connection"] = c.String()
		}
	}
	detail["status"] = done.Status
	detail["rto_seconds"] = seconds(done.RTOSeconds)
	// The audit entry comes first: whoever sees the restore finished finds it in the log.
	s.audit(by, ActionRestoreFinish, restoreTarget(r), r.Reason, detail, err)
	key, _ := idKey(r.ID)
	if werr := s.store.Update(func(tx *state.Tx) error { return putJSON(tx, bucketRestores, key, done) }); werr != nil {
		s.log.Error("could not record the end of a restore", "restore", r.ID, "error", werr)
	}
}
