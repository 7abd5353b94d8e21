package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/termsafe"
)

// Migrations implements Operations.
func (s *Service) Migrations(_ context.Context, f MigrationFilter) ([]Migration, error) {
	switch f.Status {
	case "", MigrationPending, MigrationApproved, MigrationRejected, MigrationRunning, MigrationSucceeded, MigrationFailed:
	default:
		return nil, errorf(KindInvalid, "status must be pending, approved, rejected, running, succeeded or failed, not %q", f.Status)
	}
	var vals [][]byte
	err := s.store.View(func(tx *state.Tx) error {
		var err error
		vals, err = lastMatching(tx, bucketMigrations, clampLimit(f.Limit), func(v []byte) (bool, error) {
			if f.Status == "" && f.Name == "" {
				return true, nil
			}
			var m Migration
			if json.Unmarshal(v, &m) != nil {
				return false, nil
			}
			return (f.Status == "" || m.Status == f.Status) && (f.Name == "" || m.Name == f.Name), nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Migration, 0, len(vals))
	for _, v := range vals {
		var m Migration
		if json.Unmarshal(v, &m) == nil {
			out = append(out, m)
		}
	}
	return out, nil
}

// validName accepts what logs show as a migration's identity: a revision hash, a version
// ("1.0.0", "V2__add_phone"), a changeset ("db/changelog.yaml::3::alice").
func validName(n string) error {
	if n == "" {
		return errorf(KindInvalid, "name the migration (-name): its revision or version as the migration tool logs it")
	}
	if len(n) > 200 {
		return errorf(KindInvalid, "the migration name is longer than 200 characters")
	}
	if !termsafe.Printable(n) {
		return errorf(KindInvalid, "the migration name holds control characters (shown escaped: %s)", termsafe.String(clip(n, 80)))
	}
	return nil
}

// RequestMigration implements Operations.
func (s *Service) RequestMigration(_ context.Context, by Actor, req MigrationRequest) (Migration, error) {
	by, err := s.actor(by)
	if err != nil {
		return Migration{}, err
	}
	if err := checkLine("reason", req.Reason); err != nil {
		return Migration{}, err
	}
	m := Migration{Name: strings.TrimSpace(req.Name), Reason: strings.TrimSpace(req.Reason),
		RequestedBy: by.Name, RequestedAt: s.now().UTC(), Status: MigrationPending}
	err = validName(m.Name)
	if err == nil {
		err = s.store.Update(func(tx *state.Tx) error {
			n, err := tx.NextSequence(bucketMigrations)
			if err != nil {
				return err
			}
			m.ID = strconv.FormatUint(n, 10)
			return putJSON(tx, bucketMigrations, seqKey(n), m)
		})
	}
	s.audit(by, ActionMigrationRequest, m.ID, m.Reason, map[string]string{"name": m.Name}, err)
	return m, err
}

// update loads migration id, lets fn change it, and stores it when fn returns nil.
func (s *Service) update(id string, fn func(m *Migration) error) (Migration, error) {
	key, ok := idKey(id)
	if !ok {
		return Migration{}, errorf(KindInvalid, "%q is not a migration request id (see tda migrate list)", id)
	}
	var m Migration
	err := s.store.Update(func(tx *state.Tx) error {
		found, err := getJSON(tx, bucketMigrations, key, &m)
		if err != nil {
			return err
		}
		if !found {
			return errorf(KindNotFound, "no migration request %s (see tda migrate list)", id)
		}
		if err := fn(&m); err != nil {
			return err
		}
		return putJSON(tx, bucketMigrations, key, m)
	})
	return m, err
}

// DecideMigration implements Operations.
func (s *Service) DecideMigration(ctx context.Context, by Actor, d Decision) (Migration, error) {
	by, err := s.actor(by)
	if err != nil {
		return Migration{}, err
	}
	if err := checkLines("reason", d.Reason, "valid_for", d.ValidFor); err != nil {
		return Migration{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	action := ActionMigrationReject
	if d.Approve {
		action = ActionMigrationApprove
	}
	reason := strings.TrimSpace(d.Reason)
	detail := map[string]string{}
	validity := s.validity
	var m Migration
	err = func() error {
		if reason == "" {
			return errorf(KindInvalid, "a reason is required for a decision (-reason)")
		}
		if d.ValidFor != "" {
			v, err := sdk.ParseDuration(d.ValidFor)
			if err != nil || v <= 0 {
				return errorf(KindInvalid, "valid_for %q is not a positive duration such as 24h", d.ValidFor)
			}
			validity = v
		}
		cur, err := s.get(d.ID)
		if err != nil {
			return err
		}
		detail["name"] = cur.Name
		if err := decidable(cur, by, d.Approve); err != nil {
			return err
		}
		if d.Approve {
			if err := s.requireOverrideIfBlocked("approving a migration"); err != nil {
				return err
			}
		}
		m, err = s.update(d.ID, func(m *Migration) error {
			if err := decidable(*m, by, d.Approve); err != nil {
				return err
			}
			now := s.now().UTC()
			m.DecidedBy, m.DecidedAt, m.Decision = by.Name, now, reason
			if d.Approve {
				m.Status = MigrationApproved
				m.ValidUntil = now.Add(validity)
				detail["valid_until"] = m.ValidUntil.Format(time.RFC3339)
			} else {
				m.Status = MigrationRejected
			}
			return nil
		})
		return err
	}()
	s.audit(by, action, d.ID, reason, detail, err)
	if err != nil {
		return m, err
	}
	if d.Approve {
		s.announce(ctx, m)
	}
	return m, nil
}

// decidable says why by cannot decide on m, or nil.
func decidable(m Migration, by Actor, approve bool) error {
	if m.Status != MigrationPending {
		return errorf(KindConflict, "migration request %s is already %s (by %s)", m.ID, m.Status, m.DecidedBy)
	}
	if approve && sameName(m.RequestedBy, by.Name) {
		return errorf(KindForbidden, "%s requested migration %s and cannot approve it: another person must", by.Name, m.ID)
	}
	return nil
}

// requireOverrideIfBlocked refuses an action while the system is blocked and no operator's
// override is in force (an override declared by a log line never lifts "blocked").
func (s *Service) requireOverrideIfBlocked(what string) error {
	blocking, err := s.blocking()
	if err != nil {
		return err
	}
	if len(blocking) == 0 || s.overrides.byOperator(s.now()) != nil {
		return nil
	}
	in := blocking[0]
	return errorf(KindForbidden, "the system is blocked: %s incident %s (%s) is not acknowledged; "+
		"acknowledge it, or declare an override with a reason, before %s%s",
		in.Severity, in.ID, in.Rule, what, logLineNote(s.overrides.active(s.now())))
}

// logLineNote explains, when the override in force was declared by a log line, why it does not
// count here.
func logLineNote(o *OverrideInfo) string {
	if o == nil || o.Via == viaOperator {
		return ""
	}
	return fmt.Sprintf("; the override in force was declared by a log line of %s (%s), and only an operator's override lifts this", o.Origin, o.Actor)
}

// maintenanceWindows asks the window source; nil means none.
func (s *Service) maintenanceWindows(ctx context.Context) ([]Window, error) {
	if s.windows == nil {
		return nil, nil
	}
	ws, err := s.windows(ctx)
	if err != nil {
		return nil, errorf(KindUnavailable, "the maintenance windows are unknown, so the migration was not begun: %v", err)
	}
	return ws, nil
}

// inWindow reports whether t falls in one of windows, with the windows in words.
func inWindow(windows []Window, t time.Time) (bool, string) {
	if len(windows) == 0 {
		return true, "no maintenance window is configured"
	}
	var names []string
	for _, w := range windows {
		if w.Contains(t) {
			return true, w.Describe()
		}
		names = append(names, w.Describe())
	}
	return false, strings.Join(names, "; ")
}

// BeginMigration implements Operations.
func (s *Service) BeginMigration(ctx context.Context, by Actor, req BeginMigration) (Migration, error) {
	by, err := s.actor(by)
	if err != nil {
		return Migration{}, err
	}
	// Asked before the lock: the windows may come from a plugin that takes a moment to start.
	windows, err := s.maintenanceWindows(ctx)
	if err != nil {
		return Migration{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	detail := map[string]string{}
	if len(req.Command) > 0 {
		detail["command"] = strings.Join(req.Command, " ")
	}
	var m Migration
	err = func() error {
		id := strings.TrimSpace(req.ID)
		if id == "" {
			name := strings.TrimSpace(req.Name)
			if err := validName(name); err != nil {
				return err
			}
			list, err := s.Migrations(context.Background(), MigrationFilter{Name: name, Limit: 1000})
			if err != nil {
				return err
			}
			for _, c := range list {
				if c.Approved(s.now()) && c.Status != MigrationSucceeded {
					id = c.ID
					break
				}
			}
			if id == "" {
				return errorf(KindForbidden, "migration %q has no valid approved request: request it (tda migrate request -name %s) and have someone else approve it",
					name, name)
			}
		}
		now := s.now().UTC()
		cur, err := s.get(id)
		if err != nil {
			return err
		}
		detail["name"] = cur.Name
		if err := boundTo(cur, req); err != nil {
			return err
		}
		if err := runnable(cur, now); err != nil {
			return err
		}
		// The checks read the store, so they run before the write transaction. Only an
		// operator's override stands in for the window or the interlock.
		active := s.overrides.byOperator(now)
		var ovr string
		if ok, described := inWindow(windows, now); !ok {
			if active == nil {
				return errorf(KindForbidden, "%s is outside the maintenance window (%s): wait for it, or declare an override with a reason (tda override on)%s",
					now.Format(time.RFC3339), described, logLineNote(s.overrides.active(now)))
			}
			ovr = fmt.Sprintf("outside the maintenance window, under override by %s: %s", active.Actor, active.Reason)
		}
		blocking, err := s.blocking()
		if err != nil {
			return err
		}
		if len(blocking) > 0 {
			if active == nil {
				return s.requireOverrideIfBlocked("running a migration")
			}
			if ovr == "" {
				ovr = fmt.Sprintf("while blocked, under override by %s: %s", active.Actor, active.Reason)
			}
		}
		if ovr != "" {
			detail["override"] = ovr
		}
		m, err = s.update(id, func(m *Migration) error {
			if err := boundTo(*m, req); err != nil {
				return err
			}
			if err := runnable(*m, now); err != nil {
				return err
			}
			m.Status = MigrationRunning
			m.Runs = append(m.Runs, MigrationRun{By: by.Name, Started: now, Command: req.Command,
				Outcome: MigrationRunning, Override: ovr})
			return nil
		})
		return err
	}()
	s.audit(by, ActionMigrationBegin, m.ID, "", detail, err)
	return m, err
}

// boundTo says why req may not use m's approval, or nil. An approval is for the migration it
// was requested for: a run that names another revision is refused, and once a run has been
// started with a command, a retry (after a failure) must run the same command.
func boundTo(m Migration, req BeginMigration) error {
	if name := strings.TrimSpace(req.Name); name != "" && name != m.Name {
		return errorf(KindForbidden, "migration request %s was approved for %s, not %s: request %s on its own",
			m.ID, termsafe.String(m.Name), termsafe.String(name), termsafe.String(name))
	}
	if len(m.Runs) > 0 && len(req.Command) > 0 {
		first := m.Runs[0].Command
		if len(first) > 0 && strings.Join(first, "\x00") != strings.Join(req.Command, "\x00") {
			return errorf(KindForbidden, "migration request %s was first run as %q; its approval does not cover another command (%q): request it again",
				m.ID, strings.Join(first, " "), strings.Join(req.Command, " "))
		}
	}
	return nil
}

// runnable says why an approved request cannot run at now, or nil. An approval is used up by
// a successful run: running the migration again needs a new request and a new approval.
func runnable(m Migration, now time.Time) error {
	switch {
	case m.Status == MigrationSucceeded:
		at := ""
		if n := len(m.Runs); n > 0 {
			at = fmt.Sprintf(" (by %s, finished %s)", m.Runs[n-1].By, m.Runs[n-1].Finished.Format(time.RFC3339))
		}
		return errorf(KindConflict, "migration request %s (%s) already ran successfully%s: an approval is used once; request it again to run it again",
			m.ID, m.Name, at)
	case m.Status == MigrationPending:
		return errorf(KindForbidden, "migration request %s (%s) is not approved yet", m.ID, m.Name)
	case m.Status == MigrationRejected:
		return errorf(KindForbidden, "migration request %s (%s) was rejected by %s: %s", m.ID, m.Name, m.DecidedBy, m.Decision)
	case m.Status == MigrationRunning:
		return errorf(KindConflict, "migration request %s (%s) is already running", m.ID, m.Name)
	case !m.Approved(now):
		return errorf(KindForbidden, "the approval of migration request %s (%s) expired at %s: request it again",
			m.ID, m.Name, m.ValidUntil.Format(time.RFC3339))
	}
	return nil
}

// get loads one migration request.
func (s *Service) get(id string) (Migration, error) {
	key, ok := idKey(id)
	if !ok {
		return Migration{}, errorf(KindInvalid, "%q is not a migration request id (see tda migrate list)", id)
	}
	var m Migration
	err := s.store.View(func(tx *state.Tx) error {
		found, err := getJSON(tx, bucketMigrations, key, &m)
		if err == nil && !found {
			err = errorf(KindNotFound, "no migration request %s (see tda migrate list)", id)
		}
		return err
	})
	return m, err
}

// FinishMigration implements Operations.
func (s *Service) FinishMigration(_ context.Context, by Actor, req FinishMigration) (Migration, error) {
	by, err := s.actor(by)
	if err != nil {
		return Migration{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	detail := map[string]string{"outcome": req.Outcome, "exit_code": strconv.Itoa(req.ExitCode)}
	if req.Snapshot != "" {
		detail["snapshot"] = req.Snapshot
	}
	m, err := func() (Migration, error) {
		if req.Outcome != MigrationSucceeded && req.Outcome != MigrationFailed {
			return Migration{}, errorf(KindInvalid, "outcome must be succeeded or failed, not %q", req.Outcome)
		}
		return s.update(req.ID, func(m *Migration) error {
			detail["name"] = m.Name
			if m.Status != MigrationRunning || len(m.Runs) == 0 {
				return errorf(KindConflict, "migration request %s is %s, not running", m.ID, m.Status)
			}
			run := &m.Runs[len(m.Runs)-1]
			run.Finished, run.Snapshot, run.Outcome = s.now().UTC(), req.Snapshot, req.Outcome
			run.ExitCode, run.Error = req.ExitCode, req.Error
			m.Status = req.Outcome
			return nil
		})
	}()
	s.audit(by, ActionMigrationFinish, req.ID, req.Error, detail, err)
	return m, err
}

// announce tells the pipelines with a rules processor about an approval, so that the
// migration rule can tell an approved migration seen in the logs from an unapproved one.
// Without an agent the approval is announced when the agent next starts (AnnounceApprovals).
func (s *Service) announce(ctx context.Context, m Migration) {
	if s.agent == nil {
		return
	}
	for _, p := range s.pipelinesWith("processor.rules.") {
		if err := s.agent.Inject(ctx, p, []sdk.Event{ApprovalEvent(m, s.now())}); err != nil {
			s.log.Warn("could not announce a migration approval to a pipeline", "pipeline", p, "migration", m.ID, "error", err)
		}
	}
}

// AnnounceApprovals injects every approval still valid into the pipelines (the agent calls
// it once its pipelines run).
func (s *Service) AnnounceApprovals(ctx context.Context) error {
	list, err := s.Migrations(ctx, MigrationFilter{Limit: 1000})
	if err != nil {
		return err
	}
	now := s.now()
	for i := len(list) - 1; i >= 0; i-- {
		if list[i].Approved(now) {
			s.announce(ctx, list[i])
		}
	}
	return nil
}

// Audit event of an approval, as the rules processor reads it.
const (
	EventMigrationApproved = "migration_approved"
)

// ApprovalEvent is the audit event that announces an approved migration to the pipelines.
func ApprovalEvent(m Migration, now time.Time) sdk.Event {
	return sdk.Event{Kind: sdk.KindAudit, Origin: "operator", Time: now.UTC(), Fields: map[string]string{
		"event":       EventMigrationApproved,
		"migration":   m.Name,
		"request_id":  m.ID,
		"actor":       m.DecidedBy,
		"reason":      m.Decision,
		"approved_at": sdk.FormatTime(m.DecidedAt),
		"valid_until": sdk.FormatTime(m.ValidUntil),
	}}
}
