package control

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/deadletter"
	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/agent/runtime"
	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/plugins/detect"
	"github.com/tda-dev/tda/plugins/detect/rules"
	"github.com/tda-dev/tda/plugins/jsonl"
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
	// TrailPath is the audit trail's file ("" when the config has no jsonl sink).
	TrailPath string
	Windows   []ops.Window
	Snapshots ops.Snapshots

	snapshots *snapshotSet
}

// Prepare reads the http block, finds the audit trail and the migration rule's maintenance
// windows, and opens the snapshot targets of cfg. Problems are positioned diagnostics.
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
	s.Windows, d = maintenanceWindows(cfg)
	diags = append(diags, d...)
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
	if s == nil || s.snapshots == nil {
		return nil
	}
	return s.snapshots.Close(ctx)
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

// auditTrail returns the path of the jsonl sink the alerts are read from: the one the http
// block names, else the only jsonl sink of the pipelines that run a rules processor, else the
// only jsonl sink at all.
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
				if r.Type != "jsonl" {
					continue
				}
				k := cfg.Component(r)
				if k == nil {
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
	diags := cfg.Decode(c, jsonl.Spec)
	if diags.HasErrors() {
		return "", diags
	}
	conf, sd := sdk.ParseConfig(jsonl.Spec, c.Config)
	if sd.HasErrors() {
		return "", cfg.Positioned(c, jsonl.Spec, sd)
	}
	return conf.String("path"), diags
}

// maintenanceWindows returns the maintenance windows of every rule that counts
// migration_started, from the config's rules processors.
func maintenanceWindows(cfg *config.Config) ([]ops.Window, hcl.Diagnostics) {
	var out []ops.Window
	var diags hcl.Diagnostics
	spec := detect.RulesSpec()
	for _, c := range cfg.Components {
		if c.Kind != sdk.KindProcessor || c.Type != "rules" || !c.Used {
			continue
		}
		d := cfg.Decode(c, spec)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		conf, sd := sdk.ParseConfig(spec, c.Config)
		if sd.HasErrors() {
			diags = append(diags, cfg.Positioned(c, spec, sd)...)
			continue
		}
		rs, err := detect.ParseRules(conf)
		if err != nil {
			if dg, ok := err.(*sdk.Diagnostic); ok {
				diags = append(diags, cfg.Positioned(c, spec, sdk.Diagnostics{dg})...)
			} else {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid rules",
					Detail: err.Error(), Subject: c.DefRange.Ptr()})
			}
			continue
		}
		for _, r := range rs {
			counts := false
			for _, m := range r.Match {
				counts = counts || m == "migration_started"
			}
			if !counts {
				continue
			}
			for _, x := range r.Exemptions {
				if w, ok := x.(*rules.MaintenanceWindow); ok {
					out = append(out, w)
				}
			}
		}
	}
	return out, diags
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
			DeadLetters: c.DeadLetters, Pid: c.Pid})
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
