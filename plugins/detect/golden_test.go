package detect_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
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

func loadExpected(t *testing.T) []expectedAlert {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "corpus", "expected-alerts.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []expectedAlert
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var e expectedAlert
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("expected-alerts.jsonl: %v", err)
		}
		out = append(out, e)
	}
	return out
}

// firstRecords returns the first alert record of every incident, in output order.
func firstRecords(alerts []sdk.Event) []sdk.Event {
	seen := map[string]bool{}
	var out []sdk.Event
	for _, a := range alerts {
		if seen[a.Alert.Fingerprint] {
			continue
		}
		seen[a.Alert.Fingerprint] = true
		out = append(out, a)
	}
	return out
}

func (e expectedAlert) matches(a sdk.Event) bool {
	return a.Alert.Rule == e.Rule && a.Alert.State == e.State && (e.Key == nil || a.Alert.Key == *e.Key) &&
		!a.Time.Before(e.From) && !a.Time.After(e.To)
}

// TestGoldenCorpus replays each corpus file alone through the shipped override and rules
// processors and checks the incidents against expected-alerts.jsonl: each expected alert is
// the first record of exactly one incident, and there is no other incident.
func TestGoldenCorpus(t *testing.T) {
	blocks := shippedBlocks(t)
	expected := loadExpected(t)
	files, _ := filepath.Glob(filepath.Join("testdata", "corpus", "*.log"))
	if len(files) == 0 {
		t.Fatal("no corpus files")
	}
	for _, path := range files {
		name := filepath.Base(path)
		for modeName, mode := range map[string]sdktest.Mode{"grpc": sdktest.GRPC, "direct": sdktest.Direct} {
			t.Run(name+"/"+modeName, func(t *testing.T) {
				c := newChain(t, blocks["override"], blocks["rules"], mode)
				alerts := alertsOf(c.replay(readLines(t, path), name, 200))
				firsts := firstRecords(alerts)
				var want []expectedAlert
				for _, e := range expected {
					if e.File == name {
						want = append(want, e)
					}
				}
				used := make([]bool, len(firsts))
				for _, e := range want {
					found := false
					for i, a := range firsts {
						if !used[i] && e.matches(a) {
							used[i], found = true, true
							break
						}
					}
					if !found {
						t.Errorf("missing alert %s %s in [%s, %s] (%s)", e.Rule, e.State,
							e.From.Format(time.RFC3339Nano), e.To.Format(time.RFC3339Nano), e.Note)
					}
				}
				for i, a := range firsts {
					if !used[i] {
						t.Errorf("unexpected alert: %s", a.AppendJSON(nil))
					}
				}
				// Every incident is resolved by the end of the replay, exactly once.
				resolved := map[string]int{}
				for _, a := range alerts {
					if a.Alert.State == sdk.StateResolved {
						resolved[a.Alert.Fingerprint]++
					}
				}
				for _, a := range firsts {
					if resolved[a.Alert.Fingerprint] != 1 {
						t.Errorf("incident %s %s resolved %d times", a.Alert.Rule, a.Alert.Fingerprint, resolved[a.Alert.Fingerprint])
					}
				}
				if testing.Verbose() {
					for _, a := range alerts {
						t.Logf("%s", a.AppendJSON(nil))
					}
				}
			})
		}
	}
}

// TestGoldenCorpusInOneReplay replays both corpus files one after the other through one pair of
// processors, as `tda replay` does with several files: the second file's lines lag an hour and
// a half behind the first's, and every expected incident is still found.
func TestGoldenCorpusInOneReplay(t *testing.T) {
	blocks := shippedBlocks(t)
	c := newChain(t, blocks["override"], blocks["rules"], sdktest.Direct)
	var out []sdk.Event
	for _, name := range []string{"flask-sample.log", "spring-sample.log"} {
		lines := readLines(t, filepath.Join("testdata", "corpus", name))
		for i := 0; i < len(lines); i += 500 {
			out = append(out, c.process(logEvents(lines[i:min(i+500, len(lines))], name), sdk.Watermark{})...)
		}
	}
	out = append(out, c.process(nil, sdk.Watermark{Final: true})...)
	firsts := firstRecords(alertsOf(out))
	expected := loadExpected(t)
	if len(firsts) != len(expected) {
		for _, a := range firsts {
			t.Logf("%s", a.AppendJSON(nil))
		}
		t.Fatalf("%d incidents, want %d", len(firsts), len(expected))
	}
	for _, e := range expected {
		found := false
		for _, a := range firsts {
			if e.matches(a) && a.Origin == e.File {
				found = true
			}
		}
		if !found {
			t.Errorf("missing %s %s from %s", e.Rule, e.State, e.File)
		}
	}
}
