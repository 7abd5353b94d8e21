package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/tda-dev/tda/agent/actions"
	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/deadletter"
	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/agent/runtime"
	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/sdk"
)

// SocketName is the agent's control socket inside data_dir.
const SocketName = "tda.sock"

// SocketPath is where the agent of cfg listens for the CLI.
func SocketPath(cfg *config.Config) string {
	return filepath.Join(cfg.Agent.DataDir, SocketName)
}

// Setup is what the operations need from a configuration.
type Setup struct {
	HTTP *HTTPSettings
	// TrailPath is the audit trail's file ("" when no sink of the config writes one).
	TrailPath string
	// Windows returns the maintenance windows of the migration rules, which the rules
	// processors' plugins report (action rules.describe) when a migration first begins.
	Windows   ops.WindowSource
	Snapshots ops.Snapshots

	snapshots *snapshotSet
	// closers are released by Close after the snapshot targets (AlsoClose).
	closers []io.Closer
}

// AlsoClose has Close release c too, after the snapshot targets (the registry of the plugins
// the setup's actions are launched from).
func (s *Setup) AlsoClose(c io.Closer) {
	s.closers = append(s.closers, c)
}

// Prepare reads the http block, finds the audit trail, sets up how the migration rules'
// maintenance windows are learned, and opens the snapshot targets of cfg. Problems are
// positioned diagnostics. The audit trail and the windows need cfg's plugins (loader.Load):
// for a config read alone there is neither.
func Prepare(cfg *config.Config, log hclog.Logger) (*Setup, hcl.Diagnostics) {
	s := &Setup{}
	var diags hcl.Diagnostics
	var d hcl.Diagnostics
	s.HTTP, d = ParseHTTP(cfg)
	diags = append(diags, d...)
	var ref *config.Ref
	if s.HTTP != nil {
		ref = s.HTTP.AuditTrail
	}
	s.TrailPath, d = auditTrail(cfg, ref)
	diags = append(diags, d...)
	s.Windows = maintenanceWindows(cfg, log)
	set, d := snapshotTargets(cfg, log)
	diags = append(diags, d...)
	if set != nil {
		s.Snapshots, s.snapshots = set, set
	}
	return s, diags
}

// Close releases the snapshot providers opened through the setup, letting a snapshot still
// being written finish until ctx ends.
func (s *Setup) Close(ctx context.Context) error {
	if s == nil {
		return nil
	}
	var errs []error
	if s.snapshots != nil {
		errs = append(errs, s.snapshots.Close(ctx))
	}
	for _, c := range s.closers {
		errs = append(errs, c.Close())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// Check reports the problems of the http block and of the audit trail's choice (tda
// validate); the plugins check their own blocks.
func Check(cfg *config.Config) hcl.Diagnostics {
	h, diags := ParseHTTP(cfg)
	var ref *config.Ref
	if h != nil {
		ref = h.AuditTrail
	}
	_, d := auditTrail(cfg, ref)
	for _, x := range d {
		if x.Summary == "Which audit trail?" {
			diags = append(diags, x)
		}
	}
	return diags
}

// auditTrail returns the path of the audit trail the alerts are read from: that of the sink the
// http block names, else of the only sink writing an audit trail (its plugin's spec declares
// sdk.Spec.AuditTrail, as the jsonl sink does) in the pipelines that run a rules processor,
// else of the only one at all.
func auditTrail(cfg *config.Config, ref *config.Ref) (string, hcl.Diagnostics) {
	var c *config.Component
	if ref != nil {
		c = cfg.Component(*ref)
	} else {
		detecting := map[string]*config.Component{}
		all := map[string]*config.Component{}
		for _, p := range cfg.Pipelines {
			rulesHere := false
			for _, r := range p.Through {
				rulesHere = rulesHere || r.Type == "rules"
			}
			for _, r := range p.To {
				k := cfg.Component(r)
				if k == nil || trailField(cfg, k) == "" {
					continue
				}
				all[k.Address()] = k
				if rulesHere {
					detecting[k.Address()] = k
				}
			}
		}
		pick := detecting
		if len(pick) == 0 {
			pick = all
		}
		switch len(pick) {
		case 0:
			return "", nil
		case 1:
			for _, k := range pick {
				c = k
			}
		default:
			var names []string
			for n := range pick {
				names = append(names, n)
			}
			sort.Strings(names)
			r := cfg.HTTPRange
			if r == nil {
				r = &pick[names[0]].DefRange
			}
			return "", hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Which audit trail?",
				Detail: fmt.Sprintf("Several jsonl sinks receive alerts (%s): say which one the panel reads with "+
					"audit_trail = %s in the http block.", strings.Join(names, ", "), names[0]),
				Subject: r}}
		}
	}
	return trailPath(cfg, c), nil
}

// trailSpec returns the spec of c's plugin, when it declares an audit trail field.
func trailSpec(cfg *config.Config, c *config.Component) *sdk.Spec {
	if c == nil || cfg.Registry == nil {
		return nil
	}
	_, desc, ok := cfg.Registry.Lookup(c.Kind, c.Type)
	if !ok || desc.Spec == nil || desc.Spec.AuditTrail == "" {
		return nil
	}
	return desc.Spec
}

// trailField is the field of c that names its audit trail file ("": c writes none, or its
// plugin is unknown).
func trailField(cfg *config.Config, c *config.Component) string {
	if spec := trailSpec(cfg, c); spec != nil {
		return spec.AuditTrail
	}
	return ""
}

// trailPath reads the audit trail's path from c's decoded block ("" when it writes none).
func trailPath(cfg *config.Config, c *config.Component) string {
	field := trailField(cfg, c)
	if field == "" || c.Config == nil {
		return ""
	}
	var m map[string]any
	if json.Unmarshal(c.Config, &m) != nil {
		return ""
	}
	p, _ := m[field].(string)
	return p
}

// maintenanceWindows returns how the maintenance windows of every rule that counts
// migration_started are learned: from the used processors whose plugin serves
// rules.describe, asked once, when a migration first begins (starting a plugin for every
// command would slow them all). A failure is not kept: the next migration asks again.
func maintenanceWindows(cfg *config.Config, log hclog.Logger) ops.WindowSource {
	var (
		mu      sync.Mutex // held while the plugins are asked: one asking at a time
		known   bool
		windows []ops.Window
	)
	return func(ctx context.Context) ([]ops.Window, error) {
		mu.Lock()
		defer mu.Unlock()
		if known {
			return windows, nil
		}
		ws, err := describeWindows(ctx, cfg, log)
		if err != nil {
			return nil, err
		}
		windows, known = ws, true
		return windows, nil
	}
}

// describeRulesAction is the action of a rules processor that lists its rules.
const describeRulesAction = "rules.describe"

// rulesDescription is the result of rules.describe (docs/plugins.md).
type rulesDescription struct {
	Rules []struct {
		Name               string                  `json:"name"`
		Match              []string                `json:"match"`
		MaintenanceWindows []sdk.MaintenanceWindow `json:"maintenance_windows"`
	} `json:"rules"`
}

// migrationEvent is the event type of a schema migration starting; the windows of the rules
// that count it are the migration gate's.
const migrationEvent = "migration_started"

func describeWindows(ctx context.Context, cfg *config.Config, log hclog.Logger) ([]ops.Window, error) {
	var out []ops.Window
	for _, c := range cfg.Components {
		if c.Kind != sdk.KindProcessor || !c.Used {
			continue
		}
		// A processor whose plugin is unknown here may have windows: the migration waits
		// rather than pass as if there were none.
		if cfg.Registry == nil {
			return nil, fmt.Errorf("the configuration was read without its plugins, which know the maintenance windows of %s", c.Address())
		}
		_, desc, ok := cfg.Registry.Lookup(c.Kind, c.Type)
		if !ok {
			return nil, fmt.Errorf("no installed plugin serves %s %q, so the maintenance windows of %s are unknown: install it (tda plugins lists what is installed)",
				c.Kind, c.Type, c.Address())
		}
		if _, serves := desc.Action(describeRulesAction); !serves {
			continue
		}
		var d rulesDescription
		r := actions.Runner{Logger: log}
		if err := r.Call(ctx, cfg, c.Address(), describeRulesAction, nil, &d, nil, ""); err != nil {
			return nil, fmt.Errorf("ask %s for its rules: %w", c.Address(), err)
		}
		for _, rule := range d.Rules {
			if !slices.Contains(rule.Match, migrationEvent) {
				continue
			}
			for i := range rule.MaintenanceWindows {
				out = append(out, &rule.MaintenanceWindows[i])
			}
		}
	}
	return out, nil
}

// RuntimeAgent adapts a runtime to ops.Agent. Bind it to the runtime once built: the
// runtime's Observe option needs the service first.
type RuntimeAgent struct {
	mu sync.RWMutex
	rt *runtime.Runtime
}

// Bind sets the runtime.
func (a *RuntimeAgent) Bind(rt *runtime.Runtime) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rt = rt
}

func (a *RuntimeAgent) get() *runtime.Runtime {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.rt
}

// Pipelines implements ops.Agent.
func (a *RuntimeAgent) Pipelines() map[string][]string {
	if rt := a.get(); rt != nil {
		return rt.Pipelines()
	}
	return nil
}

// Inject implements ops.Agent.
func (a *RuntimeAgent) Inject(ctx context.Context, pipeline string, events []sdk.Event) error {
	rt := a.get()
	if rt == nil {
		return fmt.Errorf("the pipelines are not running yet")
	}
	return rt.Inject(ctx, pipeline, events)
}

// Components implements ops.Agent.
func (a *RuntimeAgent) Components() []ops.ComponentHealth {
	rt := a.get()
	if rt == nil {
		return nil
	}
	var out []ops.ComponentHealth
	for _, c := range rt.Health().Components() {
		out = append(out, ops.ComponentHealth{Address: c.Address, Healthy: c.Healthy, Reason: c.Reason,
			Since: c.Since, Restarts: c.Restarts, Queued: c.Queued, Spilled: c.Spilled, Dropped: c.Dropped,
			DeadLetters: c.DeadLetters, Pid: c.Pid, Report: c.Report})
	}
	return out
}

// NewService builds the operations service over store for setup; agent and letters are nil
// when no agent runs in this process.
func NewService(setup *Setup, store *state.Store, agent ops.Agent, letters deadletter.Letters, via string, log hclog.Logger) (*ops.Service, error) {
	opts := ops.Options{Store: store, Agent: agent, Windows: setup.Windows, Snapshots: setup.Snapshots,
		Via: via, Logger: log}
	if letters != nil {
		opts.DeadLetters = letters
	}
	if setup.TrailPath != "" {
		opts.Trail = ops.NewTrail(setup.TrailPath)
	}
	if setup.HTTP != nil {
		opts.ApprovalValidity = setup.HTTP.ApprovalValidity
	}
	return ops.NewService(opts)
}
