package slack_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

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
	os.Exit(m.Run())
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

// agentBuild holds the binaries, built once per test run.
var agentBuild struct {
	once      sync.Once
	err       error
	tda       string
	pluginDir string
}

func buildAgent(t testing.TB) (tda, pluginDir string) {
	t.Helper()
	agentBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "tda-e2e-")
		if err != nil {
			agentBuild.err = err
			return
		}
		gomod, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			agentBuild.err = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(gomod)))
		agentBuild.tda = filepath.Join(dir, "tda")
		agentBuild.pluginDir = filepath.Join(dir, "plugins")
		for _, args := range [][]string{
			{"build", "-o", agentBuild.tda, "./cmd/tda"},
			{"build", "-o", agentBuild.pluginDir + "/", "./plugins/slack/cmd/tda-plugin-slack",
				"./plugins/email/cmd/tda-plugin-email", "./plugins/webhook/cmd/tda-plugin-webhook"},
		} {
			cmd := exec.Command("go", args...)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				agentBuild.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
				return
			}
		}
		self, err := os.Executable()
		if err == nil {
			err = copyFile(self, filepath.Join(agentBuild.pluginDir, feedPluginName))
		}
		agentBuild.err = err
	})
	if agentBuild.err != nil {
		t.Fatalf("building the agent: %v", agentBuild.err)
	}
	return agentBuild.tda, agentBuild.pluginDir
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o755)
}

// agent is one tda process; a test may start it several times on the same data directory.
type agent struct {
	t      testing.TB
	tda    string
	dir    string
	config string

	cmd    *exec.Cmd
	done   chan struct{}
	logMu  sync.Mutex
	logBuf bytes.Buffer
}

// newAgent writes the config (with DATA, PLUGINS and DIR replaced) into a fresh directory.
func newAgent(t testing.TB, config string) *agent {
	t.Helper()
	tda, plugins := buildAgent(t)
	dir := t.TempDir()
	config = strings.NewReplacer("DATA", filepath.Join(dir, "data"), "PLUGINS", plugins, "DIR", dir).Replace(config)
	path := filepath.Join(dir, "agent.hcl")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	a := &agent{t: t, tda: tda, dir: dir, config: path}
	t.Cleanup(func() {
		a.kill()
		if t.Failed() {
			t.Logf("agent log:\n%s", a.log())
		}
	})
	return a
}

func (a *agent) start() {
	a.t.Helper()
	cmd := exec.Command(a.tda, "run", "-config", a.config)
	cmd.Env = append(os.Environ(), "TDA_PLUGIN_LOG_LEVEL=debug")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		a.t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		a.t.Fatalf("start tda: %v", err)
	}
	a.cmd, a.done = cmd, make(chan struct{})
	go func() {
		defer close(a.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			a.logMu.Lock()
			a.logBuf.Write(sc.Bytes())
			a.logBuf.WriteByte('\n')
			a.logMu.Unlock()
		}
		_ = cmd.Wait()
	}()
}

// kill9 kills the agent with SIGKILL, leaving its plugins to notice and exit.
func (a *agent) kill9() {
	if a.cmd == nil {
		return
	}
	_ = a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.done
	a.cmd = nil
	time.Sleep(1500 * time.Millisecond) // plugins exit within a second of losing their parent
}

// stop interrupts the agent and waits for it to drain and exit.
func (a *agent) stop() {
	a.t.Helper()
	if a.cmd == nil {
		return
	}
	_ = a.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-a.done:
	case <-time.After(30 * time.Second):
		a.t.Errorf("tda did not stop within 30s of SIGINT")
		a.kill9()
	}
	a.cmd = nil
}

func (a *agent) kill() {
	if a.cmd != nil {
		a.kill9()
	}
}

func (a *agent) log() string {
	a.logMu.Lock()
	defer a.logMu.Unlock()
	return a.logBuf.String()
}

// feed appends alerts to the file the alertfeed source follows.
type feed struct {
	path string
	mu   sync.Mutex
	n    int
}

func newFeed(a *agent) *feed { return &feed{path: filepath.Join(a.dir, "alerts.in")} }

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

// eventually polls cond until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
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
