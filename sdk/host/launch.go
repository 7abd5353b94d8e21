package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"google.golang.org/grpc"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/internal/peercred"
)

// LaunchConfig says how to start a plugin binary.
type LaunchConfig struct {
	// Path is the plugin binary: what runs, unless Executable is set, and the name the
	// process has in logs and argv[0].
	Path string
	// Args are its arguments (none for a plugin binary; "plugin-serve" for the plugins built
	// into tda).
	Args []string
	// Executable, when set, is the plugin's binary checked against its pin (OpenPinned):
	// exactly its bytes run, whatever the file at Path holds by now. The caller closes it.
	Executable *Executable
	// SHA256 pins the binary's checksum (hex) when Executable is not set: Launch checks the
	// file before running anything of it, and runs the bytes it checked; a mismatch refuses
	// to start it (a *PinError).
	SHA256 string
	// Logger receives the plugin's log lines (JSON hclog on its stderr), re-logged under it.
	Logger hclog.Logger
	// InheritEnv names the variables of the host's environment the plugin gets beside
	// BaseEnvNames: names, or prefixes ending in '*' ("AWS_*").
	InheritEnv []string
	// Env is set in the plugin's environment (NAME=value), over inherited values. The
	// plugin gets nothing else of the host's environment (see PluginEnv).
	Env []string
	// StartTimeout bounds the handshake (DefaultStartTimeout when zero).
	StartTimeout time.Duration
	// Stdout receives what the plugin writes to its standard output after the handshake
	// (e.g. a console sink); discarded when nil.
	Stdout io.Writer
}

// Process is a running plugin binary.
type Process struct {
	client *plugin.Client
	// run is the process's runner: go-plugin knows no pid of a process it did not start.
	run *procRunner
	*Conn
}

// Launch starts the plugin binary and connects to it.
func Launch(cfg LaunchConfig) (*Process, error) {
	exe := cfg.Executable
	if exe == nil && cfg.SHA256 != "" {
		var err error
		if exe, err = OpenPinned(cfg.Path, cfg.SHA256); err != nil {
			return nil, err
		}
		// Once the process runs, it holds the bytes it runs: the copy can go.
		defer exe.Close()
	}
	logger := cfg.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	stdout := cfg.Stdout
	if stdout == nil {
		stdout = io.Discard
	}
	timeout := cfg.StartTimeout
	if timeout == 0 {
		timeout = DefaultStartTimeout
	}
	env := PluginEnv(os.Environ(), cfg.InheritEnv, cfg.Env)
	// run is set by the RunnerFunc, which client.Client calls before it returns.
	var run *procRunner
	dial := sdk.DialOptions()
	if peercred.Supported {
		// The plugin's Unix socket is trusted when the kernel says the process behind it is
		// the one just started, of this user (see peercred); the plugin admits only this
		// process. Elsewhere, go-plugin's AutoMTLS proves both ends. The runner has started
		// the process before go-plugin dials its socket.
		child := func() int {
			if run != nil && run.pid != 0 {
				return run.pid
			}
			return -1 // not started: no process may answer
		}
		dial = append(dial, grpc.WithTransportCredentials(peercred.Credentials{
			Check: peercred.SameUser(uint32(os.Getuid()), child)}))
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: sdk.ClientPluginSets(),
		// The runner starts the process with env and go-plugin's own variables only
		// (SkipHostEnv: go-plugin would otherwise add the host's whole environment).
		RunnerFunc: func(l hclog.Logger, spec *exec.Cmd, _ string) (runner.Runner, error) {
			r, err := newProcRunner(l, spec, cfg.Path, cfg.Args, exe, env)
			run = r
			return r, err
		},
		SkipHostEnv:      true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         !peercred.Supported,
		Logger:           logger,
		StartTimeout:     timeout,
		SyncStdout:       stdout,
		GRPCDialOptions:  dial,
	})
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		if strings.Contains(strings.ToLower(err.Error()), "incompatible api version") {
			return nil, fmt.Errorf("plugin %s serves none of the protocol versions this host speaks (%v): "+
				"use a plugin and a host built for a common protocol version: %w", cfg.Path, sdk.ProtocolVersions(), err)
		}
		return nil, fmt.Errorf("start plugin %s: %w", cfg.Path, err)
	}
	raw, err := rpc.Dispense(sdk.PluginName)
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("connect to plugin %s: %w", cfg.Path, err)
	}
	cc, ok := raw.(*grpc.ClientConn)
	if !ok {
		client.Kill()
		return nil, fmt.Errorf("plugin %s speaks an unexpected protocol", cfg.Path)
	}
	return &Process{client: client, run: run, Conn: NewConn(cc)}, nil
}

// Pid returns the plugin's process id (0 when unknown).
func (p *Process) Pid() int {
	if p.run != nil {
		return p.run.pid
	}
	return 0
}

// Protocol returns the protocol version the plugin and the host settled on in the handshake.
func (p *Process) Protocol() int { return p.client.NegotiatedVersion() }

// Exited reports whether the plugin process has exited.
func (p *Process) Exited() bool { return p.client.Exited() }

// Kill stops the plugin: gracefully first, then with SIGKILL after a few seconds.
func (p *Process) Kill() { p.client.Kill() }

// Ping checks the connection.
func (p *Process) Ping(ctx context.Context) error {
	_, err := p.Describe(ctx)
	return err
}

// FileSHA256 returns the hex sha256 of a file.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
