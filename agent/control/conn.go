package control

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/agent/api"
	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/deadletter"
	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/agent/state"
)

// ConnectOptions choose how to reach tda.
type ConnectOptions struct {
	// Addr and Token reach an agent's HTTP API (e.g. from a CI job); empty: this host's agent.
	Addr  string
	Token string
	// Logger receives the offline service's messages.
	Logger hclog.Logger
}

// Conn is ops.Operations for the CLI and `tda panel`. This is the one place that decides how
// each call is made: through the HTTP API when an address is given; otherwise through the
// running agent's unix socket when it answers (the agent holds the state store); otherwise by
// opening the store for the duration of the call, so that an agent can start at any time.
type Conn struct {
	cfg    *config.Config
	setup  *Setup
	remote *api.Client
	socket *api.Client
	log    hclog.Logger
}

var _ ops.Operations = (*Conn)(nil)

// Connect prepares a connection for cfg; nothing is opened until a call.
func Connect(cfg *config.Config, setup *Setup, opts ConnectOptions) *Conn {
	c := &Conn{cfg: cfg, setup: setup, log: opts.Logger}
	if c.log == nil {
		c.log = hclog.NewNullLogger()
	}
	if opts.Addr != "" {
		c.remote = api.NewHTTPClient(opts.Addr, opts.Token)
	} else {
		c.socket = api.NewSocketClient(SocketPath(cfg))
	}
	return c
}

// Close releases what the calls opened (snapshot providers), letting a snapshot still being
// written finish until ctx ends.
func (c *Conn) Close(ctx context.Context) error { return c.setup.Close(ctx) }

// Where says what the next call would reach.
func (c *Conn) Where(ctx context.Context) string {
	switch {
	case c.remote != nil:
		return "the agent at its HTTP API"
	case c.agentAnswers(ctx):
		return "the running agent (" + SocketPath(c.cfg) + ")"
	}
	return "the state store (no agent is running)"
}

func (c *Conn) agentAnswers(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return c.socket.Ping(ctx) == nil
}

// with runs fn against the running agent, or against the store opened for the call.
func (c *Conn) with(ctx context.Context, fn func(ops.Operations) error) error {
	if c.remote != nil {
		return fn(c.remote)
	}
	if c.agentAnswers(ctx) {
		return fn(c.socket)
	}
	store, err := state.Open(c.cfg.Agent.DataDir, state.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, state.ErrLocked) {
			return fmt.Errorf("an agent holds the state store, but its socket %s does not answer: is it still starting? (%w)",
				SocketPath(c.cfg), err)
		}
		return err
	}
	defer store.Close()
	svc, err := NewService(c.setup, store, nil, nil, "cli", c.log)
	if err != nil {
		return err
	}
	defer svc.Close(context.Background())
	return fn(svc)
}

func call[T any](c *Conn, ctx context.Context, fn func(ops.Operations) (T, error)) (T, error) {
	var out T
	err := c.with(ctx, func(o ops.Operations) error {
		var err error
		out, err = fn(o)
		return err
	})
	return out, err
}

// State implements ops.Operations.
func (c *Conn) State(ctx context.Context) (ops.SystemState, error) {
	return call(c, ctx, func(o ops.Operations) (ops.SystemState, error) { return o.State(ctx) })
}

// Alerts implements ops.Operations.
func (c *Conn) Alerts(ctx context.Context, f ops.AlertFilter) ([]ops.Incident, error) {
	return call(c, ctx, func(o ops.Operations) ([]ops.Incident, error) { return o.Alerts(ctx, f) })
}

// Acknowledge implements ops.Operations.
func (c *Conn) Acknowledge(ctx context.Context, by ops.Actor, req ops.AckRequest) (ops.Ack, error) {
	return call(c, ctx, func(o ops.Operations) (ops.Ack, error) { return o.Acknowledge(ctx, by, req) })
}

// Incidents implements ops.Operations.
func (c *Conn) Incidents(ctx context.Context, f ops.IncidentFilter) ([]ops.Incident, error) {
	return call(c, ctx, func(o ops.Operations) ([]ops.Incident, error) { return o.Incidents(ctx, f) })
}

// Incident implements ops.Operations.
func (c *Conn) Incident(ctx context.Context, id string) (ops.IncidentDetail, error) {
	return call(c, ctx, func(o ops.Operations) (ops.IncidentDetail, error) { return o.Incident(ctx, id) })
}

// AcknowledgeIncident implements ops.Operations.
func (c *Conn) AcknowledgeIncident(ctx context.Context, by ops.Actor, req ops.IncidentAction) (ops.Incident, error) {
	return call(c, ctx, func(o ops.Operations) (ops.Incident, error) { return o.AcknowledgeIncident(ctx, by, req) })
}

// CloseIncident implements ops.Operations.
func (c *Conn) CloseIncident(ctx context.Context, by ops.Actor, req ops.IncidentAction) (ops.Incident, error) {
	return call(c, ctx, func(o ops.Operations) (ops.Incident, error) { return o.CloseIncident(ctx, by, req) })
}

// RecordAction implements ops.Operations.
func (c *Conn) RecordAction(ctx context.Context, by ops.Actor, rec ops.ActionRecord) (ops.AuditEntry, error) {
	return call(c, ctx, func(o ops.Operations) (ops.AuditEntry, error) { return o.RecordAction(ctx, by, rec) })
}

// Override implements ops.Operations.
func (c *Conn) Override(ctx context.Context) (ops.OverrideStatus, error) {
	return call(c, ctx, func(o ops.Operations) (ops.OverrideStatus, error) { return o.Override(ctx) })
}

// OverrideOn implements ops.Operations.
func (c *Conn) OverrideOn(ctx context.Context, by ops.Actor, req ops.OverrideRequest) (ops.OverrideStatus, error) {
	return call(c, ctx, func(o ops.Operations) (ops.OverrideStatus, error) { return o.OverrideOn(ctx, by, req) })
}

// OverrideOff implements ops.Operations.
func (c *Conn) OverrideOff(ctx context.Context, by ops.Actor, req ops.OverrideRequest) (ops.OverrideStatus, error) {
	return call(c, ctx, func(o ops.Operations) (ops.OverrideStatus, error) { return o.OverrideOff(ctx, by, req) })
}

// Migrations implements ops.Operations.
func (c *Conn) Migrations(ctx context.Context, f ops.MigrationFilter) ([]ops.Migration, error) {
	return call(c, ctx, func(o ops.Operations) ([]ops.Migration, error) { return o.Migrations(ctx, f) })
}

// RequestMigration implements ops.Operations.
func (c *Conn) RequestMigration(ctx context.Context, by ops.Actor, req ops.MigrationRequest) (ops.Migration, error) {
	return call(c, ctx, func(o ops.Operations) (ops.Migration, error) { return o.RequestMigration(ctx, by, req) })
}

// DecideMigration implements ops.Operations.
func (c *Conn) DecideMigration(ctx context.Context, by ops.Actor, d ops.Decision) (ops.Migration, error) {
	return call(c, ctx, func(o ops.Operations) (ops.Migration, error) { return o.DecideMigration(ctx, by, d) })
}

// BeginMigration implements ops.Operations.
func (c *Conn) BeginMigration(ctx context.Context, by ops.Actor, req ops.BeginMigration) (ops.Migration, error) {
	return call(c, ctx, func(o ops.Operations) (ops.Migration, error) { return o.BeginMigration(ctx, by, req) })
}

// FinishMigration implements ops.Operations.
func (c *Conn) FinishMigration(ctx context.Context, by ops.Actor, req ops.FinishMigration) (ops.Migration, error) {
	return call(c, ctx, func(o ops.Operations) (ops.Migration, error) { return o.FinishMigration(ctx, by, req) })
}

// Snapshots implements ops.Operations.
func (c *Conn) Snapshots(ctx context.Context) ([]ops.SnapshotTarget, error) {
	return call(c, ctx, func(o ops.Operations) ([]ops.SnapshotTarget, error) { return o.Snapshots(ctx) })
}

// CreateSnapshot implements ops.Operations.
func (c *Conn) CreateSnapshot(ctx context.Context, by ops.Actor, req ops.SnapshotRequest) (ops.SnapshotInfo, error) {
	return call(c, ctx, func(o ops.Operations) (ops.SnapshotInfo, error) { return o.CreateSnapshot(ctx, by, req) })
}

// Restores implements ops.Operations.
func (c *Conn) Restores(ctx context.Context) ([]ops.Restore, error) {
	return call(c, ctx, func(o ops.Operations) ([]ops.Restore, error) { return o.Restores(ctx) })
}

// StartRestore implements ops.Operations.
func (c *Conn) StartRestore(ctx context.Context, by ops.Actor, req ops.RestoreRequest) (ops.Restore, error) {
	return call(c, ctx, func(o ops.Operations) (ops.Restore, error) { return o.StartRestore(ctx, by, req) })
}

// Audit implements ops.Operations.
func (c *Conn) Audit(ctx context.Context, f ops.AuditFilter) ([]ops.AuditEntry, error) {
	return call(c, ctx, func(o ops.Operations) ([]ops.AuditEntry, error) { return o.Audit(ctx, f) })
}

// DeadLetters implements ops.Operations.
func (c *Conn) DeadLetters(ctx context.Context) ([]deadletter.Letter, error) {
	return call(c, ctx, func(o ops.Operations) ([]deadletter.Letter, error) { return o.DeadLetters(ctx) })
}

// DeadLetter implements ops.Operations.
func (c *Conn) DeadLetter(ctx context.Context, id uint64) (ops.DeadLetterDetail, error) {
	return call(c, ctx, func(o ops.Operations) (ops.DeadLetterDetail, error) { return o.DeadLetter(ctx, id) })
}

// ReplayDeadLetter implements ops.Operations.
func (c *Conn) ReplayDeadLetter(ctx context.Context, by ops.Actor, req ops.DeadLetterAction) (deadletter.Letter, error) {
	return call(c, ctx, func(o ops.Operations) (deadletter.Letter, error) { return o.ReplayDeadLetter(ctx, by, req) })
}

// DropDeadLetter implements ops.Operations.
func (c *Conn) DropDeadLetter(ctx context.Context, by ops.Actor, req ops.DeadLetterAction) (deadletter.Letter, error) {
	return call(c, ctx, func(o ops.Operations) (deadletter.Letter, error) { return o.DropDeadLetter(ctx, by, req) })
}
