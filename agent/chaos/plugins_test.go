package chaos

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/agenttest"
	"github.com/tda-dev/tda/sdk"
)

// alertFeedComponent is a source that follows a file of alerts in canonical JSON, one per
// line, and emits them at most feedBatch at a time with its offset as checkpoint: the
// scenarios decide exactly which alerts enter the agent, and a restarted agent resumes at the
// last committed offset, as the bundled sources do.
func alertFeedComponent() sdk.Component {
	spec := &sdk.Spec{Fields: []sdk.Field{{Name: "path", Type: sdk.TypeString, Required: true}}}
	return sdk.SourceComponent("alertfeed", spec, func(c *sdk.Config, res sdk.Resources) (sdk.Source, error) {
		return &alertFeed{path: c.String("path")}, nil
	})
}

const feedBatch = 500

type alertFeed struct{ path string }

func (f *alertFeed) Run(ctx context.Context, out sdk.Output) error {
	var offset int64
	if v, ok := out.Checkpoints()["offset"]; ok {
		offset, _ = strconv.ParseInt(string(v), 10, 64)
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		file, err := os.Open(f.path)
		if err != nil {
			continue
		}
		_, _ = file.Seek(offset, io.SeekStart)
		r := bufio.NewReaderSize(file, 1<<20)
		for {
			var events []sdk.Event
			consumed := 0
			for len(events) < feedBatch {
				line, err := r.ReadBytes('\n')
				if err != nil {
					break // an incomplete last line waits for the rest
				}
				consumed += len(line)
				var e sdk.Event
				if err := e.UnmarshalJSON(bytes.TrimSpace(line)); err != nil {
					continue
				}
				e.Time = time.Now().UTC()
				events = append(events, e)
			}
			if consumed == 0 {
				break
			}
			offset += int64(consumed)
			if err := out.Emit(ctx, events, sdk.Checkpoint{Key: "offset", Value: []byte(strconv.FormatInt(offset, 10))}); err != nil {
				file.Close()
				return nil
			}
		}
		file.Close()
	}
}

// poisonComponent is a processor that passes events through and panics on a line holding
// "POISON": a plugin bug triggered by one input line.
func poisonComponent() sdk.Component {
	return sdk.ProcessorComponent("poison", &sdk.Spec{}, func(*sdk.Config, sdk.Resources) (sdk.Processor, error) {
		return poison{}, nil
	})
}

type poison struct{}

func (poison) Process(_ context.Context, events []sdk.Event, _ sdk.Watermark) ([]sdk.Event, error) {
	for i := range events {
		if bytes.Contains(events[i].Line, []byte("POISON")) {
			panic(fmt.Sprintf("poison line %q", events[i].Line))
		}
	}
	return events, nil
}

var (
	feedOnce sync.Once
	feedErr  error
)

// newAgent builds the agent and the named bundled plugins, installs this test binary as the
// chaosfeed plugin beside them, and prepares an agent with config (agenttest placeholders DIR
// and PLUGINS).
func newAgent(t *testing.T, config string, plugins ...string) *agenttest.Agent {
	t.Helper()
	bins := agenttest.Build(t, plugins...)
	feedOnce.Do(func() {
		self, err := os.Executable()
		if err == nil {
			err = copyFile(self, filepath.Join(bins.PluginDir, feedPluginName))
		}
		feedErr = err
	})
	if feedErr != nil {
		t.Fatalf("install the chaosfeed plugin: %v", feedErr)
	}
	a := agenttest.New(t, bins, config)
	t.Cleanup(func() {
		if t.Failed() {
			logs := a.Logs()
			if len(logs) > 20000 {
				logs = "...\n" + logs[len(logs)-20000:]
			}
			t.Logf("agent log:\n%s", logs)
		}
	})
	return a
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// alertRecord is the canonical JSON line of the i-th alert of a run.
func alertRecord(run string, i int) []byte {
	now := time.Now().UTC()
	e := sdk.Event{Time: now, Kind: sdk.KindAlert, Source: "chaosfeed.feed", Origin: "app.log",
		Alert: &sdk.Alert{Rule: "bulk_deletion", Severity: sdk.SeverityHigh, State: sdk.StateFiring,
			Key: fmt.Sprintf("user%d", i), Count: 11, Threshold: 10, Window: time.Minute, FirstSeen: now,
			LastSeen: now, Excerpt: []string{fmt.Sprintf("user_deleted id=%d", i)},
			Fingerprint: fmt.Sprintf("%s-%06d", run, i)}}
	return append(e.AppendJSON(nil), '\n')
}

// appendAlerts appends alerts [from, to) of run to the feed file.
func appendAlerts(t *testing.T, path, run string, from, to int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := from; i < to; i++ {
		_, _ = w.Write(alertRecord(run, i))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
