package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/agent/deadletter"
	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/sdk"
)

// Agent is the running agent as the operations see it: its pipelines, a way to inject
// events into them, and the health of its components.
type Agent interface {
	// Pipelines returns each running pipeline's processor addresses, in order.
	Pipelines() map[string][]string
	// Inject sends events into a pipeline's first processor and waits until the pipeline
	// handed its output to the sinks.
	Inject(ctx context.Context, pipeline string, events []sdk.Event) error
	// Components returns the health of every component instance.
	Components() []ComponentHealth
}

// Window is a maintenance window of the migration rule.
type Window interface {
	Contains(t time.Time) bool
	Describe() string
}

// WindowSource returns the maintenance windows of the migration rule; the windows come from
// the rules processors' plugins, which may be unreachable for a moment.
type WindowSource func(ctx context.Context) ([]Window, error)

// StaticWindows is a WindowSource that always returns ws.
func StaticWindows(ws ...Window) WindowSource {
	return func(context.Context) ([]Window, error) { return ws, nil }
}

// Snapshots is the snapshot targets (the `sink "snapshot"` blocks) the operations can list,
// snapshot and restore.
type Snapshots interface {
	// List returns every target's tiers (a target that cannot be listed carries Error).
	List(ctx context.Context) ([]SnapshotTarget, error)
	// ValidID says why id cannot name a snapshot (nil: it can). It is asked before a restore is
	// accepted, so that an id that could reach outside a dump directory is refused at once.
	ValidID(id string) error
	// Resolve returns the sink name and the protected cluster or database of a target name
	// ("" selects the only target).
	Resolve(ctx context.Context, target string) (name, protected string, err error)
	// Create takes a manual snapshot of the named target.
	Create(ctx context.Context, target string) (SnapshotInfo, error)
	// Restore restores into a new cluster or database and returns once it serves
	// connections, with the recovery point, RPO and RTO filled in.
	Restore(ctx context.Context, req RestoreRequest) (Restore, error)
}

// Options configure a Service.
type Options struct {
	Store *state.Store
	// Trail is the audit trail the alerts are read from (nil: none configured).
	Trail *Trail
	// Agent is the running agent (nil when the CLI opened the store itself).
	Agent Agent
	// Snapshots are the snapshot targets (nil: none configured).
	Snapshots Snapshots
	// DeadLetters are the batches the runtime gave up on (nil: not reachable from here, as
	// when the CLI opened the store itself).
	DeadLetters deadletter.Letters
	// Windows returns the migration rule's maintenance windows (none: migrations may run at
	// any time once approved; a nil Windows has none). It is asked each time a migration
	// begins, before anything is locked; an error refuses the migration with its reason.
	Windows WindowSource
	// ApprovalValidity is how long an approval lasts by default (default 24h).
	ApprovalValidity time.Duration
	// Via names how actors reach this service when the caller does not say ("cli").
	Via    string
	Now    func() time.Time
	Logger hclog.Logger
}

// Service implements Operations over the state store.
type Service struct {
	store     *state.Store
	trail     *Trail
	agent     Agent
	snapshots Snapshots
	letters   deadletter.Letters
	windows   WindowSource
	validity  time.Duration
	via       string
	now       func() time.Time
	log       hclog.Logger
	overrides *overrides
	recovery  *recoveryWatch

	// mu serialises read-check-write sequences (decisions, runs) within this process; the
	// store serialises writers across processes.
	mu sync.Mutex
	// incMu guards book, the incident records, and serialises their changes.
	incMu sync.Mutex
	book  *incidentBook
	// nudge wakes the incident sync when an alert or incident update passes (agent only).
	nudge chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ Operations = (*Service)(nil)

// NewService returns a service over opts.Store. Close it to wait for restores in progress.
func NewService(opts Options) (*Service, error) {
	if opts.Store == nil {
		return nil, fmt.Errorf("ops: no state store")
	}
	if opts.ApprovalValidity <= 0 {
		opts.ApprovalValidity = 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Via == "" {
		opts.Via = "cli"
	}
	s := &Service{store: opts.Store, trail: opts.Trail, agent: opts.Agent, snapshots: opts.Snapshots,
		letters: opts.DeadLetters, windows: opts.Windows, validity: opts.ApprovalValidity, via: opts.Via, now: opts.Now,
		log: opts.Logger, overrides: newOverrides(), book: newIncidentBook(), nudge: make(chan struct{}, 1),
		recovery: newRecoveryWatch()}
	if err := s.overrides.load(s.store); err != nil {
		return nil, fmt.Errorf("read overrides: %w", err)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if s.agent != nil {
		// Only the agent learns of override changes; it keeps the store's copy current.
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.overrides.persist(s.ctx, s.store, func(err error) {
				s.log.Error("could not save the override state", "error", err)
			})
		}()
		if s.trail != nil {
			// The agent records incidents as they happen, not only when someone looks: the
			// audit log has the system's own actions at the time they were taken.
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.followIncidents(s.ctx)
			}()
		}
	}
	s.startRecoveryWatch()
	return s, nil
}

// incidentSyncEvery is how often the agent reads the audit trail for incident changes when
// no alert passed to wake it.
const incidentSyncEvery = 5 * time.Second

// followIncidents syncs the incident records after every alert or incident update (at most
// once a second) and every incidentSyncEvery, until ctx ends.
func (s *Service) followIncidents(ctx context.Context) {
	tick := time.NewTicker(incidentSyncEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-s.nudge:
			// The jsonl sink writes the record a moment after the pipeline emitted it.
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
		s.incMu.Lock()
		err := s.syncIncidents()
		s.incMu.Unlock()
		if err != nil {
			s.log.Error("could not record incidents from the audit trail", "error", err)
		}
	}
}

// Close cancels restores still running (recording them as interrupted) and waits for the
// service's background work, at most until ctx ends.
func (s *Service) Close(ctx context.Context) error {
	s.cancel()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Observe takes every alert and audit event the pipelines emit (runtime.Options.Observe). It
// never blocks.
func (s *Service) Observe(pipeline string, e sdk.Event) {
	s.recovery.noticeAlert(e)
	if e.Kind == sdk.KindAlert || (e.Kind == sdk.KindAudit && e.Field("event") == sdk.EventIncidentUpdate) {
		select {
		case s.nudge <- struct{}{}:
		default:
		}
	}
	if s.overrides.observe(pipeline, e) {
		// The override processor logs the change with its reason; this is for tracing only.
		s.log.Debug("override changed", "pipeline", pipeline, "event", e.Field("event"),
			"actor", e.Field("actor"), "until", e.Field("until"))
	}
}

// actor checks and normalises the acting person's name (NormalizeName): the name recorded,
// shown and compared is the normalised one, so look-alike names cannot pass for another
// person or for someone else than themselves.
func (s *Service) actor(by Actor) (Actor, error) {
	if err := checkName(by.Name); err != nil {
		return by, err
	}
	by.Name = NormalizeName(by.Name)
	if by.Name == "" {
		return by, errorf(KindInvalid, "say who you are: the acting person's name is required (-by NAME)")
	}
	if len(by.Name) > 100 {
		return by, errorf(KindInvalid, "the actor's name is longer than 100 characters")
	}
	if by.Via == "" {
		by.Via = s.via
	}
	return by, nil
}

// audit records an action and its outcome (err nil: ok; a Forbidden, Conflict or Invalid
// error: refused; anything else: failed).
func (s *Service) audit(by Actor, action, target, reason string, detail map[string]string, err error) {
	e := AuditEntry{Time: s.now().UTC(), Actor: by.Name, Via: by.Via, Action: action, Target: target,
		Reason: reason, Outcome: "ok", Detail: detail}
	if err != nil {
		e.Error = err.Error()
		switch KindOf(err) {
		case KindForbidden, KindConflict, KindInvalid, KindNotFound:
			e.Outcome = "refused"
		default:
			e.Outcome = "failed"
		}
	}
	if werr := s.store.Update(func(tx *state.Tx) error {
		_, err := appendAudit(tx, e)
		return err
	}); werr != nil {
		s.log.Error("could not write the audit log", "action", action, "error", werr)
	}
}

// externalActions are the actions RecordAction accepts.
var externalActions = map[string]bool{ActionRestoreRun: true, ActionRepairRun: true, ActionSnapshotCreate: true, ActionSnapshotPrune: true}

// RecordAction implements Operations.
func (s *Service) RecordAction(_ context.Context, by Actor, rec ActionRecord) (AuditEntry, error) {
	by, err := s.actor(by)
	if err != nil {
		return AuditEntry{}, err
	}
	if !externalActions[rec.Action] {
		return AuditEntry{}, errorf(KindInvalid, "%q is not an action recorded from outside the agent", rec.Action)
	}
	if err := checkLines("reason", rec.Reason, "target", rec.Target); err != nil {
		return AuditEntry{}, err
	}
	var outcome error
	if rec.Error != "" {
		outcome = errors.New(rec.Error)
	}
	s.audit(by, rec.Action, rec.Target, rec.Reason, rec.Detail, outcome)
	entries, err := s.Audit(context.Background(), AuditFilter{Action: rec.Action, Limit: 1})
	if err != nil || len(entries) == 0 {
		return AuditEntry{}, err
	}
	return entries[0], nil
}

// --- state and alerts ---

// State implements Operations.
func (s *Service) State(ctx context.Context) (SystemState, error) {
	now := s.now().UTC()
	st := SystemState{Time: now, Agent: s.agent != nil, Blocking: []Incident{}, Acknowledged: []Incident{}, Degraded: []string{},
		Components: []ComponentHealth{}, Reasons: []string{}, DeadLetters: []DeadLetterCount{}, SnapshotTargets: []TargetHealth{}}
	if s.agent != nil {
		st.Components = s.agent.Components()
		for _, c := range st.Components {
			if !c.Healthy {
				st.Degraded = append(st.Degraded, c.Address+": "+c.Reason)
			} else if c.Report != "" {
				st.Reports = append(st.Reports, c.Address+": "+c.Report)
			}
		}
	} else {
		st.Degraded = append(st.Degraded, "no agent is running: nothing is being watched (start it with tda run)")
	}
	s.addDeadLetters(ctx, &st)
	var targetProblems []string
	st.SnapshotTargets, targetProblems = s.targetProblems()
	st.Degraded = append(st.Degraded, targetProblems...)
	st.Override = s.overrides.active(now)
	blocking, acked, err := s.blockingAndAcknowledged()
	if err != nil {
		return st, err
	}
	st.Blocking, st.Acknowledged = blocking, acked
	pending, err := s.Migrations(ctx, MigrationFilter{Status: MigrationPending, Limit: 1000})
	if err != nil {
		return st, err
	}
	st.PendingMigrations = len(pending)
	for _, in := range blocking {
		st.Reasons = append(st.Reasons, blockingReason(in))
	}
	for _, in := range acked {
		st.Reasons = append(st.Reasons, acknowledgedReason(in))
	}
	if o := st.Override; o != nil {
		st.Reasons = append(st.Reasons, fmt.Sprintf("override declared by %s (%s) until %s: %s",
			o.Actor, o.Origin, o.Until.Format(time.RFC3339), o.Reason))
	}
	// Only an operator's override lifts "blocked": one an app's log line declared keeps it.
	lifted := s.overrides.byOperator(now) != nil
	if len(blocking) > 0 && st.Override != nil && !lifted {
		st.Reasons = append(st.Reasons, "the override was declared by a log line, which never lifts the blocked state: "+
			"acknowledge the alert or have an operator declare an override (tda override on)")
	}
	st.Reasons = append(st.Reasons, st.Degraded...)
	switch {
	case len(blocking) > 0 && !lifted:
		st.Status = StatusBlocked
	case st.Override != nil:
		st.Status = StatusOverride
	case len(acked) > 0:
		st.Status = StatusAcknowledged
	case len(st.Degraded) > 0:
		st.Status = StatusDegraded
	default:
		st.Status = StatusNormal
	}
	return st, nil
}

func keyText(in Incident) string {
	if in.Key == "" {
		return ""
	}
	return fmt.Sprintf("key %q, ", in.Key)
}

// blockingReason says why an incident blocks and what lifts it.
func blockingReason(in Incident) string {
	if in.Open() {
		return fmt.Sprintf("%s incident %s (%s) is firing and not acknowledged (%s%d events, since %s): acknowledge it once someone is on it",
			in.Severity, in.ID, in.Rule, keyText(in), in.Count, in.FirstSeen.Format(time.RFC3339))
	}
	return fmt.Sprintf("%s incident %s (%s) was never acknowledged: its burst ended at %s (%s%d events), "+
		"but nobody has said they are on it: acknowledge it", in.Severity, in.ID, in.Rule,
		in.ResolvedAt.Format(time.RFC3339), keyText(in), in.Count)
}

// acknowledgedReason says that an acknowledged incident is still to be dealt with.
func acknowledgedReason(in Incident) string {
	if in.Open() {
		return fmt.Sprintf("%s incident %s (%s) is still firing, acknowledged by %s (%s%d events so far)",
			in.Severity, in.ID, in.Rule, in.Ack.By, keyText(in), in.Count)
	}
	return fmt.Sprintf("%s incident %s (%s) has resolved, acknowledged by %s: close it with a note once the damage is dealt with",
		in.Severity, in.ID, in.Rule, in.Ack.By)
}

func (s *Service) blocking() ([]Incident, error) {
	blocking, _, err := s.blockingAndAcknowledged()
	return blocking, err
}

// Alerts implements Operations.
func (s *Service) Alerts(_ context.Context, f AlertFilter) ([]Incident, error) {
	switch f.State {
	case "", "open", sdk.StateFiring, sdk.StateSuppressed, sdk.StateResolved:
	default:
		return nil, errorf(KindInvalid, "state must be firing, suppressed, resolved or open, not %q", f.State)
	}
	switch f.Acknowledged {
	case "", "yes", "no":
	default:
		return nil, errorf(KindInvalid, "acknowledged must be yes or no, not %q", f.Acknowledged)
	}
	limit := clampLimit(f.Limit)
	all, err := s.allIncidents()
	if err != nil {
		return nil, err
	}
	out := []Incident{}
	for _, in := range all {
		switch {
		case f.State == "open" && !in.Open(),
			f.State != "" && f.State != "open" && in.State != f.State,
			f.Severity != "" && !strings.EqualFold(in.Severity, f.Severity),
			f.Rule != "" && in.Rule != f.Rule,
			!f.Since.IsZero() && in.Updated.Before(f.Since),
			f.Acknowledged == "yes" && in.Ack == nil,
			f.Acknowledged == "no" && in.Ack != nil:
			continue
		}
		in.Explained = ExplainParts(in.Explanation)
		out = append(out, in)
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

func clampLimit(n int) int {
	switch {
	case n <= 0:
		return 100
	case n > 1000:
		return 1000
	}
	return n
}

// Acknowledge implements Operations: the acknowledgement of an incident named by its
// fingerprint or id, as AcknowledgeIncident records it.
func (s *Service) Acknowledge(ctx context.Context, by Actor, req AckRequest) (Ack, error) {
	ref := strings.TrimSpace(req.Fingerprint)
	if ref == "" {
		by, err := s.actor(by)
		if err != nil {
			return Ack{}, err
		}
		err = errorf(KindInvalid, "which alert? give its incident id or fingerprint")
		s.audit(by, ActionIncidentAck, "", req.Comment, nil, err)
		return Ack{}, err
	}
	in, err := s.AcknowledgeIncident(ctx, by, IncidentAction{ID: ref, Reason: req.Comment})
	if err != nil {
		return Ack{}, err
	}
	return *in.Ack, nil
}

// --- override ---

// overridePipelines lists the pipelines that follow override mode: those with an override
// processor, and those whose detection is a rules processor alone (the default config: rules
// with record_overrides = true records the operator's declaration as the override processor
// would). An operator's declaration goes to a pipeline's first processor.
func (s *Service) overridePipelines() []string {
	with := s.pipelinesWith("processor.override.")
	for _, p := range s.pipelinesWith("processor.rules.") {
		if !slices.Contains(with, p) {
			with = append(with, p)
		}
	}
	sort.Strings(with)
	return with
}

func (s *Service) pipelinesWith(prefix string) []string {
	if s.agent == nil {
		return nil
	}
	var out []string
	for p, procs := range s.agent.Pipelines() {
		for _, a := range procs {
			if strings.HasPrefix(a, prefix) {
				out = append(out, p)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// Override implements Operations.
func (s *Service) Override(context.Context) (OverrideStatus, error) {
	return OverrideStatus{Active: s.overrides.active(s.now()), Pipelines: s.overridePipelines()}, nil
}

// OverrideOn implements Operations.
func (s *Service) OverrideOn(ctx context.Context, by Actor, req OverrideRequest) (OverrideStatus, error) {
	return s.setOverride(ctx, by, req, true)
}

// OverrideOff implements Operations.
func (s *Service) OverrideOff(ctx context.Context, by Actor, req OverrideRequest) (OverrideStatus, error) {
	return s.setOverride(ctx, by, req, false)
}

func (s *Service) setOverride(ctx context.Context, by Actor, req OverrideRequest, on bool) (OverrideStatus, error) {
	by, err := s.actor(by)
	if err != nil {
		return OverrideStatus{}, err
	}
	if err := checkLines("reason", req.Reason, "ttl", req.TTL); err != nil {
		return OverrideStatus{}, err
	}
	action, event := ActionOverrideOff, eventOverrideDisabled
	if on {
		action, event = ActionOverrideOn, eventOverrideEnabled
	}
	req.Reason = strings.TrimSpace(req.Reason)
	detail := map[string]string{}
	err = func() error {
		if on && req.Reason == "" {
			return errorf(KindInvalid, "a reason is required: say what work the override covers (-reason)")
		}
		fields := map[string]string{"event": event, "actor": by.Name}
		if req.Reason != "" {
			fields["reason"] = req.Reason
		}
		if on {
			ttl := strings.TrimSpace(req.TTL)
			if ttl == "" {
				return errorf(KindInvalid, "a ttl is required: how long the override lasts, e.g. 30m (-ttl)")
			}
			d, err := sdk.ParseDuration(ttl)
			if err != nil || d <= 0 {
				return errorf(KindInvalid, "ttl %q is not a positive duration such as 30m or 2h", ttl)
			}
			fields["ttl"] = ttl
			detail["ttl"] = ttl
		}
		if s.agent == nil {
			return errorf(KindUnavailable, "override mode lives in the running agent's pipelines: start the agent (tda run) and try again")
		}
		pipelines := s.overridePipelines()
		if len(pipelines) == 0 {
			return errorf(KindUnavailable, "no pipeline has a detection processor: add processor \"rules\" with record_overrides = true (or processor \"override\" before it) to the detection pipeline")
		}
		detail["pipelines"] = strings.Join(pipelines, ",")
		for _, p := range pipelines {
			ev := sdk.Event{Kind: sdk.KindAudit, Origin: "operator", Time: s.now().UTC(), Fields: copyFields(fields)}
			if err := s.agent.Inject(ctx, p, []sdk.Event{ev}); err != nil {
				return fmt.Errorf("pipeline %s: %w", p, err)
			}
		}
		return nil
	}()
	s.audit(by, action, "override", req.Reason, detail, err)
	if err != nil {
		return OverrideStatus{}, err
	}
	return s.Override(ctx)
}

func copyFields(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// --- audit ---

// Audit implements Operations.
func (s *Service) Audit(_ context.Context, f AuditFilter) ([]AuditEntry, error) {
	limit := clampLimit(f.Limit)
	var vals [][]byte
	err := s.store.View(func(tx *state.Tx) error {
		var err error
		vals, err = lastMatching(tx, bucketAudit, limit, func(v []byte) (bool, error) {
			if f.Actor == "" && f.Action == "" && f.Target == "" && f.Since.IsZero() {
				return true, nil
			}
			var e AuditEntry
			if json.Unmarshal(v, &e) != nil {
				return false, nil
			}
			return (f.Actor == "" || sameName(e.Actor, f.Actor)) &&
				(f.Action == "" || e.Action == f.Action || strings.HasPrefix(e.Action, f.Action+".")) &&
				(f.Target == "" || e.Target == f.Target) &&
				(f.Since.IsZero() || !e.Time.Before(f.Since)), nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]AuditEntry, 0, len(vals))
	for _, v := range vals {
		var e AuditEntry
		if json.Unmarshal(v, &e) == nil {
			out = append(out, e)
		}
	}
	return out, nil
}
