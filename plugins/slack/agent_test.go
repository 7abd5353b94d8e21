package slack_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/tda-dev/tda/agent/agenttest"
	"github.com/tda-dev/tda/sdk"
)

// The end-to-end tests run the real agent (bin/tda) with the real slack, email and webhook
// plugin binaries. Alerts come from "alertfeed", a source served by this test binary itself
// when it runs under the name tda-plugin-alertfeed: it follows a file of alerts in canonical
// JSON, one per line, stamps each with the time it emits it, and checkpoints its offset, so
// the scenarios control exactly which alerts enter the agent and when.

const feedPluginName = "tda-plugin-alertfeed"

func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == feedPluginName {
		sdk.Serve(sdk.PluginInfo{Name: "alertfeed", Version: "0.0.1"}, alertFeedComponent())
		os.Exit(0)
	}
	agenttest.Main(m)
}

func alertFeedComponent() sdk.Component {
	spec := &sdk.Spec{Fields: []sdk.Field{{Name: "path", Type: sdk.TypeString, Required: true}}}
	return sdk.SourceComponent("alertfeed", spec, func(c *sdk.Config, res sdk.Resources) (sdk.Source, error) {
		return &alertFeed{path: c.String("path"), log: res.Logger}, nil
	})
}

type alertFeed struct {
	path string
	log  interface{ Warn(string, ...any) }
}

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
		data, _ := io.ReadAll(file)
		file.Close()
		var events []sdk.Event
		consumed := 0
		for {
			i := bytes.IndexByte(data[consumed:], '\n')
			if i < 0 {
				break
			}
			line := data[consumed : consumed+i]
			consumed += i + 1
			var e sdk.Event
			if err := e.UnmarshalJSON(line); err != nil {
				f.log.Warn("skipping a line that is not an alert", "error", err)
				continue
			}
			e.Time = time.Now().UTC()
			events = append(events, e)
		}
		if consumed == 0 {
			continue
		}
		offset += int64(consumed)
		if err := out.Emit(ctx, events, sdk.Checkpoint{Key: "offset", Value: []byte(strconv.FormatInt(offset, 10))}); err != nil {
			return nil
		}
	}
}

// newAgent builds the agent and the notifier plugins, puts this test binary beside them as
// the alertfeed plugin, and prepares an agent with config (agenttest placeholders DIR and
// PLUGINS).
func newAgent(t testing.TB, config string, plugins ...string) *agenttest.Agent {
	t.Helper()
	bins := agenttest.Build(t, append([]string{"slack", "email", "webhook"}, plugins...)...)
	feedOnce.Do(func() {
		self, err := os.Executable()
		if err == nil {
			err = copyFile(self, filepath.Join(bins.PluginDir, feedPluginName))
		}
		feedErr = err
	})
	if feedErr != nil {
		t.Fatalf("install the alertfeed plugin: %v", feedErr)
	}
	a := agenttest.New(t, bins, config)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent log:\n%s", a.Logs())
		}
	})
	return a
}

var (
	feedOnce sync.Once
	feedErr  error
)

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o755)
}

// feed appends alerts to the file the alertfeed source follows.
type feed struct {
	path string
	mu   sync.Mutex
	n    int
}

func newFeed(a *agenttest.Agent) *feed { return &feed{path: a.Path("alerts.in")} }

// add appends n firing alerts with fingerprints fp-<seq> and returns their fingerprints.
func (f *feed) add(t testing.TB, n int) []string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	file, err := os.OpenFile(f.path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	var fps []string
	var buf []byte
	for i := 0; i < n; i++ {
		f.n++
		e := alert("auth_failures", fmt.Sprintf("203.0.113.%d", f.n))
		e.Alert.Fingerprint = fmt.Sprintf("fp-%04d", f.n)
		buf = e.AppendJSON(buf)
		buf = append(buf, '\n')
		fps = append(fps, e.Alert.Fingerprint)
	}
	if _, err := file.Write(buf); err != nil {
		t.Fatal(err)
	}
	return fps
}

// mailbox is a real SMTP server (go-smtp) on 127.0.0.1 that keeps what it receives.
type mailbox struct {
	Addr string
	mu   sync.Mutex
	msgs []mailMsg
}

type mailMsg struct {
	At   time.Time
	Data []byte
}

func newMailbox(t testing.TB) *mailbox {
	t.Helper()
	mb := &mailbox{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &mailSession{mb: mb}, nil }))
	srv.Domain = "mx.test"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mb.Addr = l.Addr().String()
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return mb
}

func (mb *mailbox) messages() []mailMsg {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return append([]mailMsg(nil), mb.msgs...)
}

type mailSession struct{ mb *mailbox }

func (s *mailSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *mailSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *mailSession) Reset()                               {}
func (s *mailSession) Logout() error                        { return nil }
func (s *mailSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.mb.mu.Lock()
	s.mb.msgs = append(s.mb.msgs, mailMsg{At: time.Now(), Data: data})
	s.mb.mu.Unlock()
	return nil
}
