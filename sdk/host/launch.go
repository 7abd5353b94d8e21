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
	"google.golang.org/grpc"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/internal/peercred"
)

// LaunchConfig says how to start a plugin binary.
type LaunchConfig struct {
	// Path is the plugin binary.
	Path string
	// SHA256 pins the binary's checksum (hex); a mismatch refuses to start it.
	SHA256 string
	// Logger receives the plugin's log lines (JSON hclog on its stderr), re-logged under it.
	Logger hclog.Logger
	// Env is added to the plugin's environment.
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
	*Conn
}

// Launch starts the plugin binary and connects to it.
func Launch(cfg LaunchConfig) (*Process, error) {
	var secure *plugin.SecureConfig
	if cfg.SHA256 != "" {
		sum, err := hex.DecodeString(strings.TrimSpace(cfg.SHA256))
		if err != nil || len(sum) != sha256.Size {
			return nil, fmt.Errorf("sha256 pin for %s is not 64 hex digits", cfg.Path)
		}
		secure = &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
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
	cmd := exec.Command(cfg.Path)
	cmd.Env = append(os.Environ(), cfg.Env...)
	dial := sdk.DialOptions()
	if peercred.Supported {
		// The plugin's Unix socket is trusted when the kernel says the process behind it is
		// the one just started, of this user (see peercred); the plugin admits only this
		// process. Elsewhere, go-plugin's AutoMTLS proves both ends.
		child := func() int {
			if cmd.Process != nil {
				return cmd.Process.Pid
			}
			return -1 // not started: no process may answer
		}
		dial = append(dial, grpc.WithTransportCredentials(peercred.Credentials{
			Check: peercred.SameUser(uint32(os.Getuid()), child)}))
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: sdk.ClientPluginSets(),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         !peercred.Supported,
		SecureConfig:     secure,
		Logger:           logger,
		StartTimeout:     timeout,
		SyncStdout:       stdout,
		GRPCDialOptions:  dial,
	})
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		if secure != nil && strings.Contains(err.Error(), "checksum") {
			return nil, fmt.Errorf("plugin %s does not match its sha256 pin; rebuild or update the pin: %w", cfg.Path, err)
		}
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
	return &Process{client: client, Conn: NewConn(cc)}, nil
}

// Pid returns the plugin's process id (0 when unknown).
func (p *Process) Pid() int {
	if rc := p.client.ReattachConfig(); rc != nil {
		return rc.Pid
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
