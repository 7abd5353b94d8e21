package control

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/tda-dev/tda/agent/actions"
	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/sdk/snapshotapi"
)

// snapshotTargets finds the blocks whose plugin serves the snapshot actions
// (sdk/snapshotapi): the bundled `sink "snapshot"` or a third party's provider. Every
// operation reaches the provider through those actions, in a plugin process of its own
// (agent/actions), never through the running sink. A config read without its plugins
// (cfg.Registry nil) has none.
func snapshotTargets(cfg *config.Config, log hclog.Logger) (*snapshotSet, hcl.Diagnostics) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	set := &snapshotSet{cfg: cfg, log: log, described: map[string]snapshotapi.Target{}}
	for _, c := range actions.Serving(cfg, snapshotapi.ActionList) {
		set.targets = append(set.targets, snapshotBlock{name: c.Name, address: c.Address(),
			where: fmt.Sprintf("%s %q %q, %s:%d", c.Kind, c.Type, c.Name, c.DefRange.Filename, c.DefRange.Start.Line)})
	}
	sort.Slice(set.targets, func(i, j int) bool { return set.targets[i].name < set.targets[j].name })
	if len(set.targets) == 0 {
		return nil, nil
	}
	return set, nil
}

// snapshotBlock is one block that serves the snapshot actions.
type snapshotBlock struct {
	name, address string
	// where locates the block in the config, for what-to-fix messages.
	where string
}

// snapshotSet is ops.Snapshots over the snapshot actions of the config's provider blocks.
type snapshotSet struct {
	cfg     *config.Config
	log     hclog.Logger
	targets []snapshotBlock

	mu sync.Mutex
	// described caches each block's snapshot.target (its settings do not change while the
	// agent runs); bounded by targets.
	described map[string]snapshotapi.Target
}

var _ ops.Snapshots = (*snapshotSet)(nil)

// Close implements the Setup's release: every action closed its own instance already.
func (s *snapshotSet) Close(context.Context) error { return nil }

func (s *snapshotSet) find(target string) (snapshotBlock, error) {
	var names []string
	for _, t := range s.targets {
		names = append(names, t.name)
		if t.name == target {
			return t, nil
		}
	}
	if target == "" {
		if len(s.targets) == 1 {
			return s.targets[0], nil
		}
		return snapshotBlock{}, &ops.Error{Kind: ops.KindInvalid,
			Message: fmt.Sprintf("several snapshot targets (%s): say which", strings.Join(names, ", "))}
	}
	return snapshotBlock{}, &ops.Error{Kind: ops.KindNotFound,
		Message: fmt.Sprintf("no snapshot target %q; the config has %s", target, strings.Join(names, ", "))}
}

// call runs a snapshot action on a block's provider; its error is an *ops.Error of the
// action's kind.
func (s *snapshotSet) call(ctx context.Context, b snapshotBlock, action string, args, result any, actor string) error {
	err := actions.Runner{Logger: s.log}.Call(ctx, s.cfg, b.address, action, args, result, nil, actor)
	return opsError(err)
}

// opsError maps an action's error to the operations' kinds (and so to HTTP statuses).
func opsError(err error) error {
	if err == nil {
		return nil
	}
	kind := ""
	switch actions.KindOf(err) {
	case actions.Invalid:
		kind = ops.KindInvalid
	case actions.NotFound:
		kind = ops.KindNotFound
	case actions.Conflict:
		kind = ops.KindConflict
	case actions.Unavailable, actions.PluginFailed:
		kind = ops.KindUnavailable
	}
	if kind == "" {
		return err
	}
	return &ops.Error{Kind: kind, Message: err.Error()}
}

// describe returns what a block protects, asked once.
func (s *snapshotSet) describe(ctx context.Context, b snapshotBlock) (snapshotapi.Target, error) {
	s.mu.Lock()
	t, ok := s.described[b.name]
	s.mu.Unlock()
	if ok {
		return t, nil
	}
	if err := s.call(ctx, b, snapshotapi.ActionTarget, nil, &t, ""); err != nil {
		return t, err
	}
	s.mu.Lock()
	s.described[b.name] = t
	s.mu.Unlock()
	return t, nil
}

// List implements ops.Snapshots.
func (s *snapshotSet) List(ctx context.Context) ([]ops.SnapshotTarget, error) {
	out := []ops.SnapshotTarget{}
	for _, b := range s.targets {
		st := ops.SnapshotTarget{Name: b.name, Tiers: []ops.SnapshotTier{}}
		if t, err := s.describe(ctx, b); err == nil {
			st.Kind, st.Target = t.Kind, t.Target
		}
		var res snapshotapi.ListResult
		if err := s.call(ctx, b, snapshotapi.ActionList, nil, &res, ""); err != nil {
			st.Error = err.Error()
			out = append(out, st)
			continue
		}
		l := res.Listing
		st.Kind, st.Target, st.Warnings = l.Kind, l.Target, l.Warnings
		for _, tier := range l.Tiers {
			ot := ops.SnapshotTier{Name: tier.Name, Snapshots: []ops.SnapshotInfo{}}
			if tier.Newest != nil {
				ot.Newest = *tier.Newest
			}
			if tier.RPOSeconds != nil {
				ot.RPOSeconds = *tier.RPOSeconds
			}
			if tier.Newest != nil {
				ot.RPO = tier.RPO
			}
			if tier.Window != nil {
				ot.Earliest = tier.Window.Earliest
			}
			for _, d := range tier.Snapshots {
				ot.Snapshots = append(ot.Snapshots, snapshotInfo(d, d.Keep, strings.Join(d.Reasons, "; ")))
			}
			st.Tiers = append(st.Tiers, ot)
		}
		out = append(out, st)
	}
	return out, nil
}

func snapshotInfo(p snapshotapi.Snapshot, keep bool, why string) ops.SnapshotInfo {
	return ops.SnapshotInfo{ID: p.ID, Target: p.Target, Time: p.Time, Status: p.Status, Trigger: p.Trigger,
		Tags: p.Tags, Keep: keep, Why: why}
}

// ValidID implements ops.Snapshots with the rule every snapshot provider applies.
func (s *snapshotSet) ValidID(id string) error { return snapshotapi.ValidSnapshotID(id) }

// Resolve implements ops.Snapshots.
func (s *snapshotSet) Resolve(ctx context.Context, target string) (string, string, error) {
	b, err := s.find(target)
	if err != nil {
		return "", "", err
	}
	t, err := s.describe(ctx, b)
	if err != nil {
		return "", "", err
	}
	return b.name, t.Target, nil
}

// Create implements ops.Snapshots: a manual snapshot, returned once its recovery point is
// fixed (it may still be creating).
func (s *snapshotSet) Create(ctx context.Context, target string) (ops.SnapshotInfo, error) {
	b, err := s.find(target)
	if err != nil {
		return ops.SnapshotInfo{}, err
	}
	var res snapshotapi.CreateResult
	if err := s.call(ctx, b, snapshotapi.ActionCreate, snapshotapi.CreateArgs{Trigger: snapshotapi.TriggerManual}, &res, ""); err != nil {
		return ops.SnapshotInfo{}, err
	}
	return snapshotInfo(res.Snapshot, true, ""), nil
}

// Restore implements ops.Snapshots.
func (s *snapshotSet) Restore(ctx context.Context, req ops.RestoreRequest) (ops.Restore, error) {
	b, err := s.find(req.Target)
	if err != nil {
		return ops.Restore{}, err
	}
	var rep snapshotapi.RestoreReport
	err = s.call(ctx, b, snapshotapi.ActionRestoreApply,
		snapshotapi.RestoreArgs{SnapshotID: req.SnapshotID, ToTime: req.ToTime, NewName: req.NewName}, &rep, "")
	out := ops.Restore{RecoveryPoint: rep.Plan.RecoveryPoint, RPOSeconds: rep.RPOSeconds, RTOSeconds: rep.RTOSeconds,
		Endpoint: rep.Endpoint}
	if err == nil && rep.Error != "" {
		err = errors.New(rep.Error)
	}
	if err == nil {
		out.Connection = connectionOf(rep.Connection)
	}
	return out, err
}

// connectionOf is the provider's connection details in the operations' terms.
func connectionOf(c *snapshotapi.Connection) *ops.Connection {
	if c == nil {
		return nil
	}
	return &ops.Connection{Kind: c.Kind, Host: c.Host, Port: c.Port, Cluster: c.Cluster, Database: c.Database, User: c.User}
}

var _ ops.SnapshotProber = (*snapshotSet)(nil)

// probeDescribeTimeout bounds the question for a block's probe interval.
const probeDescribeTimeout = 30 * time.Second

// ProbeIntervals implements ops.SnapshotProber: each block's probe_interval.
func (s *snapshotSet) ProbeIntervals() map[string]time.Duration {
	out := make(map[string]time.Duration, len(s.targets))
	for _, b := range s.targets {
		ctx, cancel := context.WithTimeout(context.Background(), probeDescribeTimeout)
		t, err := s.describe(ctx, b)
		cancel()
		d := time.Duration(t.ProbeIntervalSeconds * float64(time.Second))
		if err != nil || d <= 0 {
			d = time.Minute
		}
		out[b.name] = d
	}
	return out
}

// Probe implements ops.SnapshotProber with the provider's own probe; the error names the
// config block to fix.
func (s *snapshotSet) Probe(ctx context.Context, target string) error {
	b, err := s.find(target)
	if err != nil {
		return err
	}
	err = actions.Runner{Logger: s.log}.Call(ctx, s.cfg, b.address, snapshotapi.ActionProbe, nil, nil, nil, "")
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w (in %s)", err, b.where)
}
