package cli_test

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/tda-dev/tda/agent/agenttest"
	"github.com/tda-dev/tda/agent/cli"
)

// bundledPlugins lists every plugin directory with a command.
func bundledPlugins(t *testing.T) []string {
	dirs, err := filepath.Glob(filepath.Join(agenttest.RepoRoot(), "plugins", "*", "cmd"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no bundled plugins found: %v", err)
	}
	var names []string
	for _, d := range dirs {
		names = append(names, filepath.Base(filepath.Dir(d)))
	}
	return names
}

// Every shipped config validates with the bundled plugins.
func TestShippedConfigsValidate(t *testing.T) {
	bins := agenttest.Build(t, bundledPlugins(t)...)
	configs, _ := filepath.Glob(filepath.Join(agenttest.RepoRoot(), "configs", "*.hcl"))
	if len(configs) == 0 {
		t.Fatal("no configs")
	}
	for _, path := range configs {
		t.Run(filepath.Base(path), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := cli.Main([]string{"validate", "-config", path, "-plugin-dir", bins.PluginDir}, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d:\n%s", code, stderr.String())
			}
		})
	}
}

// configs/agent.hcl runs the detection of configs/detect.hcl in one step: its rules block
// holds every setting and block of detect.hcl's override and rules blocks, unchanged, and
// record_overrides = true (the two forms give the same alerts: see plugins/detect's
// TestShippedOneStepIsTheTwoSteps).
func TestDefaultConfigHasTheShippedRules(t *testing.T) {
	root := agenttest.RepoRoot()
	agent := processorBlocks(t, filepath.Join(root, "configs", "agent.hcl"))
	detect := processorBlocks(t, filepath.Join(root, "configs", "detect.hcl"))
	one, ok := agent["rules"]
	if !ok || len(agent) != 1 {
		t.Fatalf("configs/agent.hcl has processors %v; want one rules block", keys(agent))
	}
	if one.attrs["record_overrides"] != "true" {
		t.Fatalf("the rules block of configs/agent.hcl lacks record_overrides = true")
	}
	want := hclBlock{attrs: map[string]string{"record_overrides": "true"}, blocks: map[string]string{}}
	for _, typ := range []string{"override", "rules"} {
		b, ok := detect[typ]
		if !ok {
			t.Fatalf("configs/detect.hcl has no %s block", typ)
		}
		for k, v := range b.attrs {
			if w, dup := want.attrs[k]; dup && w != v {
				t.Fatalf("configs/detect.hcl sets %s to %s and %s in its two blocks", k, w, v)
			}
			want.attrs[k] = v
		}
		for k, v := range b.blocks {
			want.blocks[k] = v
		}
	}
	for k, v := range want.attrs {
		if one.attrs[k] != v {
			t.Errorf("configs/agent.hcl: %s = %q, configs/detect.hcl: %q", k, one.attrs[k], v)
		}
	}
	for k := range one.attrs {
		if _, ok := want.attrs[k]; !ok {
			t.Errorf("configs/agent.hcl sets %s, which configs/detect.hcl does not", k)
		}
	}
	for k, v := range want.blocks {
		if one.blocks[k] != v {
			t.Errorf("configs/agent.hcl and configs/detect.hcl disagree on block %s", k)
		}
	}
	if len(one.blocks) != len(want.blocks) {
		t.Errorf("configs/agent.hcl has blocks %v, configs/detect.hcl %v", keys(one.blocks), keys(want.blocks))
	}
}

// hclBlock is a block's attributes (name to expression source) and nested blocks (type and
// labels to source).
type hclBlock struct {
	attrs, blocks map[string]string
}

// processorBlocks reads the processor blocks of a config file by type.
func processorBlocks(t *testing.T, path string) map[string]hclBlock {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("%s: %v", path, diags)
	}
	text := func(r hcl.Range) string { return string(src[r.Start.Byte:r.End.Byte]) }
	out := map[string]hclBlock{}
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		if b.Type != "processor" || len(b.Labels) != 2 {
			continue
		}
		hb := hclBlock{attrs: map[string]string{}, blocks: map[string]string{}}
		for name, a := range b.Body.Attributes {
			hb.attrs[name] = text(a.Expr.Range())
		}
		for _, nb := range b.Body.Blocks {
			hb.blocks[nb.Type+" "+strings.Join(nb.Labels, " ")] = text(nb.Range())
		}
		out[b.Labels[0]] = hb
	}
	return out
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
