package detect_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/tda-dev/tda/plugins/detect"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

// peerRulesBlock returns the body of the rules processor of the side-by-side benchmark's tda
// config (agent/bench/peers/tda.rules.hcl: the shipped detection plus the workload's parser).
func peerRulesBlock(t testing.TB) string {
	t.Helper()
	path := filepath.Join("..", "..", "agent", "bench", "peers", "tda.rules.hcl")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("%s: %v", path, diags)
	}
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		if b.Type == "processor" && len(b.Labels) == 2 && b.Labels[0] == "rules" {
			return string(src[b.OpenBraceRange.End.Byte:b.CloseBraceRange.Start.Byte])
		}
	}
	t.Fatalf("%s has no rules processor", path)
	return ""
}

// BenchmarkWorkload runs the side-by-side benchmark's rules processor in-process over 5,000
// lines of the harness's workload (testdata/bench/mixed.log: Werkzeug access lines and
// Spring Boot lines, about 1% of them events), in batches of 1,000, and reports the cost per
// line: the detection's share of the agent's CPU per line in the side-by-side run.
func BenchmarkWorkload(b *testing.B) {
	lines := readLines(b, filepath.Join("testdata", "bench", "mixed.log"))
	p := sdktest.NewProcessor(b, detect.RulesComponent(), peerRulesBlock(b), sdktest.WithMode(sdktest.Direct))
	var batches [][]sdk.Event
	for j := 0; j < len(lines); j += 1000 {
		batches = append(batches, logEvents(lines[j:min(j+1000, len(lines))], "/var/log/app/mixed.log"))
	}
	b.ReportAllocs()
	alerts := 0
	for b.Loop() {
		for _, batch := range batches {
			for i := range batch {
				batch[i].Fields, batch[i].Time = nil, time.Time{}
			}
			alerts += len(p.ProcessAt(batch, sdk.Watermark{}))
		}
	}
	if alerts == 0 {
		b.Fatal("the workload raised no alert: the benchmark does not exercise the rules")
	}
	b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(len(lines))/float64(b.N), "ns/line")
}
