// Package provider defines what a snapshot backend does for tda: take a tagged snapshot of one
// target (an Aurora cluster, a PostgreSQL database), wait for it, list, delete and restore it
// into a new target. Implementations live in sibling packages (aurora, postgres); the snapshot
// sink, the retention policy and the CLI only ever talk to this interface.
package provider

import (
	"context"
	"sort"
	"time"
)

// Triggers: why a snapshot was taken. Stored in the TagTrigger tag.
const (
	TriggerScheduled    = "scheduled"
	TriggerAnomaly      = "anomaly"
	TriggerManual       = "manual"
	TriggerPreMigration = "pre-migration"
	// TriggerPreRepair: taken by `tda repair -apply` before it writes into the live database.
	// No retention setting applies: kept until deleted by hand.
	TriggerPreRepair = "pre-repair"
)

// Triggers lists every trigger in display order.
var Triggers = []string{TriggerScheduled, TriggerPreMigration, TriggerPreRepair, TriggerAnomaly, TriggerManual}

// Tag keys written on every snapshot tda takes.
const (
	TagCreatedAt        = "created_at"
	TagTrigger          = "trigger"
	TagAppVersion       = "app_version"
	TagCreatedBy        = "created_by"
	TagAlertFingerprint = "alert_fingerprint"
	TagAlertRule        = "alert_rule"
	// CreatedByTDA is the value of TagCreatedBy on tda's snapshots. Only snapshots carrying it
	// are ever deleted by tda.
	CreatedByTDA = "tda"
)

// Snapshot states, as RDS names them. Providers map their own states onto these where they
// can and pass unknown ones through.
const (
	StatusCreating  = "creating"
	StatusAvailable = "available"
	StatusFailed    = "failed"
	StatusDeleting  = "deleting"
)

// Snapshot is one snapshot of a target.
type Snapshot struct {
	// ID is the snapshot identifier (RDS naming rules: letters, digits, hyphens).
	ID string
	// Target is the cluster or database the snapshot was taken of.
	Target string
	// Time is the recovery point: the moment whose data the snapshot holds.
	Time time.Time
	// Status is one of the Status constants (or a provider-specific state).
	Status string
	// Tags are the snapshot's tags (created_at, trigger, ...).
	Tags map[string]string
	// SizeBytes is the size when known (0 otherwise).
	SizeBytes int64
	// Detail explains a failed or unusual status.
	Detail string
}

// Trigger returns the snapshot's trigger tag ("" for snapshots tda did not take).
func (s Snapshot) Trigger() string { return s.Tags[TagTrigger] }

// Managed reports whether tda took the snapshot (and so may delete it).
func (s Snapshot) Managed() bool { return s.Tags[TagCreatedBy] == CreatedByTDA }

// Available reports whether the snapshot can be restored or deleted.
func (s Snapshot) Available() bool { return s.Status == StatusAvailable }

// SortNewestFirst orders snapshots by Time, newest first (ties by ID, for stable output).
func SortNewestFirst(snaps []Snapshot) {
	sort.SliceStable(snaps, func(i, j int) bool {
		if !snaps[i].Time.Equal(snaps[j].Time) {
			return snaps[i].Time.After(snaps[j].Time)
		}
		return snaps[i].ID > snaps[j].ID
	})
}

// CreateRequest asks for a snapshot.
type CreateRequest struct {
	ID   string
	Tags map[string]string
}

// RestoreRequest asks for a restore into a new target. Exactly one of SnapshotID, ToTime and
// Latest is set.
type RestoreRequest struct {
	SnapshotID string
	// ToTime restores to a point in time (providers with Capabilities.PointInTime).
	ToTime time.Time
	// Latest restores to the latest restorable time.
	Latest bool
	// NewName names the target to create. It never equals the source.
	NewName string
}

// RestoreResult describes what a restore created.
type RestoreResult struct {
	// Name is the new cluster or database.
	Name string
	// RecoveryPoint is the moment whose data the new target holds.
	RecoveryPoint time.Time
	// Endpoint is where to connect (host name, or a libpq connection string).
	Endpoint string
	// Port, User and Database complete the connection details where the provider knows them
	// (Aurora: the cluster's port, master user and default database); never a secret.
	Port     int
	User     string
	Database string
	// Created lists what was created, e.g. "cluster orders-restored", "instance ...".
	Created []string
}

// TimeRange is a closed interval of restorable times.
type TimeRange struct {
	Earliest time.Time
	Latest   time.Time
}

// Quota is an account limit and its use, e.g. RDS ManualClusterSnapshots.
type Quota struct {
	Name string
	Used int64
	Max  int64
}

// Capabilities says what a provider can do beyond the common operations.
type Capabilities struct {
	// PointInTime: RestorableRange and RestoreRequest.ToTime/Latest are supported.
	PointInTime bool
	// DeletesFailed: snapshots in state failed can be deleted (they hold nothing usable).
	DeletesFailed bool
}

// Provider takes, lists, deletes and restores snapshots of one target. Methods are safe for
// concurrent use.
type Provider interface {
	// Kind names the provider ("aurora", "postgres").
	Kind() string
	// Target names what is snapshotted (cluster identifier, database name).
	Target() string
	Capabilities() Capabilities
	// Create starts a snapshot and returns once its recovery point is fixed; the snapshot may
	// still be creating. A snapshot with the same ID fails with ErrAlreadyExists.
	Create(ctx context.Context, req CreateRequest) (Snapshot, error)
	// Wait blocks until the snapshot is available (or failed, or ctx ends).
	Wait(ctx context.Context, id string) (Snapshot, error)
	// Get returns one snapshot (ErrNotFound when there is none).
	Get(ctx context.Context, id string) (Snapshot, error)
	// List returns every snapshot of the target, tda's and others'.
	List(ctx context.Context) ([]Snapshot, error)
	// Delete removes a snapshot.
	Delete(ctx context.Context, id string) error
	// Restore creates a new target from a snapshot or a point in time and returns once it
	// serves connections.
	Restore(ctx context.Context, req RestoreRequest) (RestoreResult, error)
	// RestorableRange returns the point-in-time window (ErrNotSupported without PointInTime).
	RestorableRange(ctx context.Context) (TimeRange, error)
	// Quota returns the snapshot quota in use, or nil when the backend has none.
	Quota(ctx context.Context) (*Quota, error)
	// Close waits for work the provider still owns (a dump in progress) until ctx ends, then
	// stops it.
	Close(ctx context.Context) error
}
