// Package ops is the operator's side of tda: the system state (normal, degraded, blocked,
// override), alerts read from the audit trail and their acknowledgements, operator overrides,
// migration requests and approvals, snapshots and restores, and the audit log of every
// mutating action (who, what, when, why). The HTTP API, the web panel and the CLI all go
// through Operations: a Service over the agent's state store, or a client of the running
// agent's API that reaches the same Service.
package ops

import (
	"context"
	"time"

	"github.com/tda-dev/tda/agent/deadletter"
)

// Operations is what an operator can see and do. Service implements it over the state store;
// the API client implements it by calling a running agent.
type Operations interface {
	// State is the system state with its reasons.
	State(ctx context.Context) (SystemState, error)
	// Alerts returns incidents from the audit trail, newest first.
	Alerts(ctx context.Context, f AlertFilter) ([]Incident, error)
	// Acknowledge records that someone has seen an incident and is on it.
	Acknowledge(ctx context.Context, by Actor, req AckRequest) (Ack, error)

	// Incidents lists incident records, most recently updated first.
	Incidents(ctx context.Context, f IncidentFilter) ([]Incident, error)
	// Incident returns one incident (by id or fingerprint) with its timeline and entities.
	Incident(ctx context.Context, id string) (IncidentDetail, error)
	// AcknowledgeIncident records who is on an incident and why (a reason is required).
	AcknowledgeIncident(ctx context.Context, by Actor, req IncidentAction) (Incident, error)
	// CloseIncident closes a resolved, acknowledged incident with a note for the review.
	CloseIncident(ctx context.Context, by Actor, req IncidentAction) (Incident, error)

	// Override returns the override in force, if any.
	Override(ctx context.Context) (OverrideStatus, error)
	// OverrideOn declares override mode in every pipeline with an override processor.
	OverrideOn(ctx context.Context, by Actor, req OverrideRequest) (OverrideStatus, error)
	// OverrideOff ends override mode.
	OverrideOff(ctx context.Context, by Actor, req OverrideRequest) (OverrideStatus, error)

	// Migrations lists migration requests, newest first.
	Migrations(ctx context.Context, f MigrationFilter) ([]Migration, error)
	// RequestMigration files a pending request.
	RequestMigration(ctx context.Context, by Actor, req MigrationRequest) (Migration, error)
	// DecideMigration approves or rejects a pending request (a reason is required; nobody
	// approves their own request).
	DecideMigration(ctx context.Context, by Actor, d Decision) (Migration, error)
	// BeginMigration checks that a migration may run now (approved, inside the maintenance
	// window or under override, not blocked) and marks it running.
	BeginMigration(ctx context.Context, by Actor, req BeginMigration) (Migration, error)
	// FinishMigration records the pre-migration snapshot and the outcome of a run.
	FinishMigration(ctx context.Context, by Actor, req FinishMigration) (Migration, error)

	// RecordAction writes an audit entry for an action an operator ran outside the agent
	// (tda restore, tda snapshot create and prune run in the CLI's own process).
	RecordAction(ctx context.Context, by Actor, rec ActionRecord) (AuditEntry, error)

	// Snapshots lists every snapshot target's tiers with their RPO.
	Snapshots(ctx context.Context) ([]SnapshotTarget, error)
	// CreateSnapshot takes a manual snapshot.
	CreateSnapshot(ctx context.Context, by Actor, req SnapshotRequest) (SnapshotInfo, error)
	// Recovery lists each target's recovery points relative to an incident's first event,
	// with the default a restore takes and the anomaly snapshot taken for its alert.
	Recovery(ctx context.Context, incident string) (IncidentRecovery, error)
	// Restores lists restores started through tda, newest first.
	Restores(ctx context.Context) ([]Restore, error)
	// StartRestore starts a restore into a new cluster or database.
	StartRestore(ctx context.Context, by Actor, req RestoreRequest) (Restore, error)

	// Audit returns audit entries, newest first.
	Audit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)

	// DeadLetters lists the batches the runtime gave up on, oldest first.
	DeadLetters(ctx context.Context) ([]deadletter.Letter, error)
	// DeadLetter returns one dead letter with its events.
	DeadLetter(ctx context.Context, id uint64) (DeadLetterDetail, error)
	// ReplayDeadLetter puts a dead letter's events back on its instance's queue (a reason is
	// required; audited).
	ReplayDeadLetter(ctx context.Context, by Actor, req DeadLetterAction) (deadletter.Letter, error)
	// DropDeadLetter deletes a dead letter for good (a reason is required; audited).
	DropDeadLetter(ctx context.Context, by Actor, req DeadLetterAction) (deadletter.Letter, error)
}

// Actor is who performs an action: the person's name and how they reached tda.
type Actor struct {
	// Name is the person (the -by flag, the name typed in the panel, or the token's name).
	Name string `json:"name"`
	// Via says how: "token:NAME", "socket", "cli".
	Via string `json:"via,omitempty"`
}

// System states, from the calmest.
const (
	StatusNormal   = "normal"
	StatusDegraded = "degraded"
	StatusOverride = "override"
	StatusBlocked  = "blocked"
	// StatusAcknowledged: a HIGH incident is acknowledged (someone is on it) and not closed.
	StatusAcknowledged = "acknowledged"
)

// SystemState is what the banner shows.
type SystemState struct {
	// Status is blocked (a HIGH incident not acknowledged, whether or not its burst has
	// ended, and no operator's override in force), override, acknowledged (a HIGH incident
	// acknowledged and not closed yet), degraded, or normal, in that precedence.
	Status string `json:"status"`
	// Reasons are one line each, most important first.
	Reasons []string `json:"reasons"`
	// Blocking are the HIGH incidents nobody acknowledged yet.
	Blocking []Incident `json:"blocking"`
	// Acknowledged are the HIGH incidents acknowledged and not closed.
	Acknowledged []Incident `json:"acknowledged"`
	// Degraded are the components that are not healthy ("address: reason").
	Degraded []string `json:"degraded"`
	// Override is the override in force.
	Override *OverrideInfo `json:"override,omitempty"`
	// Agent reports whether a running agent answered (false: read from the store alone).
	Agent bool `json:"agent"`
	// Components is every component's health (empty without an agent).
	Components []ComponentHealth `json:"components"`
	// PendingMigrations counts requests awaiting a decision.
	PendingMigrations int `json:"pending_migrations"`
	// DeadLetters counts the dead letters per instance (empty: none, or no agent to ask).
	DeadLetters []DeadLetterCount `json:"dead_letters"`
	// SnapshotTargets is what the last probe of each snapshot target found (empty without an
	// agent, which is what probes them).
	SnapshotTargets []TargetHealth `json:"snapshot_targets"`
	Time            time.Time      `json:"time"`
}

// ComponentHealth is one plugin instance's health.
type ComponentHealth struct {
	Address  string    `json:"address"`
	Healthy  bool      `json:"healthy"`
	Reason   string    `json:"reason,omitempty"`
	Since    time.Time `json:"since"`
	Restarts int       `json:"restarts"`
	Queued   int       `json:"queued,omitempty"`
	// A sink's buffer figures: events on disk only, events dropped by when_full = "drop",
	// batches set aside as dead letters.
	Spilled     int `json:"spilled,omitempty"`
	Dropped     int `json:"dropped,omitempty"`
	DeadLetters int `json:"dead_letters,omitempty"`
	// Pid is the plugin process serving the instance (the instances of the plugins built
	// into tda share one unless isolated); 0 in-process.
	Pid int `json:"pid,omitempty"`
}

// AlertFilter selects incidents. Empty fields match everything.
type AlertFilter struct {
	// State is firing, suppressed, resolved, or open (firing or suppressed).
	State    string    `json:"state,omitempty"`
	Severity string    `json:"severity,omitempty"`
	Rule     string    `json:"rule,omitempty"`
	Since    time.Time `json:"since,omitzero"`
	// Acknowledged: "yes", "no" or "" (both).
	Acknowledged string `json:"acknowledged,omitempty"`
	// Limit caps the result (default 100, at most 1000).
	Limit int `json:"limit,omitempty"`
}

// AckRequest acknowledges an incident.
type AckRequest struct {
	// Fingerprint names the incident by its fingerprint or its id.
	Fingerprint string `json:"fingerprint"`
	Comment     string `json:"comment"`
}

// Ack is an acknowledgement.
type Ack struct {
	// Incident is the incident's id.
	Incident    string    `json:"incident,omitempty"`
	Fingerprint string    `json:"fingerprint"`
	By          string    `json:"by"`
	Comment     string    `json:"comment"`
	At          time.Time `json:"at"`
}

// OverrideRequest turns override mode on (reason and TTL) or off (reason optional).
type OverrideRequest struct {
	Reason string `json:"reason"`
	// TTL is a duration such as "30m" (on only).
	TTL string `json:"ttl,omitempty"`
}

// OverrideInfo is an override in force, as the override processor reported it.
type OverrideInfo struct {
	Actor  string    `json:"actor"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
	// Origin is "operator" or the file or container whose log line declared it.
	Origin   string `json:"origin"`
	Pipeline string `json:"pipeline"`
	// Via is "operator" for an operator's override and "log_line" for an app's; only an
	// operator's lifts the blocked state.
	Via string `json:"via,omitempty"`
}

// OverrideStatus is the override in force (nil Active: none).
type OverrideStatus struct {
	Active *OverrideInfo `json:"active,omitempty"`
	// Pipelines are the pipelines that have an override processor.
	Pipelines []string `json:"pipelines,omitempty"`
}

// Migration request states.
const (
	MigrationPending   = "pending"
	MigrationApproved  = "approved"
	MigrationRejected  = "rejected"
	MigrationRunning   = "running"
	MigrationSucceeded = "succeeded"
	MigrationFailed    = "failed"
)

// Migration is a request to run a schema migration.
type Migration struct {
	ID string `json:"id"`
	// Name is the migration as the logs show it: an Alembic revision, a Flyway version, a
	// Liquibase changeset.
	Name        string    `json:"name"`
	Reason      string    `json:"reason,omitempty"`
	RequestedBy string    `json:"requested_by"`
	RequestedAt time.Time `json:"requested_at"`
	Status      string    `json:"status"`
	DecidedBy   string    `json:"decided_by,omitempty"`
	DecidedAt   time.Time `json:"decided_at,omitzero"`
	Decision    string    `json:"decision_reason,omitempty"`
	// ValidUntil ends an approval: a migration seen in the logs after it is unapproved.
	ValidUntil time.Time      `json:"valid_until,omitzero"`
	Runs       []MigrationRun `json:"runs,omitempty"`
}

// Approved reports whether the request was approved and the approval is still valid at t.
func (m Migration) Approved(t time.Time) bool {
	switch m.Status {
	case MigrationApproved, MigrationRunning, MigrationSucceeded, MigrationFailed:
		return !m.DecidedAt.IsZero() && t.Before(m.ValidUntil)
	}
	return false
}

// MigrationRun is one `tda migrate run` of an approved request.
type MigrationRun struct {
	By       string    `json:"by"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	Snapshot string    `json:"snapshot,omitempty"`
	Command  []string  `json:"command,omitempty"`
	Outcome  string    `json:"outcome"` // running, succeeded, failed
	ExitCode int       `json:"exit_code"`
	Error    string    `json:"error,omitempty"`
	// Override is the override the run relied on (outside the window or while blocked).
	Override string `json:"override,omitempty"`
}

// MigrationFilter selects migration requests.
type MigrationFilter struct {
	Status string `json:"status,omitempty"`
	Name   string `json:"name,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

// MigrationRequest files a request.
type MigrationRequest struct {
	Name   string `json:"name"`
	Reason string `json:"reason,omitempty"`
}

// Decision approves or rejects a request.
type Decision struct {
	ID      string `json:"id"`
	Approve bool   `json:"approve"`
	Reason  string `json:"reason"`
	// ValidFor bounds an approval (e.g. "24h"; default: the configured approval validity).
	ValidFor string `json:"valid_for,omitempty"`
}

// BeginMigration asks to run a migration now. ID or Name selects the request (the newest
// approved one with that name).
type BeginMigration struct {
	ID      string   `json:"id,omitempty"`
	Name    string   `json:"name,omitempty"`
	Command []string `json:"command,omitempty"`
}

// FinishMigration records a run's outcome.
type FinishMigration struct {
	ID       string `json:"id"`
	Snapshot string `json:"snapshot,omitempty"`
	// Outcome is succeeded or failed.
	Outcome  string `json:"outcome"`
	ExitCode int    `json:"exit_code"`
	Error    string `json:"error,omitempty"`
}

// SnapshotTarget is one snapshot sink's cluster or database and its recovery tiers.
type SnapshotTarget struct {
	// Name is the sink block's name; Kind is aurora or postgres; Target is the cluster or
	// database (what an operator types to confirm a restore).
	Name     string         `json:"name"`
	Kind     string         `json:"kind"`
	Target   string         `json:"target"`
	Tiers    []SnapshotTier `json:"tiers"`
	Warnings []string       `json:"warnings,omitempty"`
	Error    string         `json:"error,omitempty"`
	// LastRestore is the newest restore of this target started through tda (the last drill).
	LastRestore *Restore `json:"last_restore,omitempty"`
}

// SnapshotTier is point-in-time or the snapshots of one trigger.
type SnapshotTier struct {
	Name string `json:"name"`
	// Newest is the newest recovery point (zero: none); RPOSeconds is now minus it.
	Newest     time.Time      `json:"newest,omitzero"`
	RPOSeconds float64        `json:"rpo_seconds"`
	RPO        string         `json:"rpo"`
	Earliest   time.Time      `json:"earliest,omitzero"`
	Snapshots  []SnapshotInfo `json:"snapshots"`
}

// SnapshotInfo is one snapshot.
type SnapshotInfo struct {
	ID      string            `json:"id"`
	Target  string            `json:"target"`
	Time    time.Time         `json:"time"`
	Status  string            `json:"status"`
	Trigger string            `json:"trigger,omitempty"`
	Tags    map[string]string `json:"tags,omitempty"`
	Keep    bool              `json:"keep"`
	Why     string            `json:"why,omitempty"`
}

// SnapshotRequest takes a manual snapshot of a target (the sink name; empty: the only one).
type SnapshotRequest struct {
	Target string `json:"target,omitempty"`
	Reason string `json:"reason"`
}

// RestoreRequest restores a snapshot (or a point in time) into a new cluster or database.
type RestoreRequest struct {
	Target     string    `json:"target,omitempty"`
	SnapshotID string    `json:"snapshot,omitempty"`
	ToTime     time.Time `json:"to_time,omitzero"`
	NewName    string    `json:"new_name"`
	// Confirm must repeat the protected cluster or database name.
	Confirm string `json:"confirm"`
	Reason  string `json:"reason"`
	// Incident names the incident the restore recovers from (its fingerprint). Without a
	// snapshot or a time the restore takes the newest point before its first event; a point
	// from during or after the incident is refused unless ConfirmDuring is set.
	Incident      string `json:"incident,omitempty"`
	ConfirmDuring bool   `json:"confirm_during,omitempty"`
}

// Restore states.
const (
	RestoreRunning   = "running"
	RestoreSucceeded = "succeeded"
	RestoreFailed    = "failed"
)

// Restore is a restore started through tda.
type Restore struct {
	ID            string    `json:"id"`
	Target        string    `json:"target"`
	Source        string    `json:"source"`
	SnapshotID    string    `json:"snapshot,omitempty"`
	ToTime        time.Time `json:"to_time,omitzero"`
	NewName       string    `json:"new_name"`
	By            string    `json:"by"`
	Reason        string    `json:"reason"`
	Started       time.Time `json:"started"`
	Finished      time.Time `json:"finished,omitzero"`
	Status        string    `json:"status"`
	RecoveryPoint time.Time `json:"recovery_point,omitzero"`
	RPOSeconds    float64   `json:"rpo_seconds,omitempty"`
	RTOSeconds    float64   `json:"rto_seconds,omitempty"`
	Endpoint      string    `json:"endpoint,omitempty"`
	Error         string    `json:"error,omitempty"`
	// Incident is the incident the restore recovers from; Phase and Relation place the
	// recovery point against its first event ("taken 4.2 s after the first event").
	Incident string `json:"incident,omitempty"`
	// IncidentFingerprint is the incident's fingerprint (what tda repair -incident takes).
	IncidentFingerprint string `json:"incident_fingerprint,omitempty"`
	Phase               string `json:"phase,omitempty"`
	Relation            string `json:"relation,omitempty"`
	// Connection is where the new database answers, without secrets.
	Connection *Connection `json:"connection,omitempty"`
	// NextSteps say what to do once the restore succeeded: verify, then repair.
	NextSteps []string `json:"next_steps,omitempty"`
}

// AuditEntry is one mutating action: who, what, when, why, and how it ended.
type AuditEntry struct {
	ID     uint64    `json:"id"`
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`
	Via    string    `json:"via,omitempty"`
	Action string    `json:"action"`
	Target string    `json:"target,omitempty"`
	Reason string    `json:"reason,omitempty"`
	// Outcome is ok, refused (a rule forbade it) or failed.
	Outcome string            `json:"outcome"`
	Error   string            `json:"error,omitempty"`
	Detail  map[string]string `json:"detail,omitempty"`
}

// Audit actions.
const (
	ActionAlertAck         = "alert.acknowledge"
	ActionOverrideOn       = "override.on"
	ActionOverrideOff      = "override.off"
	ActionMigrationRequest = "migration.request"
	ActionMigrationApprove = "migration.approve"
	ActionMigrationReject  = "migration.reject"
	ActionMigrationBegin   = "migration.run"
	ActionMigrationFinish  = "migration.finish"
	ActionSnapshotCreate   = "snapshot.create"
	ActionSnapshotAnomaly  = "snapshot.anomaly"
	ActionRestoreStart     = "restore.start"
	ActionRestoreFinish    = "restore.finish"
	ActionRestoreRun       = "restore.run"
	ActionRepairRun        = "repair.run"
	ActionSnapshotPrune    = "snapshot.prune"
	ActionDeadLetterReplay = "deadletter.replay"
	ActionDeadLetterDrop   = "deadletter.drop"
)

// ActionRecord is an action done outside the agent, for the audit log.
type ActionRecord struct {
	// Action is one of ActionRestoreRun, ActionRepairRun, ActionSnapshotCreate or ActionSnapshotPrune.
	Action string            `json:"action"`
	Target string            `json:"target,omitempty"`
	Reason string            `json:"reason,omitempty"`
	Detail map[string]string `json:"detail,omitempty"`
	// Error is why the action failed ("" when it succeeded).
	Error string `json:"error,omitempty"`
}

// AuditFilter selects audit entries.
type AuditFilter struct {
	Actor  string    `json:"actor,omitempty"`
	Action string    `json:"action,omitempty"`
	Target string    `json:"target,omitempty"`
	Since  time.Time `json:"since,omitzero"`
	Limit  int       `json:"limit,omitempty"`
}
