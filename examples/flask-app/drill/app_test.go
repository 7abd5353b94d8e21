package drill

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/agenttest"
)

// app is the example Flask app running under gunicorn.
type app struct {
	url   string
	admin string // the admin API's bearer token
	cmd   *exec.Cmd
	done  chan struct{}
}

// python returns the interpreter with Debian's Flask packages.
func python(t *testing.T) string {
	py := os.Getenv("TDA_PYTHON")
	if py == "" {
		py = "/usr/bin/python3"
	}
	out, err := exec.Command(py, "-c", "import flask, flask_sqlalchemy, flask_migrate, flask_login, psycopg2").CombinedOutput()
	if err != nil {
		unavailable(t, fmt.Sprintf("%s lacks Flask or psycopg2 (apt-get install python3-flask python3-flask-sqlalchemy python3-flask-migrate python3-flask-login python3-psycopg2): %s", py, out))
	}
	return py
}

// startApp migrates the database with the app's Alembic migrations (flask db upgrade) and
// runs the app under gunicorn on 127.0.0.1, logging to logFile.
func startApp(t *testing.T, databaseURL, logFile string) *app {
	t.Helper()
	py := python(t)
	gunicorn, err := exec.LookPath("gunicorn")
	if err != nil {
		unavailable(t, "gunicorn is not installed (apt-get install gunicorn)")
	}
	dir := filepath.Join(agenttest.RepoRoot(), "examples", "flask-app")
	a := &app{admin: "drill-admin-token-" + strconv.Itoa(os.Getpid()), done: make(chan struct{})}
	env := append(os.Environ(), "DATABASE_URL="+databaseURL, "SECRET_KEY=drill-secret", "ADMIN_TOKEN="+a.admin,
		"APP_LOG="+logFile, "PASSWORD_HASH_METHOD=pbkdf2:sha256:1000", "PYTHONDONTWRITEBYTECODE=1")
	migrate := exec.Command(py, "-m", "flask", "--app", "app", "db", "upgrade")
	migrate.Dir, migrate.Env = dir, env
	if out, err := migrate.CombinedOutput(); err != nil {
		t.Fatalf("flask db upgrade: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	a.url = "http://" + addr
	a.cmd = exec.Command(py, gunicorn, "--workers", "2", "--bind", addr, "--access-logfile", "-", "app:app")
	a.cmd.Dir, a.cmd.Env = dir, env
	var logs bytes.Buffer
	a.cmd.Stdout, a.cmd.Stderr = io.Discard, &logs
	// gunicorn stops with the test binary, even when it is killed.
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.cmd.Wait(); close(a.done) }()
	t.Cleanup(func() {
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.done:
		case <-time.After(20 * time.Second):
			_ = a.cmd.Process.Kill()
			<-a.done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(a.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return a
			}
		}
		select {
		case <-a.done:
			t.Fatalf("gunicorn exited:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the app did not answer within 30s:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// client is one person using the app, with their session.
type client struct {
	app  *app
	http *http.Client
}

func (a *app) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{app: a, http: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

// post sends a JSON body and returns the status and the decoded answer.
func (c *client) post(path string, body any, header ...string) (int, map[string]any, error) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, c.app.url+path, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &out)
	return resp.StatusCode, out, nil
}

func (c *client) must(t *testing.T, want int, path string, body any, header ...string) map[string]any {
	t.Helper()
	code, out, err := c.post(path, body, header...)
	if err != nil || code != want {
		t.Fatalf("POST %s: %d %v %v, want %d", path, code, out, err, want)
	}
	return out
}

// login reports whether email can log in with password through the app.
func (a *app) login(email, password string) bool {
	code, _, err := a.client().post("/api/login", map[string]string{"email": email, "password": password})
	return err == nil && code == 200
}

func email(id int) string { return fmt.Sprintf("user%d@drill.test", id) }

func unavailable(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv("TDA_REQUIRE_INTEGRATION") == "1" || os.Getenv("TDA_DRILL") == "1" {
		t.Fatalf("the drill needs it: %s", reason)
	}
	t.Skip(reason)
}
