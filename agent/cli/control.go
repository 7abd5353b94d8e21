package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/agent/control"
	"github.com/tda-dev/tda/agent/loader"
	"github.com/tda-dev/tda/agent/ops"
)

// controlFlagsHelp documents the flags every operator command shares.
const controlFlagsHelp = `  -config FILE      Config file (default: the embedded one); its data_dir locates the
                    agent's socket and state store.
  -addr URL         Reach an agent's HTTP API instead (e.g. from CI; or $TDA_ADDR).
  -token TOKEN      Token for -addr (or $TDA_TOKEN).`

// controlFlags are the flags of the commands that act on tda's state.
type controlFlags struct {
	config *string
	addr   *string
	token  *string
}

func addControlFlags(fs *flag.FlagSet) controlFlags {
	return controlFlags{
		config: fs.String("config", "", ""),
		addr:   fs.String("addr", os.Getenv("TDA_ADDR"), ""),
		token:  fs.String("token", os.Getenv("TDA_TOKEN"), ""),
	}
}

// connect loads the config and returns the operations: through the running agent when there
// is one, else on the state store (see control.Conn). It prints problems and returns nil.
//
// The config is loaded with its plugins, as tda run loads it: the audit trail is the file a
// sink's plugin declares, and the maintenance windows are the rules processors' to report.
func (e *Env) connect(f controlFlags) (*control.Conn, *control.Setup) {
	l, diags := loader.Load(context.Background(), *f.config, loader.Options{Builtin: e.Builtin})
	cfg := l.Config
	if diags.HasErrors() {
		e.Diagnostics(cfg, diags)
		_ = l.Registry.Close()
		return nil, nil
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "tda", Level: hclog.Warn, Output: e.Stderr})
	setup, diags := control.Prepare(cfg, log)
	if diags.HasErrors() {
		e.Diagnostics(cfg, diags)
		_ = setup.Close(context.Background())
		_ = l.Registry.Close()
		return nil, nil
	}
	// The plugins' checked copies are released with the connection.
	setup.AlsoClose(l.Registry)
	return control.Connect(cfg, setup, control.ConnectOptions{Addr: *f.addr, Token: *f.token, Logger: log}), setup
}

// actorFlag returns the -by flag; $TDA_ACTOR is its default.
func actorFlag(fs *flag.FlagSet) *string {
	return fs.String("by", os.Getenv("TDA_ACTOR"), "")
}

// withControl connects to the agent (or its state store) as f says and runs do with a
// deadline of timeout. It returns do's exit code, or 1 when the connection cannot be set up
// (the reason is printed already).
func (e *Env) withControl(f controlFlags, timeout time.Duration, do func(ctx context.Context, conn *control.Conn) int) int {
	conn, _ := e.connect(f)
	if conn == nil {
		return 1
	}
	defer release(conn)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return do(ctx, conn)
}

// release closes a connection, waiting for a snapshot it started.
func release(conn *control.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	_ = conn.Close(ctx)
}

func actorOf(by string) ops.Actor { return ops.Actor{Name: by} }

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func ageOf(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in " + (-d).Round(time.Second).String()
	case d < time.Minute:
		return d.Round(time.Second).String() + " ago"
	case d < 48*time.Hour:
		return d.Round(time.Minute).String() + " ago"
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}
