package cli_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/agenttest"
	"github.com/tda-dev/tda/agent/cli"
	"github.com/tda-dev/tda/sdk"
)

type expectedAlert struct {
	Rule  string    `json:"rule"`
	Key   *string   `json:"key"`
	State string    `json:"state"`
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	File  string    `json:"file"`
	Note  string    `json:"note"`
}

// TestReplayGolden replays each example log alone through the default configuration and
// compares the first record of every incident with testdata/replay/expected-alerts.jsonl:
// same rule, key (where given) and state, event time within [from, to], and nothing else.
func TestReplayGolden(t *testing.T) {
	bins := agenttest.Build(t, "file", "detect", "jsonl", "console")
	root := agenttest.RepoRoot()
	f, err := os.Open("testdata/replay/expected-alerts.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string][]expectedAlert{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e expectedAlert
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		want[e.File] = append(want[e.File], e)
	}
	for _, file := range []string{"flask-sample.log", "spring-sample.log"} {
		t.Run(file, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := cli.Main([]string{"replay", "-config", filepath.Join(root, "configs", "agent.hcl"),
				"-plugin-dir", bins.PluginDir, filepath.Join(root, "examples", "logs", file)}, &stdout, &stderr)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			var firsts []sdk.Event
			seen := map[string]bool{}
			for _, line := range bytes.Split(bytes.TrimSpace(stdout.Bytes()), []byte("\n")) {
				var e sdk.Event
				if err := json.Unmarshal(line, &e); err != nil {
					t.Fatalf("output line %q: %v", line, err)
				}
				if e.Kind != sdk.KindAlert {
					t.Fatalf("replay printed a %s event", e.Kind)
				}
				if !seen[e.Alert.Fingerprint] {
					seen[e.Alert.Fingerprint] = true
					firsts = append(firsts, e)
				}
			}
			exp := want[file]
			if len(firsts) != len(exp) {
				for _, e := range firsts {
					t.Logf("got %s %s %s at %s", e.Alert.Rule, e.Alert.Key, e.Alert.State, e.Time)
				}
				t.Fatalf("%d incidents, want %d", len(firsts), len(exp))
			}
			for _, x := range exp {
				found := false
				for _, e := range firsts {
					a := e.Alert
					if a.Rule == x.Rule && a.State == x.State && (x.Key == nil || a.Key == *x.Key) &&
						!e.Time.Before(x.From) && !e.Time.After(x.To) {
						found = true
					}
				}
				if !found {
					t.Errorf("missing %s %s (%s)", x.Rule, x.State, x.Note)
				}
			}
		})
	}
}
