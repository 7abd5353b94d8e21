package control

import (
	"context"
	"fmt"
	"time"

	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/plugins/snapshot"
	"github.com/tda-dev/tda/plugins/snapshot/provider"
)

// Recovery implements ops.Operations.
func (c *Conn) Recovery(ctx context.Context, incident string) (ops.IncidentRecovery, error) {
	return call(c, ctx, func(o ops.Operations) (ops.IncidentRecovery, error) { return o.Recovery(ctx, incident) })
}

var _ ops.SnapshotProber = (*snapshotSet)(nil)

// ProbeIntervals implements ops.SnapshotProber: each block's probe_interval.
func (s *snapshotSet) ProbeIntervals() map[string]time.Duration {
	out := make(map[string]time.Duration, len(s.targets))
	for _, t := range s.targets {
		d := t.ProbeInterval // at least snapshot.MinProbeInterval once parsed
		if d <= 0 {
			d = time.Minute
		}
		out[t.Name] = d
	}
	return out
}

// Probe implements ops.SnapshotProber with the provider's own probe; the error names the
// config block to fix.
func (s *snapshotSet) Probe(ctx context.Context, target string) error {
	t, err := s.find(target)
	if err != nil {
		return err
	}
	m, err := s.manager(ctx, t)
	if err == nil {
		p, ok := m.Provider().(provider.Prober)
		if !ok {
			return nil // nothing to probe with: the snapshots themselves will tell
		}
		err = p.Probe(ctx)
	}
	if err == nil {
		return nil
	}
	if where := s.where[target]; where != "" {
		return fmt.Errorf("%w (in %s)", err, where)
	}
	return err
}

// RestoreConnection is where a restore of t into newName answers, without secrets:
// PostgreSQL's host, port and user come from the block; Aurora's from the restored cluster.
func RestoreConnection(t snapshot.Settings, newName string, res provider.RestoreResult) *ops.Connection {
	switch {
	case t.Postgres != nil:
		c := &ops.Connection{Kind: "postgres", Host: t.Postgres.Host, Port: t.Postgres.Port, Database: newName,
			User: t.Postgres.User}
		if c.Port == 0 {
			c.Port = 5432
		}
		return c
	case t.Aurora != nil:
		return &ops.Connection{Kind: "aurora", Host: res.Endpoint, Port: res.Port, Cluster: newName,
			Database: res.Database, User: res.User}
	}
	return nil
}
