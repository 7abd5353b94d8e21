// Package testdocker helps tests run containers on a real Docker daemon without any image
// registry: test images are built FROM scratch around static Go binaries of this repository,
// containers run with --network none, and everything a test creates carries a label unique to
// the test so that it is removed afterwards, even when the test fails.
package testdocker

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
)

// RunLabel is the label every container and image of a test carries; its value is the test's
// unique run id.
const RunLabel = "tda.test.run"

// RequireDaemon skips the test when no Docker daemon answers, unless TDA_REQUIRE_INTEGRATION=1
// is set, in which case the test fails.
func RequireDaemon(t testing.TB) *client.Client {
	t.Helper()
	cli, err := Connect(os.Getenv("DOCKER_HOST"))
	if err != nil {
		Missing(t, fmt.Sprintf("no Docker daemon: %v", err))
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// Missing skips the test for a missing dependency, or fails it when integration tests are
// required.
func Missing(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("TDA_REQUIRE_INTEGRATION") == "1" {
		t.Fatalf("%s (TDA_REQUIRE_INTEGRATION=1)", reason)
	}
	t.Skipf("%s; set TDA_REQUIRE_INTEGRATION=1 to make this a failure", reason)
}

// Connect returns a client for host ("" for the default) once the daemon answers a ping.
func Connect(host string) (*client.Client, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		_ = cli.Close()
		return nil, err
	}
	return cli, nil
}

// Env is one test's view of a daemon: a unique run id, and cleanup of what it creates.
type Env struct {
	T   testing.TB
	Cli *client.Client
	Run string
}

// New returns an Env for cli; every container and image labelled with its run id is removed
// when the test ends.
func New(t testing.TB, cli *client.Client) *Env {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	e := &Env{T: t, Cli: cli, Run: hex.EncodeToString(b[:])}
	t.Cleanup(e.cleanup)
	return e
}

// Name returns a container name unique to this run: "tdatest-<run>-<suffix>".
func (e *Env) Name(suffix string) string { return "tdatest-" + e.Run + "-" + suffix }

func (e *Env) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", RunLabel+"="+e.Run))
	list, err := e.Cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		e.T.Logf("cleanup: listing containers: %v", err)
	}
	for _, c := range list {
		if err := e.Cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
			e.T.Logf("cleanup: removing container %s: %v", c.ID[:12], err)
		}
	}
	imgs, err := e.Cli.ImageList(ctx, image.ListOptions{Filters: f})
	if err != nil {
		e.T.Logf("cleanup: listing images: %v", err)
	}
	for _, im := range imgs {
		if _, err := e.Cli.ImageRemove(ctx, im.ID, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
			e.T.Logf("cleanup: removing image %s: %v", im.ID, err)
		}
	}
}

// RepoRoot returns the repository's root directory (where go.mod is).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if b, _ := os.ReadFile(filepath.Join(dir, "go.mod")); bytes.HasPrefix(b, []byte("module github.com/tda-dev/tda\n")) {
				return dir
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("repository root not found above %s", file)
		}
		dir = parent
	}
}

// BuildStatic builds the Go main package pkg (e.g. "./plugins/docker/internal/logemitter")
// as a static binary into dir and returns its path.
func BuildStatic(t testing.TB, pkg, dir string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = RepoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// EmitterImage builds the log emitter image on the Env's daemon and returns its tag.
func (e *Env) EmitterImage() string {
	e.T.Helper()
	bin := BuildStatic(e.T, "./plugins/docker/internal/logemitter", e.T.TempDir())
	tag := "tdatest-logemitter:" + e.Run
	e.BuildImage(tag, "FROM scratch\nCOPY logemitter /logemitter\nENTRYPOINT [\"/logemitter\"]\n",
		map[string]string{"logemitter": bin})
	return tag
}

// BuildImage builds an image from a Dockerfile and files (name in the context -> path on
// disk) with the classic builder, labelled with the run id.
func (e *Env) BuildImage(tag, dockerfile string, files map[string]string) {
	e.T.Helper()
	var ctxTar bytes.Buffer
	tw := tar.NewWriter(&ctxTar)
	add := func(name string, data []byte, mode int64) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), ModTime: time.Now()}); err != nil {
			e.T.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			e.T.Fatal(err)
		}
	}
	add("Dockerfile", []byte(dockerfile), 0o644)
	for name, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			e.T.Fatal(err)
		}
		info, _ := os.Stat(path)
		add(name, data, int64(info.Mode().Perm()))
	}
	if err := tw.Close(); err != nil {
		e.T.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := e.Cli.ImageBuild(ctx, &ctxTar, build.ImageBuildOptions{
		Tags: []string{tag}, Remove: true, ForceRemove: true, Version: build.BuilderV1,
		Labels: map[string]string{RunLabel: e.Run},
	})
	if err != nil {
		e.T.Fatalf("building %s: %v", tag, err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			e.T.Fatalf("building %s: %v", tag, err)
		}
		if msg.Error != "" {
			e.T.Fatalf("building %s: %s", tag, msg.Error)
		}
	}
}

// Container describes a test container.
type Container struct {
	Name    string
	Image   string
	Cmd     []string
	TTY     bool
	Labels  map[string]string
	Restart string // restart policy: "", "always", "unless-stopped", "on-failure"
	Start   bool
	// Binds, GroupAdd, User and Env are passed on as they are.
	Binds    []string
	GroupAdd []string
	User     string
	Env      []string
	// Network is the network mode; default "none".
	Network string
}

// Create creates (and, with Start, starts) a container labelled with the run id; it returns
// the container's ID.
func (e *Env) Create(c Container) string {
	e.T.Helper()
	id, err := e.TryCreate(c)
	if err != nil {
		e.T.Fatal(err)
	}
	return id
}

// TryCreate is Create returning its error; it may be called from any goroutine.
func (e *Env) TryCreate(c Container) (string, error) {
	labels := map[string]string{RunLabel: e.Run}
	for k, v := range c.Labels {
		labels[k] = v
	}
	network := c.Network
	if network == "" {
		network = "none"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := e.Cli.ContainerCreate(ctx,
		&container.Config{Image: c.Image, Cmd: c.Cmd, Tty: c.TTY, Labels: labels, User: c.User, Env: c.Env},
		&container.HostConfig{NetworkMode: container.NetworkMode(network), Binds: c.Binds, GroupAdd: c.GroupAdd,
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(c.Restart)}},
		nil, nil, c.Name)
	if err != nil {
		return "", fmt.Errorf("creating container %s: %w", c.Name, err)
	}
	if c.Start {
		if err := e.Cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
			return resp.ID, fmt.Errorf("starting container %s: %w", c.Name, err)
		}
	}
	return resp.ID, nil
}

// Start starts a container.
func (e *Env) Start(id string) {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		e.T.Fatalf("starting container %s: %v", id, err)
	}
}

// Stop stops a container (SIGTERM, then SIGKILL after timeout seconds).
func (e *Env) Stop(id string, timeout int) {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.Cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &timeout}); err != nil {
		e.T.Fatalf("stopping container %s: %v", id, err)
	}
}

// Restart restarts a container.
func (e *Env) Restart(id string, timeout int) {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.Cli.ContainerRestart(ctx, id, container.StopOptions{Timeout: &timeout}); err != nil {
		e.T.Fatalf("restarting container %s: %v", id, err)
	}
}

// Remove removes a container, stopping it first.
func (e *Env) Remove(id string) {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.Cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true}); err != nil {
		e.T.Fatalf("removing container %s: %v", id, err)
	}
}

// Wait waits until the container is no longer running.
func (e *Env) Wait(id string, timeout time.Duration) {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	okc, errc := e.Cli.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	select {
	case <-okc:
	case err := <-errc:
		e.T.Fatalf("waiting for container %s: %v", id, err)
	}
}

// Entry is one line of `docker logs -t`.
type Entry struct {
	Time   time.Time
	Stream string
	Line   string
}

// Logs returns the container's log as `docker logs` shows it, one entry per line. With
// timestamps, each entry carries Docker's time (do not use for lines longer than 16 KiB, whose
// fragments each carry a timestamp). TTY output is read raw, as stream "stdout", without the
// terminal's "\r".
func (e *Env) Logs(id string, timestamps bool) []Entry {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	info, err := e.Cli.ContainerInspect(ctx, id)
	if err != nil {
		e.T.Fatalf("inspecting %s: %v", id, err)
	}
	rc, err := e.Cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: timestamps})
	if err != nil {
		e.T.Fatalf("logs of %s: %v", id, err)
	}
	defer rc.Close()
	var stdout, stderr bytes.Buffer
	if info.Config.Tty {
		_, err = io.Copy(&stdout, rc)
	} else {
		_, err = stdcopy.StdCopy(&stdout, &stderr, rc)
	}
	if err != nil {
		e.T.Fatalf("reading logs of %s: %v", id, err)
	}
	var out []Entry
	for _, s := range []struct {
		name string
		buf  *bytes.Buffer
	}{{"stdout", &stdout}, {"stderr", &stderr}} {
		sc := bufio.NewScanner(s.buf)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			line := sc.Text()
			if info.Config.Tty {
				line = strings.TrimSuffix(line, "\r")
			}
			en := Entry{Stream: s.name, Line: line}
			if timestamps {
				ts, rest, ok := strings.Cut(line, " ")
				t, err := time.Parse(time.RFC3339Nano, ts)
				if !ok || err != nil {
					e.T.Fatalf("logs of %s: line without timestamp: %q", id, line)
				}
				en.Time, en.Line = t, rest
			}
			out = append(out, en)
		}
	}
	return out
}

// Daemon is a dockerd of a test's own, with its own data root, exec root, pid file and socket,
// so that it can be stopped and restarted without disturbing the machine's daemon.
type Daemon struct {
	T    testing.TB
	Dir  string
	Host string
	cmd  *exec.Cmd
	log  *os.File
}

// StartDaemon starts a private dockerd (the test is skipped, or failed when integration tests
// are required, when dockerd is missing or the test is not root).
func StartDaemon(t testing.TB) *Daemon {
	t.Helper()
	if _, err := exec.LookPath("dockerd"); err != nil {
		Missing(t, "dockerd is not installed")
	}
	if os.Geteuid() != 0 {
		Missing(t, "a private dockerd needs root")
	}
	// Short paths: containerd's sockets live under the exec root and unix socket paths are
	// limited to 108 bytes.
	dir, err := os.MkdirTemp("", "tdadd")
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{T: t, Dir: dir, Host: "unix://" + filepath.Join(dir, "d.sock")}
	t.Cleanup(func() {
		d.Stop()
		_ = exec.Command("umount", "-R", filepath.Join(dir, "data")).Run()
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("removing %s: %v", dir, err)
		}
	})
	d.Start()
	return d
}

// Start starts the daemon and waits until it answers.
func (d *Daemon) Start() {
	d.T.Helper()
	logf, err := os.OpenFile(filepath.Join(d.Dir, "dockerd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		d.T.Fatal(err)
	}
	d.log = logf
	d.cmd = exec.Command("dockerd",
		"--data-root", filepath.Join(d.Dir, "data"),
		"--exec-root", filepath.Join(d.Dir, "x"),
		"--pidfile", filepath.Join(d.Dir, "d.pid"),
		"-H", d.Host,
		"--iptables=false", "--ip6tables=false", "--bridge=none", "--ip-masq=false",
		"--userland-proxy=false", "--storage-driver=vfs", "--config-file", filepath.Join(d.Dir, "daemon.json"))
	_ = os.WriteFile(filepath.Join(d.Dir, "daemon.json"), []byte("{}\n"), 0o644)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		d.T.Fatalf("starting dockerd: %v", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		cli, err := Connect(d.Host)
		if err == nil {
			_ = cli.Close()
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(d.Dir, "dockerd.log"))
			d.T.Fatalf("private dockerd did not answer within 60s: %v\n%s", err, tail(b, 4000))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Stop stops the daemon (SIGTERM, as a service manager does) and waits for it to exit.
func (d *Daemon) Stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() {
		_ = d.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = d.cmd.Process.Kill()
		<-done
	}
	d.cmd = nil
	if d.log != nil {
		_ = d.log.Close()
		d.log = nil
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
