// Package snapshotapi is the contract of the snapshot family of operator actions: the
// action names and the JSON each one takes and returns. Any sink that protects a database
// serves `tda snapshot`, `tda restore`, `tda repair`, `tda migrate run` and the control
// panel by declaring these actions (sdk.Action) with these types; the bundled `snapshot`
// sink (PostgreSQL, MySQL, Aurora) is one such provider. docs/plugins.md ("Serving operator
// actions") documents them.
//
// Every result may carry Text: the provider's rendering for people, which the CLI prints
// as it is; a provider that leaves it empty gets the CLI's plain rendering of the fields.
// Times are UTC, durations are seconds.
package snapshotapi

import (
	"encoding/json"
	"fmt"
	"time"
)

// The actions of the snapshot family.
const (
	// ActionCreate takes a snapshot (CreateArgs -> CreateResult). Starts the instance.
	ActionCreate = "snapshot.create"
	// ActionList lists the snapshots by tier (no args -> ListResult).
	ActionList = "snapshot.list"
	// ActionPrune applies the retention policy (PruneArgs -> PruneResult).
	ActionPrune = "snapshot.prune"
	// ActionProbe checks tools, credentials and places without changing anything (no args
	// -> ProbeResult).
	ActionProbe = "snapshot.probe"
	// ActionRestorePlan says what a restore would do (RestoreArgs -> RestorePlan).
	ActionRestorePlan = "restore.plan"
	// ActionRestoreApply restores into a new database (RestoreArgs -> RestoreReport).
	ActionRestoreApply = "restore.apply"
	// ActionRepairPlan compares the rows in scope between a restored and the live database
	// (RepairArgs -> RepairOutcome).
	ActionRepairPlan = "repair.plan"
	// ActionRepairApply takes a pre-repair snapshot, writes the plan in one transaction and
	// verifies it (RepairArgs -> RepairOutcome).
	ActionRepairApply = "repair.apply"
	// ActionMigrationRecord keeps the outcome of a migration run by `tda migrate run`
	// (MigrationRecord -> nothing).
	ActionMigrationRecord = "migration.record"
)

// Triggers of snapshots (the trigger tag).
const (
	TriggerScheduled    = "scheduled"
	TriggerPreMigration = "pre-migration"
	TriggerAnomaly      = "anomaly"
	TriggerManual       = "manual"
	TriggerPreRepair    = "pre-repair"
)

// Target is what a provider protects.
type Target struct {
	// Name is the block's name ("db" for sink "snapshot" "db").
	Name string `json:"name"`
	// Kind is the provider: "postgres", "mysql", "aurora", or a third party's.
	Kind string `json:"kind"`
	// Target is the protected cluster or database.
	Target string `json:"target"`
	// ProbeIntervalSeconds is how often the agent probes the target with snapshot.probe
	// (0: once a minute); snapshot.target fills it in.
	ProbeIntervalSeconds float64 `json:"probe_interval_seconds,omitempty"`
}

// Snapshot is one snapshot.
type Snapshot struct {
	ID     string    `json:"id"`
	Target string    `json:"target"`
	Time   time.Time `json:"time"`
	// AgeSeconds is the age at the listing's Now (lists only).
	AgeSeconds float64           `json:"age_seconds"`
	Status     string            `json:"status"`
	Trigger    string            `json:"trigger"`
	Managed    bool              `json:"managed"`
	SizeBytes  int64             `json:"size_bytes"`
	Tags       map[string]string `json:"tags"`
	Detail     string            `json:"detail,omitempty"`
	// Keep and Reasons are the retention policy's decision (lists and prunes).
	Keep    bool     `json:"keep"`
	Reasons []string `json:"reasons"`
}

// CreateArgs asks for a snapshot.
type CreateArgs struct {
	// Trigger is one of the Trigger constants (default manual).
	Trigger string `json:"trigger,omitempty"`
	// AppVersion overrides the block's app_version tag.
	AppVersion string `json:"app_version,omitempty"`
	// Wait returns once the snapshot is available (at most the block's wait_timeout);
	// otherwise once it is started.
	Wait bool `json:"wait,omitempty"`
}

// CreateResult is the snapshot taken.
type CreateResult struct {
	Target   Target   `json:"target"`
	Snapshot Snapshot `json:"snapshot"`
	// RestoreName is a name a restore of it could take now (no clash with the target's).
	RestoreName string `json:"restore_name,omitempty"`
	Text        string `json:"text,omitempty"`
}

// Listing is `tda snapshot list -json`.
type Listing struct {
	Name     string    `json:"name"`
	Kind     string    `json:"kind"`
	Target   string    `json:"target"`
	Now      time.Time `json:"now"`
	Tiers    []Tier    `json:"tiers"`
	Quota    *Quota    `json:"quota,omitempty"`
	Warnings []string  `json:"warnings"`
}

// Tier is one tier of a listing (scheduled, anomaly, point in time...).
type Tier struct {
	Name string `json:"name"`
	// Newest and RPOSeconds are absent when the tier holds no usable recovery point; RPO is
	// RPOSeconds for people ("3h 20m").
	Newest     *time.Time `json:"newest,omitempty"`
	RPOSeconds *float64   `json:"rpo_seconds,omitempty"`
	RPO        string     `json:"rpo,omitempty"`
	Window     *Window    `json:"window,omitempty"`
	Snapshots  []Snapshot `json:"snapshots"`
}

// Window is a range of restorable times (point in time recovery).
type Window struct {
	Earliest time.Time `json:"earliest"`
	Latest   time.Time `json:"latest"`
}

// Quota is an account limit and its use, e.g. RDS ManualClusterSnapshots.
type Quota struct {
	Name string `json:"name"`
	Used int64  `json:"used"`
	Max  int64  `json:"max"`
}

// ListResult is a listing and its rendering.
type ListResult struct {
	Listing Listing `json:"listing"`
	Text    string  `json:"text,omitempty"`
}

// PruneArgs asks for a prune.
type PruneArgs struct {
	// DryRun decides and deletes nothing.
	DryRun bool `json:"dry_run,omitempty"`
}

// PruneResult is what the retention policy decided and did.
type PruneResult struct {
	Target    Target     `json:"target"`
	DryRun    bool       `json:"dry_run"`
	Decisions []Snapshot `json:"decisions"`
	Deleted   []string   `json:"deleted"`
	// Failed maps the snapshots whose deletion failed to why.
	Failed map[string]string `json:"failed,omitempty"`
	Text   string            `json:"text,omitempty"`
}

// ProbeResult is a probe that found nothing wrong (a problem is the action's error).
type ProbeResult struct {
	Target Target `json:"target"`
}

// RestoreArgs asks for a restore into a new database: from a snapshot, or to a point in
// time (PostgreSQL and MySQL: the newest snapshot at or before it).
type RestoreArgs struct {
	SnapshotID string    `json:"snapshot_id,omitempty"`
	ToTime     time.Time `json:"to_time,omitzero"`
	NewName    string    `json:"new_name"`
	// Confirmed is the recovery point of the plan the operator confirmed: restore.apply
	// refuses (conflict) when the plan made now has another one.
	Confirmed time.Time `json:"confirmed,omitzero"`
}

// RestorePlan is what a restore will do.
type RestorePlan struct {
	Target  Target `json:"target"`
	Kind    string `json:"kind"`
	Source  string `json:"source"`
	NewName string `json:"new_name"`
	// Snapshot is the snapshot restored; nil for a point in time.
	Snapshot      *Snapshot `json:"snapshot,omitempty"`
	ToTime        time.Time `json:"to_time,omitzero"`
	RecoveryPoint time.Time `json:"recovery_point"`
	Note          string    `json:"note,omitempty"`
	Text          string    `json:"text,omitempty"`
}

// Connection is where a restored database answers, without secrets.
type Connection struct {
	Kind     string `json:"kind"`
	Host     string `json:"host,omitempty"`
	Port     int    `json:"port,omitempty"`
	Cluster  string `json:"cluster,omitempty"`
	Database string `json:"database,omitempty"`
	User     string `json:"user,omitempty"`
}

// RestoreReport is a restore that ran. Error is set when it failed after it began: Created
// then lists what exists already (the action itself succeeds, so that the report reaches
// the audit log).
type RestoreReport struct {
	Plan RestorePlan `json:"plan"`
	// Name is the new cluster or database, Endpoint where to connect.
	Name       string      `json:"name,omitempty"`
	Endpoint   string      `json:"endpoint,omitempty"`
	Connection *Connection `json:"connection,omitempty"`
	Created    []string    `json:"created,omitempty"`
	Started    time.Time   `json:"started"`
	RPOSeconds float64     `json:"rpo_seconds"`
	RTOSeconds float64     `json:"rto_seconds"`
	Error      string      `json:"error,omitempty"`
	Text       string      `json:"text,omitempty"`
}

// RepairArgs scope a repair and say how to write it.
type RepairArgs struct {
	// Restore is the database `tda restore` created (reached with the block's connection
	// settings); or Source its address. Live is the live database's address (default: the
	// block's database).
	Restore string `json:"restore,omitempty"`
	Source  string `json:"source,omitempty"`
	Live    string `json:"live,omitempty"`
	// The incident: its rule, and its time range (an open Until while it goes on).
	Rule  string    `json:"rule,omitempty"`
	From  time.Time `json:"from,omitzero"`
	Until time.Time `json:"until,omitzero"`

	Table     string   `json:"table,omitempty"`
	Key       string   `json:"key,omitempty"`
	UpdatedAt string   `json:"updated_at,omitempty"`
	Columns   []string `json:"columns,omitempty"`
	Keys      []string `json:"keys,omitempty"`
	// Events are the app's log lines (not a path: the provider reads nothing on the
	// caller's behalf); EventTypes, Actor, IncludeAdmins and Field pick the incident's.
	Events           []string `json:"events,omitempty"`
	EventTypes       []string `json:"event_types,omitempty"`
	Actor            string   `json:"actor,omitempty"`
	IncludeAdmins    bool     `json:"include_admins,omitempty"`
	Field            string   `json:"field,omitempty"`
	ToleranceSeconds float64  `json:"tolerance_seconds,omitempty"`
	MaxRows          int      `json:"max_rows,omitempty"`

	// Via is "sql" (default) or "http" (through the app's endpoint, HTTP).
	Via  string    `json:"via,omitempty"`
	HTTP *HTTPArgs `json:"http,omitempty"`
	// Confirm must name the live database for repair.apply when set by the caller that
	// asks people to confirm (the panel).
	Confirm string `json:"confirm,omitempty"`
	// ConfirmedSummary is the summary of the plan the operator confirmed: repair.apply
	// refuses (conflict) when the plan made now differs.
	ConfirmedSummary string `json:"confirmed_summary,omitempty"`
}

// HTTPArgs write repaired rows through the app's endpoint.
type HTTPArgs struct {
	URLTemplate string              `json:"url_template"`
	Fields      map[string]string   `json:"fields,omitempty"`
	Header      map[string][]string `json:"header,omitempty"`
}

// RepairOutcome is a plan, and after repair.apply what was written. Plan and Result are the
// provider's JSON (the bundled provider's is documented in docs/recovery.md). Error is set
// when the apply failed once it began (the pre-repair snapshot may exist): the action
// itself succeeds so that the outcome reaches the audit log.
type RepairOutcome struct {
	// Live is the live database the plan writes into; Source the restored one.
	Live    string `json:"live"`
	Source  string `json:"source"`
	Table   string `json:"table"`
	Summary string `json:"summary"`
	// Pending is how many rows the plan would write.
	Pending           int             `json:"pending"`
	Plan              json.RawMessage `json:"plan"`
	Applied           bool            `json:"applied"`
	Result            json.RawMessage `json:"result,omitempty"`
	PreRepairSnapshot string          `json:"pre_repair_snapshot,omitempty"`
	// Mismatches counts rows the verification found different from the plan.
	Mismatches int `json:"mismatches,omitempty"`
	// Audit is what the audit log keeps of it (counts, rows by decision, bounded).
	Audit map[string]string `json:"audit,omitempty"`
	Error string            `json:"error,omitempty"`
	// PlanText and ResultText render the plan and the result for people.
	PlanText   string `json:"plan_text,omitempty"`
	ResultText string `json:"result_text,omitempty"`
}

// MigrationRecord is a migration's outcome, kept by the provider beside its snapshots.
type MigrationRecord struct {
	Started        time.Time `json:"started"`
	Finished       time.Time `json:"finished"`
	Command        []string  `json:"command"`
	Snapshot       string    `json:"snapshot"`
	ExitCode       int       `json:"exit_code"`
	Outcome        string    `json:"outcome"`
	Error          string    `json:"error,omitempty"`
	RestoreCommand string    `json:"restore_command,omitempty"`
}

// ActionTarget names what the block protects, from its settings alone (no args -> Target).
const ActionTarget = "snapshot.target"

// MaxSnapshotIDLength bounds a snapshot id (RDS's limit for ARNs of shared snapshots).
const MaxSnapshotIDLength = 255

// SnapshotIDProblem says why id cannot name a snapshot ("" when it can). Every provider
// checks ids with it before it reads, restores or deletes by one, and the agent before it
// accepts a restore: the id holds only ASCII letters, digits, hyphens and colons, starts with
// a letter and is at most MaxSnapshotIDLength bytes, so no '/', '\', '.', NUL, space or
// control character ever reaches a path or a request.
func SnapshotIDProblem(id string) string {
	letter := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	switch {
	case id == "":
		return "the id is empty"
	case len(id) > MaxSnapshotIDLength:
		return fmt.Sprintf("the id is %d bytes long; the limit is %d", len(id), MaxSnapshotIDLength)
	case !letter(id[0]):
		return "an id starts with a letter"
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !letter(c) && !(c >= '0' && c <= '9') && c != '-' && c != ':' {
			return fmt.Sprintf("an id holds only letters, digits, hyphens and colons, not %q", c)
		}
	}
	return ""
}

// ValidSnapshotID is SnapshotIDProblem as an error that says what to do.
func ValidSnapshotID(id string) error {
	if why := SnapshotIDProblem(id); why != "" {
		return fmt.Errorf("snapshot id %q: %s. copy the id from `tda snapshot list`", id, why)
	}
	return nil
}
