package runtime_test

import (
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/runtime"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func loadPlanConfig(t *testing.T, path string) *config.Config {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, diags := config.LoadBytes(filepath.Base(path), src)
	if diags.HasErrors() {
		t.Fatalf("%s: %v", path, diags)
	}
	return cfg
}

// Each testdata/plan/NAME.hcl has its plan in NAME.golden (NAME.ONLY.golden when limited to
// pipeline ONLY).
func TestBuildPlanGolden(t *testing.T) {
	tests := []struct {
		config string
		only   []string
	}{
		{"single", nil},
		{"shared-source", nil},
		{"unconnected", nil},
		{"unconnected", []string{"hosts"}},
		{"shared-sink", nil},
	}
	for _, tt := range tests {
		name := tt.config
		if len(tt.only) > 0 {
			name += "." + strings.Join(tt.only, "+")
		}
		t.Run(name, func(t *testing.T) {
			cfg := loadPlanConfig(t, filepath.Join("testdata", "plan", tt.config+".hcl"))
			plan, err := runtime.BuildPlan(cfg, tt.only)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "plan", name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(plan.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got := plan.String(); got != string(want) {
				t.Fatalf("plan of %s:\n%s\nwant:\n%s", tt.config, got, want)
			}
		})
	}
}

func TestBuildPlanRefusesAnUnknownPipeline(t *testing.T) {
	cfg := loadPlanConfig(t, filepath.Join("testdata", "plan", "single.hcl"))
	if _, err := runtime.BuildPlan(cfg, []string{"nope"}); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("want an error naming the pipeline, got %v", err)
	}
}

// Start lists every instance once, each sink after its fallback, every processor after
// those downstream of it in its pipeline, sources last; Stop is its reverse.
func TestBuildPlanOrderInvariants(t *testing.T) {
	for _, name := range []string{"single", "shared-source", "unconnected", "shared-sink"} {
		cfg := loadPlanConfig(t, filepath.Join("testdata", "plan", name+".hcl"))
		plan, err := runtime.BuildPlan(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		pos := map[string]int{}
		for i, a := range plan.Start {
			if _, dup := pos[a]; dup {
				t.Fatalf("%s: %s started twice", name, a)
			}
			pos[a] = i
		}
		for i, a := range plan.Stop {
			if plan.Start[len(plan.Start)-1-i] != a {
				t.Fatalf("%s: stop %v is not start %v reversed", name, plan.Stop, plan.Start)
			}
		}
		for _, p := range plan.Pipelines {
			for _, src := range p.Sources {
				for _, k := range p.Sinks {
					if pos[src] < pos[k] {
						t.Errorf("%s: source %s starts before sink %s", name, src, k)
					}
				}
				for _, proc := range p.Processors {
					if pos[src] < pos[proc] {
						t.Errorf("%s: source %s starts before processor %s", name, src, proc)
					}
				}
			}
			for i := 1; i < len(p.Processors); i++ {
				if pos[p.Processors[i-1]] < pos[p.Processors[i]] {
					t.Errorf("%s: %s starts before %s, which is downstream of it", name, p.Processors[i-1], p.Processors[i])
				}
			}
		}
		for _, c := range cfg.Components {
			if c.Sink != nil && c.Sink.Fallback != nil {
				if _, ok := pos[c.Address()]; ok && pos[c.Sink.Fallback.Address()] > pos[c.Address()] {
					t.Errorf("%s: %s starts before its fallback", name, c.Address())
				}
			}
		}
	}
}

// The groups do not depend on the order of the pipeline blocks: shuffling them yields the
// same partition of pipelines.
func TestBuildPlanGroupsIgnoreBlockOrder(t *testing.T) {
	for _, name := range []string{"shared-source", "unconnected", "shared-sink"} {
		cfg := loadPlanConfig(t, filepath.Join("testdata", "plan", name+".hcl"))
		plan, err := runtime.BuildPlan(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := partition(plan)
		r := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < 50; i++ {
			r.Shuffle(len(cfg.Pipelines), func(a, b int) { cfg.Pipelines[a], cfg.Pipelines[b] = cfg.Pipelines[b], cfg.Pipelines[a] })
			shuffled, err := runtime.BuildPlan(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := partition(shuffled); got != want {
				t.Fatalf("%s: groups %s after shuffling, want %s", name, got, want)
			}
		}
	}
}

// partition renders the groups as sorted sets of sorted pipeline names.
func partition(plan *runtime.Plan) string {
	var groups []string
	for _, g := range plan.Groups {
		names := append([]string(nil), g.Pipelines...)
		sort.Strings(names)
		groups = append(groups, strings.Join(names, ","))
	}
	sort.Strings(groups)
	return strings.Join(groups, " | ")
}
