package detect_test

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/tda-dev/tda/plugins/detect"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

// defaultRulesBlock returns the body of the one processor of configs/agent.hcl: the shipped
// detection in one step (rules with record_overrides).
func defaultRulesBlock(t testing.TB) string {
	t.Helper()
	path := filepath.Join("..", "..", "configs", "agent.hcl")
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

// shippedBlocks returns the bodies of the processor blocks of configs/detect.hcl by type.
func shippedBlocks(t testing.TB) map[string]string {
	t.Helper()
	path := filepath.Join("..", "..", "configs", "detect.hcl")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("%s: %v", path, diags)
	}
	out := map[string]string{}
	for _, b := range f.Body.(*hclsyntax.Body).Blocks {
		if b.Type != "processor" || len(b.Labels) != 2 {
			continue
		}
		out[b.Labels[0]] = string(src[b.OpenBraceRange.End.Byte:b.CloseBraceRange.Start.Byte])
	}
	if out["override"] == "" || out["rules"] == "" {
		t.Fatalf("%s lacks the override or rules processor block", path)
	}
	return out
}

// chain is the detection pipeline under test: override, then rules.
type chain struct {
	override, rules *sdktest.Processor
}

func newChain(t testing.TB, overrideSrc, rulesSrc string, mode sdktest.Mode) *chain {
	t.Helper()
	return &chain{
		override: sdktest.NewProcessor(t, detect.OverrideComponent(), overrideSrc, sdktest.WithMode(mode),
			sdktest.WithInstance("processor.override.flags")),
		rules: sdktest.NewProcessor(t, detect.RulesComponent(), rulesSrc, sdktest.WithMode(mode),
			sdktest.WithInstance("processor.rules.anomalies")),
	}
}

func (c *chain) process(events []sdk.Event, wm sdk.Watermark) []sdk.Event {
	return c.rules.ProcessAt(c.override.ProcessAt(events, wm), wm)
}

// replay feeds lines in batches with a zero watermark, then the final watermark.
func (c *chain) replay(lines [][]byte, origin string, batch int) []sdk.Event {
	var out []sdk.Event
	for i := 0; i < len(lines); i += batch {
		end := min(i+batch, len(lines))
		out = append(out, c.process(logEvents(lines[i:end], origin), sdk.Watermark{})...)
	}
	return append(out, c.process(nil, sdk.Watermark{Final: true})...)
}

func logEvents(lines [][]byte, origin string) []sdk.Event {
	evs := make([]sdk.Event, len(lines))
	for i, l := range lines {
		evs[i] = sdk.Event{Kind: sdk.KindLog, Source: "file.test", Origin: origin, Line: l}
	}
	return evs
}

func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, bytes.Clone(sc.Bytes()))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

func alertsOf(events []sdk.Event) []sdk.Event {
	var out []sdk.Event
	for _, e := range events {
		if e.Kind == sdk.KindAlert {
			out = append(out, e)
		}
	}
	return out
}
