package realapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/logs with the lines of this run")

// setup is one way a Flask app logs.
type setup struct {
	Name string
	// Gunicorn serves the app with gunicorn, else `flask run` (Werkzeug's dev server).
	Gunicorn bool
	// AccessFormat is gunicorn's access_log_format ("" for its default).
	AccessFormat string
	// AlembicFormat replaces the format of alembic.ini's generic formatter, as teams do to
	// match the app's logs ("" keeps Flask-Migrate's template).
	AlembicFormat string
}

var setups = []setup{
	{Name: "werkzeug"},
	{Name: "werkzeug-tty"},
	{Name: "basicconfig", AlembicFormat: "%(levelname)s:%(name)s:%(message)s"},
	{Name: "dictconfig", AlembicFormat: "[%(asctime)s] %(levelname)s in %(module)s: %(message)s"},
	{Name: "dictconfig-colour", AlembicFormat: "[%(asctime)s] %(levelname)s in %(module)s: %(message)s"},
	{Name: "named", AlembicFormat: "%(asctime)s - %(name)s - %(levelname)s - %(message)s"},
	{Name: "gunicorn", Gunicorn: true},
	{Name: "gunicorn-xff", Gunicorn: true,
		AccessFormat: `%({x-forwarded-for}i)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"`},
	{Name: "gunicorn-json", Gunicorn: true,
		AccessFormat: `{"remote_addr": "%(h)s", "time": "%(t)s", "status_line": "%(r)s", "status": "%(s)s", "bytes": "%(b)s", "duration_us": %(D)s, "user_agent": "%(a)s"}`},
}

// pythonModules are what the app needs: Debian's python3-flask, python3-flask-sqlalchemy,
// python3-flask-migrate, python3-flask-login and gunicorn.
const pythonModules = "flask, flask_sqlalchemy, flask_migrate, flask_login, gunicorn"

// findPython returns a Python 3 that imports the app's modules: $TDA_PYTHON, Debian's
// /usr/bin/python3, then python3 on the PATH. Without one the test is skipped, or fails under
// TDA_REQUIRE_INTEGRATION=1.
func findPython(t *testing.T) string {
	t.Helper()
	for _, c := range []string{os.Getenv("TDA_PYTHON"), "/usr/bin/python3", "python3"} {
		if c == "" {
			continue
		}
		path, err := exec.LookPath(c)
		if err != nil {
			continue
		}
		if exec.Command(path, "-c", "import "+pythonModules).Run() == nil {
			return path
		}
	}
	reason := "no python3 imports " + pythonModules + " (apt-get install python3-flask python3-flask-sqlalchemy " +
		"python3-flask-migrate python3-flask-login gunicorn, or set TDA_PYTHON)"
	if os.Getenv("TDA_REQUIRE_INTEGRATION") == "1" {
		t.Fatalf("%s (TDA_REQUIRE_INTEGRATION=1)", reason)
	}
	t.Skip(reason)
	return ""
}

// TestRealApp runs the app in every logging setup, drives it, and judges every line it logged.
// With -update the lines become testdata/logs.
func TestRealApp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Flask app per logging setup")
	}
	py := findPython(t)
	template := migrationsTemplate(t, py)
	var mu sync.Mutex
	logs := map[string][][]byte{}
	// The setups run side by side (as many as -parallel allows); each has its own directory,
	// database and port.
	t.Run("setup", func(t *testing.T) {
		for _, s := range setups {
			t.Run(s.Name, func(t *testing.T) {
				t.Parallel()
				lines := runSetup(t, py, template, s)
				mu.Lock()
				defer mu.Unlock()
				logs[s.Name] = lines
			})
		}
	})
	if t.Failed() {
		return
	}
	checkSetups(t, logs)
	dir := filepath.Join("testdata", "logs")
	if !*update {
		// The captured lines stay those of the app as it is: the same kinds of line, as many.
		for _, s := range setups {
			data, err := os.ReadFile(filepath.Join(dir, s.Name+".log"))
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			was := caseCounts(bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")))
			if now := caseCounts(logs[s.Name]); !reflect.DeepEqual(now, was) {
				t.Errorf("setup %s logs other kinds of line than testdata/logs/%s.log holds (run with -update):\n now %v\n was %v",
					s.Name, s.Name, now, was)
			}
		}
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, lines := range logs {
		data := append(bytes.Join(lines, []byte("\n")), '\n')
		if err := os.WriteFile(filepath.Join(dir, name+".log"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// caseCounts counts the lines of each case that has a truth (the other lines vary from run to
// run: the readiness polls).
func caseCounts(lines [][]byte) map[string]int {
	out := map[string]int{}
	for _, l := range lines {
		if tr, ok := truthOf(l); ok {
			out[tr.Case]++
		}
	}
	return out
}

// migrationsTemplate runs `flask db init` once and adds the app's two revisions: the
// migrations directory every setup copies.
func migrationsTemplate(t *testing.T, py string) string {
	dir := t.TempDir()
	copyFile(t, filepath.Join("testdata", "app.py"), filepath.Join(dir, "app.py"))
	run(t, dir, py, nil, io.Discard, "-m", "flask", "--app", "app", "db", "init")
	revs, _ := filepath.Glob(filepath.Join("testdata", "migrations", "*.py"))
	if len(revs) == 0 {
		t.Fatal("no migrations in testdata/migrations")
	}
	for _, r := range revs {
		copyFile(t, r, filepath.Join(dir, "migrations", "versions", filepath.Base(r)))
	}
	return filepath.Join(dir, "migrations")
}

// runSetup migrates, seeds and serves the app in one setup, drives it with HTTP requests and
// returns the lines it logged, in order.
func runSetup(t *testing.T, py, migrations string, s setup) [][]byte {
	t.Helper()
	dir := t.TempDir()
	copyFile(t, filepath.Join("testdata", "app.py"), filepath.Join(dir, "app.py"))
	copyDir(t, migrations, filepath.Join(dir, "migrations"))
	if s.AlembicFormat != "" {
		ini := filepath.Join(dir, "migrations", "alembic.ini")
		b, err := os.ReadFile(ini)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range strings.Split(string(b), "\n") {
			switch {
			case strings.HasPrefix(l, "format = "):
				l = "format = " + s.AlembicFormat
			case strings.HasPrefix(l, "datefmt = "):
				continue // the formats carry Python's default asctime
			}
			out = append(out, l)
		}
		if err := os.WriteFile(ini, []byte(strings.Join(out, "\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	logPath := filepath.Join(dir, "app.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	env := []string{"TDA_LOGGING=" + s.Name, "PYTHONUNBUFFERED=1"}
	run(t, dir, py, env, logFile, "-m", "flask", "--app", "app", "db", "upgrade")
	run(t, dir, py, env, logFile, "-m", "flask", "--app", "app", "seed", "5")

	port := freePort(t)
	args := []string{"-m", "flask", "--app", "app", "run", "--host", "127.0.0.1", "--port", strconv.Itoa(port)}
	if s.Gunicorn {
		args = []string{"-m", "gunicorn", "--bind", "127.0.0.1:" + strconv.Itoa(port), "--workers", "1",
			"--access-logfile", "-"}
		if s.AccessFormat != "" {
			args = append(args, "--access-logformat", s.AccessFormat)
		}
		args = append(args, "app:app")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, args...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, append(os.Environ(), env...), logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// The server is stopped on every path out: SIGTERM to its process group (gunicorn's
	// workers, the dev server's reloader-less child), then SIGKILL if it lingers.
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}
	defer stop()

	base := "http://127.0.0.1:" + strconv.Itoa(port)
	waitReady(t, base, exited, logPath)
	drive(t, base)
	stop()
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var lines [][]byte
	for _, l := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		lines = append(lines, bytes.TrimSuffix(l, []byte("\r")))
	}
	return lines
}

// request is one step of the scenario: what the client sends and the status the app answers.
type request struct {
	method, path string
	form         url.Values
	json         any
	status       int
}

// scenario is what a day of the app looks like, shortened: every kind of line of truths.
var scenario = []request{
	{method: "GET", path: "/login", status: 200},
	{method: "POST", path: "/login", form: url.Values{"email": {"user2@example.com"}, "password": {"wrong"}}, status: 200},
	{method: "POST", path: "/login", form: url.Values{"email": {"user3@example.com"}, "password": {"guess"}}, status: 200},
	{method: "POST", path: "/login", form: url.Values{"email": {"user1@example.com"}, "password": {"secret1"}}, status: 302},
	{method: "GET", path: "/account", status: 200},
	{method: "POST", path: "/account/password", form: url.Values{"new_password": {"n3w-secret"}}, status: 302},
	{method: "POST", path: "/api/login", json: map[string]string{"email": "user2@example.com", "password": "nope"}, status: 401},
	{method: "POST", path: "/api/login", json: map[string]string{"email": "user5@example.com", "password": "nope"}, status: 401},
	{method: "POST", path: "/api/login", json: map[string]string{"email": "user2@example.com", "password": "secret2"}, status: 200},
	{method: "POST", path: "/api/password/reset", json: map[string]string{"email": "user2@example.com", "password": "reset-2"}, status: 200},
	{method: "PUT", path: "/api/users/5/password", json: map[string]string{"password": "set-5"}, status: 204},
	{method: "POST", path: "/api/users", json: map[string]string{"email": "new1@example.com", "password": "p1"}, status: 201},
	{method: "POST", path: "/api/users", json: map[string]string{"email": "new2@example.com", "password": "p2"}, status: 201},
	{method: "GET", path: "/api/users/me", status: 200},
	{method: "DELETE", path: "/api/users/3", status: 204},
	{method: "POST", path: "/admin/users/4/delete", form: url.Values{}, status: 302},
	{method: "POST", path: "/logout", form: url.Values{}, status: 302},
}

// drive sends the scenario as a browser and an API client would, behind a proxy that sets
// X-Forwarded-For, and checks every answer: a wrong status means the fixture is broken.
func drive(t *testing.T, base string) {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for i, r := range scenario {
		var body io.Reader
		ctype := ""
		switch {
		case r.json != nil:
			b, err := json.Marshal(r.json)
			if err != nil {
				t.Fatal(err)
			}
			body, ctype = bytes.NewReader(b), "application/json"
		case r.form != nil:
			body, ctype = strings.NewReader(r.form.Encode()), "application/x-www-form-urlencoded"
		}
		req, err := http.NewRequest(r.method, base+r.path, body)
		if err != nil {
			t.Fatal(err)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d, 10.0.0.2", 10+i))
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) realapp-test")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", r.method, r.path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != r.status {
			t.Fatalf("%s %s answered %d, want %d: the app no longer does what the truths describe",
				r.method, r.path, resp.StatusCode, r.status)
		}
	}
}

// waitReady polls /health until the app answers, failing with its log if it exits first.
func waitReady(t *testing.T, base string, exited <-chan error, logPath string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("the app exited before answering (%v):\n%s", err, b)
		case <-time.After(100 * time.Millisecond):
		}
	}
	b, _ := os.ReadFile(logPath)
	t.Fatalf("the app did not answer on %s within 60s:\n%s", base, b)
}

// run runs a Python command in dir, its output to out, and fails the test when it fails.
func run(t *testing.T, dir, py string, env []string, out io.Writer, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, py, args...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, io.MultiWriter(out, &stderr)
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("%s %s: %v\n%s", py, strings.Join(args, " "), err, stderr.String())
		}
		t.Fatalf("%s %s: %v", py, strings.Join(args, " "), err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			if d.Name() == "__pycache__" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		copyFile(t, path, filepath.Join(to, rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
