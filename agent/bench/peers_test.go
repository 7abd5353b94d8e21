package bench

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/tda-dev/tda/agent/agenttest"
)

// benchParser is the one block the peer configs add to the shipped detection.
const benchParser = "parser bench_failed_login"

// TestPeerConfigsFollowTheShippedDetection: the side-by-side harness measures what tda ships.
// peers/tda.rules.hcl and tda.rules-shared.hcl hold the processor blocks of
// configs/agent.hcl and peers/tda.rules-2step.hcl those of configs/detect.hcl, setting for
// setting and rule for rule, plus the workload's parser in the first processor.
func TestPeerConfigsFollowTheShippedDetection(t *testing.T) {
	root := agenttest.RepoRoot()
	for _, tt := range []struct{ peer, shipped, first string }{
		{"tda.rules.hcl", "agent.hcl", "rules"},
		{"tda.rules-shared.hcl", "agent.hcl", "rules"},
		{"tda.rules-2step.hcl", "detect.hcl", "override"},
	} {
		t.Run(tt.peer, func(t *testing.T) {
			peer := processors(t, filepath.Join("peers", tt.peer))
			shipped := processors(t, filepath.Join(root, "configs", tt.shipped))
			if len(peer) != len(shipped) {
				t.Fatalf("%d processors, configs/%s has %d", len(peer), tt.shipped, len(shipped))
			}
			for typ, want := range shipped {
				got, ok := peer[typ]
				if !ok {
					t.Fatalf("no %s processor", typ)
				}
				if !reflect.DeepEqual(got.attrs, want.attrs) {
					t.Errorf("%s settings %v, configs/%s: %v", typ, got.attrs, tt.shipped, want.attrs)
				}
				extra := 0
				for k, v := range got.blocks {
					if strings.HasPrefix(k, benchParser) && typ == tt.first {
						extra++
						continue
					}
					if want.blocks[k] != v {
						t.Errorf("%s block %s differs from configs/%s", typ, k, tt.shipped)
					}
				}
				if len(got.blocks)-extra != len(want.blocks) {
					t.Errorf("%s has %d blocks besides the workload's parser, configs/%s %d", typ,
						len(got.blocks)-extra, tt.shipped, len(want.blocks))
				}
			}
		})
	}
}

type block struct{ attrs, blocks map[string]string }

// processors reads a config's processor blocks by type: attributes as expression source,
// nested blocks (type and labels) as source with spacing normalised.
func processors(t *testing.T, path string) map[string]block {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("%s: %v", path, diags)
	}
	text := func(r hcl.Range) string {
		return strings.Join(strings.Fields(string(src[r.Start.Byte:r.End.Byte])), " ")
	}
	out := map[string]block{}
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		if b.Type != "processor" || len(b.Labels) != 2 {
			continue
		}
		pb := block{attrs: map[string]string{}, blocks: map[string]string{}}
		for name, a := range b.Body.Attributes {
			pb.attrs[name] = text(a.Expr.Range())
		}
		for _, nb := range b.Body.Blocks {
			pb.blocks[nb.Type+" "+strings.Join(nb.Labels, " ")] = text(nb.Range())
		}
		out[b.Labels[0]] = pb
	}
	return out
}
