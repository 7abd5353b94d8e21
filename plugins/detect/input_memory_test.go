package detect_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/detect"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

// The processors keep nothing of their input past Process (sdk.Processor): inside the
// agent, a source reuses a batch's memory once the agent hands it back. Each processor runs
// twice over the bundled example logs and the shared corpus, once on lines of their own and
// once on lines in one buffer that is overwritten after every batch; the outputs and the
// final state must be the same.
func TestProcessorsKeepNoInputMemory(t *testing.T) {
	lines := exampleAndCorpusLines(t)
	blocks := shippedBlocks(t)
	procs := []struct {
		name string
		comp sdk.Component
		src  string
	}{
		{"override", detect.OverrideComponent(), blocks["override"]},
		{"rules", detect.RulesComponent(), blocks["rules"]},
	}
	for _, p := range procs {
		t.Run(p.name, func(t *testing.T) {
			fresh := run(t, p.comp, p.src, lines, false)
			reused := run(t, p.comp, p.src, lines, true)
			if !bytes.Equal(fresh.out, reused.out) {
				t.Fatalf("outputs differ when the input's memory is reused after each batch (%d vs %d bytes)",
					len(fresh.out), len(reused.out))
			}
			if !bytes.Equal(fresh.state, reused.state) {
				t.Fatal("states differ when the input's memory is reused after each batch")
			}
			if len(fresh.out) < 100 {
				t.Fatalf("the corpus produced almost nothing (%d bytes of output)", len(fresh.out))
			}
		})
	}
}

type runResult struct{ out, state []byte }

func run(t *testing.T, comp sdk.Component, src string, lines [][]byte, reuse bool) runResult {
	t.Helper()
	p := sdktest.NewProcessor(t, comp, src, sdktest.WithMode(sdktest.Direct))
	wm := sdk.Watermark{Time: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	arena := make([]byte, 0, 64<<10)
	const batch = 64
	for start := 0; start < len(lines); start += batch {
		end := min(start+batch, len(lines))
		events := make([]sdk.Event, 0, end-start)
		arena = arena[:0]
		for _, l := range lines[start:end] {
			var line []byte
			if reuse {
				at := len(arena)
				arena = append(arena, l...)
				line = arena[at:len(arena):len(arena)]
			} else {
				line = bytes.Clone(l)
			}
			events = append(events, sdk.Event{Kind: sdk.KindLog, Origin: "examples/app.log", Line: line})
		}
		res := p.ProcessAt(events, wm)
		for i := range res {
			if err := enc.Encode(res[i]); err != nil {
				t.Fatal(err)
			}
		}
		if reuse {
			for i := range arena {
				arena[i] = 'X'
			}
			for i := range events {
				events[i] = sdk.Event{Line: []byte("overwritten")}
			}
		}
	}
	return runResult{out: out.Bytes(), state: p.Snapshot()}
}

// exampleAndCorpusLines reads the bundled example logs and, when present, the shared corpus.
func exampleAndCorpusLines(t *testing.T) [][]byte {
	t.Helper()
	var lines [][]byte
	for _, pattern := range []string{"../../examples/logs/*.log", "../../../shared/corpus/*.log"} {
		paths, _ := filepath.Glob(pattern)
		for _, path := range paths {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))...)
		}
	}
	if len(lines) == 0 {
		t.Fatal("no corpus lines")
	}
	return lines
}
