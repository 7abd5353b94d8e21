package runtime

import (
	"fmt"
	"strings"

	"github.com/tda-dev/tda/agent/config"
)

// Plan is what a configuration runs, worked out from the config alone: the pipelines, the
// checkpoint groups they form, their flow-control budgets, and the order in which the
// runners start and stop.
type Plan struct {
	Pipelines []PipelinePlan
	// Groups are the connected parts of the pipeline graph (see GroupPlan).
	Groups []GroupPlan
	// Start lists the instances downstream first: sinks (a fallback before the sinks that
	// hand it batches), then each pipeline's processors from last to first, then sources.
	Start []string
	// Stop is Start reversed: sources first, sinks last, so what is in flight drains.
	Stop []string
}

// PipelinePlan is one pipeline of the plan.
type PipelinePlan struct {
	Name       string
	Sources    []string
	Processors []string
	Sinks      []string
	// Group is the index in Plan.Groups of the checkpoint group holding the pipeline.
	Group int
	// MaxInflightBatches bounds the batches of each source that the pipeline holds before its
	// sinks accepted them; MaxInflightBytes bounds their bytes, whatever their source.
	MaxInflightBatches int
	MaxInflightBytes   int
	// InputCapacity sizes the pipeline's input queue so a dispatch never waits: every
	// source's batches in flight, plus room for ticks, barriers and injected events.
	InputCapacity int
}

// GroupPlan is a checkpoint group: pipelines joined by a shared source or a shared sink. A
// group commits its checkpoints on its own; one group's stuck sink never holds back
// another's. A fallback sink does not join groups: what it is handed is a copy whose
// acceptance no checkpoint waits for.
type GroupPlan struct {
	Name      string
	Pipelines []string
	Sources   []string
	Sinks     []string
}

// inputSlack is the room a pipeline's input keeps beyond its sources' batches in flight, for
// clock ticks (at most two wait), a checkpoint barrier (at most one: a group issues the next
// only once the pending one is marked) and injected events.
const inputSlack = 64

// BuildPlan works out the plan of cfg, limited to the pipelines named in only (all when
// empty). It reads the config and nothing else.
func BuildPlan(cfg *config.Config, only []string) (*Plan, error) {
	want := map[string]bool{}
	for _, n := range only {
		if cfg.Pipeline(n) == nil {
			return nil, fmt.Errorf("no pipeline named %q", n)
		}
		want[n] = true
	}
	maxBatches := cfg.Agent.MaxInflight
	if maxBatches < 1 {
		maxBatches = config.DefaultMaxInflight
	}
	maxBytes := cfg.Agent.MaxInflightBytes
	if maxBytes <= 0 {
		maxBytes = config.DefaultMaxInflightBytes
	}
	plan := &Plan{}
	for _, p := range cfg.Pipelines {
		if len(want) > 0 && !want[p.Name] {
			continue
		}
		pp := PipelinePlan{Name: p.Name, MaxInflightBatches: maxBatches, MaxInflightBytes: maxBytes}
		for _, r := range p.From {
			pp.Sources = appendNew(pp.Sources, r.Address())
		}
		for _, r := range p.Through {
			pp.Processors = append(pp.Processors, r.Address())
		}
		for _, r := range p.To {
			pp.Sinks = appendNew(pp.Sinks, r.Address())
		}
		pp.InputCapacity = inputSlack + len(pp.Sources)*maxBatches
		plan.Pipelines = append(plan.Pipelines, pp)
	}
	plan.group()
	if err := plan.order(cfg); err != nil {
		return nil, err
	}
	return plan, nil
}

// group joins pipelines that share a source or a sink (union-find over pipeline indexes) and
// numbers the groups by their first pipeline in config order.
func (plan *Plan) group() {
	parent := make([]int, len(plan.Pipelines))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		if parent[i] != i {
			parent[i] = find(parent[i])
		}
		return parent[i]
	}
	owner := map[string]int{} // source or sink address -> first pipeline using it
	for i, p := range plan.Pipelines {
		for _, addr := range append(append([]string(nil), p.Sources...), p.Sinks...) {
			if j, ok := owner[addr]; ok {
				a, b := find(i), find(j)
				if a < b {
					a, b = b, a
				}
				parent[a] = b
			} else {
				owner[addr] = i
			}
		}
	}
	index := map[int]int{} // root pipeline -> group index
	for i := range plan.Pipelines {
		root := find(i)
		g, ok := index[root]
		if !ok {
			g = len(plan.Groups)
			index[root] = g
			plan.Groups = append(plan.Groups, GroupPlan{})
		}
		p := &plan.Pipelines[i]
		p.Group = g
		gp := &plan.Groups[g]
		gp.Pipelines = append(gp.Pipelines, p.Name)
		for _, s := range p.Sources {
			gp.Sources = appendNew(gp.Sources, s)
		}
		for _, s := range p.Sinks {
			gp.Sinks = appendNew(gp.Sinks, s)
		}
	}
	for i := range plan.Groups {
		plan.Groups[i].Name = strings.Join(plan.Groups[i].Pipelines, "+")
	}
}

// order lists the instances downstream first. Sinks come in dependency order (a fallback
// before the sink that uses it), then the processors of each pipeline from its last to its
// first, then the sources; every instance once.
func (plan *Plan) order(cfg *config.Config) error {
	seen := map[string]bool{}
	var sinks []string
	var visit func(addr string, depth int) error
	visit = func(addr string, depth int) error {
		if seen[addr] {
			return nil
		}
		if depth > 64 {
			return fmt.Errorf("%s: the fallback chain is too long or loops", addr)
		}
		c := cfg.ComponentByAddress(addr)
		if c == nil {
			return fmt.Errorf("%s is not defined", addr)
		}
		if c.Sink != nil && c.Sink.Fallback != nil {
			if err := visit(c.Sink.Fallback.Address(), depth+1); err != nil {
				return err
			}
		}
		if !seen[addr] {
			seen[addr] = true
			sinks = append(sinks, addr)
		}
		return nil
	}
	for _, p := range plan.Pipelines {
		for _, s := range p.Sinks {
			if err := visit(s, 0); err != nil {
				return err
			}
		}
	}
	plan.Start = append(plan.Start, sinks...)
	for _, p := range plan.Pipelines {
		for i := len(p.Processors) - 1; i >= 0; i-- {
			plan.Start = append(plan.Start, p.Processors[i])
		}
	}
	var sources []string
	for _, p := range plan.Pipelines {
		for _, s := range p.Sources {
			sources = appendNew(sources, s)
		}
	}
	plan.Start = append(plan.Start, sources...)
	plan.Stop = make([]string, len(plan.Start))
	for i, a := range plan.Start {
		plan.Stop[len(plan.Start)-1-i] = a
	}
	return nil
}

// String renders the plan for people and golden files.
func (plan *Plan) String() string {
	var b strings.Builder
	for _, p := range plan.Pipelines {
		fmt.Fprintf(&b, "pipeline %s (group %d)\n", p.Name, p.Group)
		fmt.Fprintf(&b, "  from    %s\n", strings.Join(p.Sources, ", "))
		if len(p.Processors) > 0 {
			fmt.Fprintf(&b, "  through %s\n", strings.Join(p.Processors, " -> "))
		}
		fmt.Fprintf(&b, "  to      %s\n", strings.Join(p.Sinks, ", "))
		fmt.Fprintf(&b, "  inflight %d batches per source, %d bytes; input %d\n",
			p.MaxInflightBatches, p.MaxInflightBytes, p.InputCapacity)
	}
	for i, g := range plan.Groups {
		fmt.Fprintf(&b, "group %d %s\n", i, g.Name)
		fmt.Fprintf(&b, "  sources %s\n", strings.Join(g.Sources, ", "))
		fmt.Fprintf(&b, "  sinks   %s\n", strings.Join(g.Sinks, ", "))
	}
	fmt.Fprintf(&b, "start %s\n", strings.Join(plan.Start, ", "))
	fmt.Fprintf(&b, "stop  %s\n", strings.Join(plan.Stop, ", "))
	return b.String()
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
