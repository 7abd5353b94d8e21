package control

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/api"
)

// TestConnLimitAdmits drives the caps with connections of named clients: the oldest waiting
// connection under the cap that is reached is closed, serving ones never are, and a new
// connection is refused only when every one under the cap is serving.
func TestConnLimitAdmits(t *testing.T) {
	type step struct {
		op     string // "open CLIENT", "serve N", "end N", "close N"
		closed []int  // connections (by open order) closed by this step
		refuse bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"under the caps", []step{{op: "open a"}, {op: "open b"}, {op: "open a"}}},
		{"per client: the client's oldest waiting goes", []step{{op: "open a"}, {op: "open b"}, {op: "open a"}, {op: "open a", closed: []int{0}}}},
		{"in all: the oldest waiting of anyone goes", []step{{op: "open a"}, {op: "open b"}, {op: "open c"}, {op: "open d"}, {op: "open e", closed: []int{0}}}},
		{"serving connections stay", []step{{op: "open a"}, {op: "serve 0"}, {op: "open a"}, {op: "open a", closed: []int{1}}}},
		{"all serving: the new one is refused", []step{{op: "open a"}, {op: "serve 0"}, {op: "open a"}, {op: "serve 1"}, {op: "open a", refuse: true}}},
		{"served and idle again: oldest by last use", []step{{op: "open a"}, {op: "open a"}, {op: "serve 0"}, {op: "end 0"}, {op: "open a", closed: []int{1}}}},
		{"closed frees its place", []step{{op: "open a"}, {op: "open a"}, {op: "close 0"}, {op: "open a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newConnLimit(nil, 4, 2, nil)
			var conns []*limitedConn
			var peers []net.Conn
			for i, st := range tt.steps {
				verb, arg, _ := strings.Cut(st.op, " ")
				switch verb {
				case "open":
					c, peer := net.Pipe()
					defer peer.Close()
					lc := &limitedConn{Conn: c, l: l, client: arg}
					victim, ok := l.admit(lc)
					if victim != nil {
						victim.Close()
					}
					if ok == st.refuse {
						t.Fatalf("step %d (%s): admitted %v", i, st.op, ok)
					}
					conns, peers = append(conns, lc), append(peers, peer)
				default:
					n, _ := strconv.Atoi(arg)
					map[string]func(){"serve": conns[n].begin, "end": conns[n].end, "close": func() { conns[n].Close() }}[verb]()
				}
				for _, want := range st.closed {
					if conns[want].elem != nil {
						t.Fatalf("step %d (%s): connection %d is still open", i, st.op, want)
					}
				}
			}
			if held := l.held(); held > 4 {
				t.Fatalf("%d held", held)
			}
		})
	}
}

// slowClientsEnv makes the test binary the slow clients of TestSlowConnectionsLeaveTheSocketAnswering.
const slowClientsEnv = "TDA_TEST_SLOW_CLIENTS"

// TestSlowClientsHelper is not a test: run as a child with slowClientsEnv=ADDR,N it opens N
// connections to ADDR that each send half a request header and then nothing, says "ready"
// and holds them until its stdin closes.
func TestSlowClientsHelper(t *testing.T) {
	spec := os.Getenv(slowClientsEnv)
	if spec == "" {
		t.Skip("run by TestSlowConnectionsLeaveTheSocketAnswering")
	}
	addr, nStr, _ := strings.Cut(spec, ",")
	n, _ := strconv.Atoi(nStr)
	var conns []net.Conn
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			continue // the backlog was full for a moment: the pressure is what matters
		}
		c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "))
		conns = append(conns, c)
	}
	fmt.Printf("ready %d\n", len(conns))
	io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
}

// TestSlowConnectionsLeaveTheSocketAnswering: with the agent's descriptors limited to 300,
// 2,000 connections that never finish their header (from another process) cannot use them
// up: the control socket and a fresh TCP /healthz still answer, and the agent holds far
// fewer descriptors than its limit.
func TestSlowConnectionsLeaveTheSocketAnswering(t *testing.T) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	if fds := openFDs(t); fds > 100 {
		t.Skipf("the test process already holds %d descriptors", fds)
	}
	const limit = 300
	tight := syscall.Rlimit{Cur: limit, Max: old.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &tight); err != nil {
		t.Skipf("cannot lower the descriptor limit: %v", err)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })

	sock := filepath.Join(t.TempDir(), "tda.sock")
	srv, err := Serve(ServeOptions{Socket: sock, HTTP: &HTTPSettings{Listen: "127.0.0.1:0",
		Tokens: []api.Token{{Name: "alice", Role: api.RoleOperator, Secret: "alice-0123456789abcdef"}}},
		MaxConns: 128, MaxConnsPerClient: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())

	child := exec.Command(os.Args[0], "-test.run=^TestSlowClientsHelper$", "-test.v")
	child.Env = append(os.Environ(), slowClientsEnv+"="+srv.Addr+",2000")
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); child.Wait() }()
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "ready") {
				ready <- sc.Text()
			}
		}
		close(ready)
	}()
	opened := 0
	select {
	case line := <-ready:
		opened, _ = strconv.Atoi(strings.TrimPrefix(line, "ready "))
		t.Logf("slow clients: %d connections opened", opened)
	case <-time.After(60 * time.Second):
		t.Fatal("the slow clients did not connect in 60 s")
	}

	onSocket := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	overTCP := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for name, get := range map[string]func() (*http.Response, error){
		"socket /healthz":    func() (*http.Response, error) { return onSocket.Get("http://tda/healthz") },
		"socket /metrics":    func() (*http.Response, error) { return onSocket.Get("http://tda/metrics") },
		"fresh TCP /healthz": func() (*http.Response, error) { return overTCP.Get("http://" + srv.Addr + "/healthz") },
	} {
		resp, err := get()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", name, resp.StatusCode)
		}
	}
	resp, err := onSocket.Get("http://tda/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var closed, held string
	for _, line := range strings.Split(string(metrics), "\n") {
		if v, ok := strings.CutPrefix(line, `tda_http_connections_closed_at_cap_total{listener="http"} `); ok {
			closed = v
		}
		if v, ok := strings.CutPrefix(line, `tda_http_connections{listener="http"} `); ok {
			held = v
		}
	}
	if n, _ := strconv.Atoi(closed); n < opened-64 {
		t.Errorf("closed at the cap: %q, want at least %d", closed, opened-64)
	}
	if n, _ := strconv.Atoi(held); n > 64 {
		t.Errorf("connections held: %q", held)
	}
	t.Logf("connections closed at the cap: %s; held: %s", closed, held)
	fds := openFDs(t)
	t.Logf("descriptors held by the agent's process under 2,000 slow connections: %d (limit %d)", fds, limit)
	if fds > 128+64 {
		t.Errorf("the agent holds %d descriptors", fds)
	}
}

func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("no /proc: %v", err)
	}
	if err != nil {
		t.Fatalf("count descriptors: %v", err)
	}
	return len(entries)
}

// TestConnContextSeesThroughTLS: under TLS the server hands ConnContext the *tls.Conn; the
// limited connection under it is still found, so a request served over TLS is marked serving
// and never closed at a cap while it runs.
func TestConnContextSeesThroughTLS(t *testing.T) {
	l := newConnLimit(nil, 2, 2, nil)
	c, peer := net.Pipe()
	defer peer.Close()
	lc := &limitedConn{Conn: c, l: l, client: "a"}
	if _, ok := l.admit(lc); !ok {
		t.Fatal("not admitted")
	}
	for name, conn := range map[string]net.Conn{"plain": lc, "tls": tls.Server(lc, &tls.Config{})} {
		ctx := connContext(context.Background(), conn)
		got, _ := ctx.Value(connKey{}).(*limitedConn)
		if got != lc {
			t.Fatalf("%s: the limited connection is not found", name)
		}
	}
	served := make(chan struct{})
	release := make(chan struct{})
	h := track(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		close(served)
		<-release
	}))
	req := httptestRequest(connContext(context.Background(), tls.Server(lc, &tls.Config{})))
	go h.ServeHTTP(nil, req)
	<-served
	other := &limitedConn{Conn: c, l: l, client: "a"}
	l.admit(other)
	if victim, ok := l.admit(&limitedConn{Conn: c, l: l, client: "a"}); !ok || victim != other {
		t.Fatalf("the cap chose %v (admitted %v), want the waiting connection", victim, ok)
	}
	close(release)
}

func httptestRequest(ctx context.Context) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://tda/healthz", nil)
	return req
}
