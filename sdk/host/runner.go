package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin/runner"
)

// procRunner runs a plugin process for go-plugin (it is go-plugin's own command runner, with
// the two things it cannot do): the process runs execPath, which may be a verified copy of
// the binary, while logs and argv[0] name the configured path; and its environment is
// exactly the one the host chose, go-plugin's own variables added.
type procRunner struct {
	logger hclog.Logger
	cmd    *exec.Cmd
	// exe, when set, holds the verified bytes the process runs.
	exe    *Executable
	name   string
	pid    int
	stdout io.ReadCloser
	stderr io.ReadCloser
}

var _ runner.Runner = (*procRunner)(nil)

// newProcRunner builds the process from go-plugin's spec (its environment variables and
// stdin): the binary name (or exe's verified bytes, when exe is set) runs with args, and with
// env plus go-plugin's variables.
func newProcRunner(logger hclog.Logger, spec *exec.Cmd, name string, args []string, exe *Executable, env []string) (*procRunner, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(append([]string(nil), env...), spec.Env...)
	cmd.Stdin = spec.Stdin
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	return &procRunner{logger: logger, cmd: cmd, exe: exe, name: name, stdout: stdout, stderr: stderr}, nil
}

func (r *procRunner) Start(context.Context) error {
	r.logger.Debug("starting plugin", "path", r.name)
	start := r.cmd.Start
	if r.exe != nil {
		start = func() error { return r.exe.Start(r.cmd) }
	}
	if err := start(); err != nil {
		return err
	}
	r.pid = r.cmd.Process.Pid
	r.logger.Debug("plugin started", "path", r.name, "pid", r.pid)
	return nil
}

func (r *procRunner) Wait(context.Context) error { return r.cmd.Wait() }

func (r *procRunner) Kill(context.Context) error {
	if r.cmd.Process == nil {
		return nil
	}
	// Kill may be called more than once.
	if err := r.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

func (r *procRunner) Stdout() io.ReadCloser { return r.stdout }
func (r *procRunner) Stderr() io.ReadCloser { return r.stderr }
func (r *procRunner) Name() string          { return r.name }
func (r *procRunner) ID() string            { return fmt.Sprintf("%d", r.pid) }

func (r *procRunner) Diagnose(context.Context) string {
	return fmt.Sprintf("This usually means the plugin %s was not built for this machine, is not "+
		"executable by this user, or is not a tda plugin (it did not answer the plugin handshake).", r.name)
}

func (r *procRunner) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (r *procRunner) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}
