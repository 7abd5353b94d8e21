package host_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
)

// The test binary doubles as a plugin (TDA_TEST_SERVE) and as a stranger that dials a
// plugin's socket (TDA_TEST_DIAL).
func TestMain(m *testing.M) {
	if os.Getenv("TDA_TEST_SERVE") == "1" {
		sdk.Serve(sdk.PluginInfo{Name: "peertest", Version: "0"}, panickyComponents(&panicky{})...)
		return
	}
	if path := os.Getenv("TDA_TEST_DIAL"); path != "" {
		os.Exit(dialAndRead(path))
	}
	os.Exit(m.Run())
}

// dialAndRead connects to a Unix socket, sends the start of an HTTP/2 connection and reports
// whether the other end closed it without answering (0) or answered or kept it open (1); 2
// when it cannot connect at all.
func dialAndRead(path string) int {
	c, err := net.Dial("unix", path)
	if err != nil {
		return 2
	}
	defer c.Close()
	_, _ = c.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"))
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 64))
	var ne net.Error
	if n == 0 && err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
		// Closed (EOF, or reset: it closed without reading what was sent) unanswered.
		return 0
	}
	return 1
}

// TestLocalChannelAdmitsOnlyTheAgent: a plugin the host started answers the host over its
// Unix socket, and closes a connection from any other process of the same user before a
// byte of the protocol (here: this test's own re-run, dialing the plugin's socket).
func TestLocalChannelAdmitsOnlyTheAgent(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir) // go-plugin makes the plugin's socket directory under the host's
	p, err := host.Launch(host.LaunchConfig{Path: os.Args[0], Env: []string{"TDA_TEST_SERVE=1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Ping(ctx); err != nil {
		t.Fatalf("the host that started the plugin is refused: %v", err)
	}
	socks, _ := filepath.Glob(filepath.Join(dir, "plugin-dir*", "plugin*"))
	if len(socks) != 1 {
		t.Fatalf("want the plugin's one socket in %s, found %v", dir, socks)
	}
	stranger := exec.Command(os.Args[0])
	stranger.Env = append(os.Environ(), "TDA_TEST_DIAL="+socks[0])
	err = stranger.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	switch code {
	case 0: // closed unanswered: refused
	case 1:
		t.Fatal("the plugin answered a process that did not start it")
	default:
		t.Fatalf("the stranger could not connect to %s (exit %d)", socks[0], code)
	}
	// The plugin still serves its agent after refusing the stranger.
	if err := p.Ping(ctx); err != nil {
		t.Fatalf("after the refusal: %v", err)
	}
}
