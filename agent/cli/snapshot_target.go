package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/agent/actions"
	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/loader"
	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/sdk/snapshotapi"
)

// snapshotTarget is the block the snapshot commands act on: a `sink "snapshot"` block, or
// any block whose plugin serves the snapshot actions (sdk/snapshotapi). Every command
// reaches its provider through those actions, in the block's plugin process.
type snapshotTarget struct {
	env  *Env
	cfg  *config.Config
	comp *config.Component
	// appVersion is the -app-version flag: the app_version tag of the snapshots taken.
	appVersion string
	close      func()
}

// snapshotFlagsHelp documents the flags every snapshot command shares.
const snapshotFlagsHelp = `  -config FILE      Configuration holding the sink "snapshot" block (required).
  -target NAME      Which sink "snapshot" block (default: the only one).`

// openSnapshotTarget loads the config with its plugins and picks the block. It prints
// problems itself and returns nil when the command should exit 1.
func (e *Env) openSnapshotTarget(ctx context.Context, path, target, appVersion string) *snapshotTarget {
	if path == "" {
		e.Errorf("-config is required: the file with the sink \"snapshot\" block to use")
		return nil
	}
	// Only the snapshot block's plugin is needed: a block whose plugin is missing does not
	// stand in the way of a restore.
	loaded, diags := loader.Load(ctx, path, loader.Options{Builtin: e.Builtin, SkipUnknown: true})
	if diags.HasErrors() {
		e.Diagnostics(loaded.Config, diags)
		if loaded.Registry != nil {
			_ = loaded.Registry.Close()
		}
		return nil
	}
	cfg := loaded.Config
	var found []*config.Component
	var names []string
	for _, c := range actions.Serving(cfg, snapshotapi.ActionList) {
		names = append(names, c.Name)
		if target == "" || c.Name == target {
			found = append(found, c)
		}
	}
	fail := func(format string, a ...any) *snapshotTarget {
		e.Errorf(format, a...)
		_ = loaded.Registry.Close()
		return nil
	}
	switch {
	case len(names) == 0:
		return fail("%s has no sink \"snapshot\" block; add one (see docs/recovery.md)", path)
	case len(found) == 0:
		return fail("%s has no sink \"snapshot\" %q; its snapshot sinks are: %s", path, target, strings.Join(names, ", "))
	case len(found) > 1:
		return fail("%s has several snapshot sinks (%s): choose one with -target", path, strings.Join(names, ", "))
	}
	return &snapshotTarget{env: e, cfg: cfg, comp: found[0], appVersion: appVersion,
		close: func() { _ = loaded.Registry.Close() }}
}

// call runs a snapshot action on the block's provider, streaming its progress lines to
// progress (nil: stdout).
func (t *snapshotTarget) call(ctx context.Context, action string, args, result any, progress func(string), by string) error {
	if progress == nil {
		progress = func(line string) { t.env.Printf("%s\n", safe(line)) }
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: t.comp.Address(), Level: hclog.Warn, Output: t.env.Stderr})
	return actions.Runner{Logger: logger}.Call(ctx, t.cfg, t.comp.Address(), action, args, result, progress, actorName(by))
}

// fail prints an action's error: the block's positioned diagnostics when the provider
// refused its configuration, else the error.
func (t *snapshotTarget) fail(err error) {
	var ae *actions.Error
	if errors.As(err, &ae) && len(ae.Diagnostics) > 0 {
		t.env.Diagnostics(t.cfg, ae.Diagnostics)
		return
	}
	t.env.Errorf("%v", err)
}

// printText prints a provider's rendering of a result as it is.
func (t *snapshotTarget) printText(text string) {
	if text != "" {
		fmt.Fprint(t.env.Stdout, text)
	}
}

// actorName is who runs a command, for the audit log and the provider: -by, $TDA_ACTOR,
// $USER.
func actorName(by string) string {
	if by == "" {
		by = os.Getenv("USER")
	}
	if by == "" {
		by = "unknown"
	}
	return by
}

// audit records an action the command ran in the audit log, through the running agent or the
// state store (as every operator action is). A failure to record is reported, not fatal: the
// action itself has happened.
func (e *Env) audit(ctx context.Context, configPath, by string, rec ops.ActionRecord) {
	by = actorName(by)
	addr, token := os.Getenv("TDA_ADDR"), os.Getenv("TDA_TOKEN")
	conn, _ := e.connect(controlFlags{config: &configPath, addr: &addr, token: &token})
	if conn == nil {
		e.Errorf("the %s was done but could not be recorded in the audit log", rec.Action)
		return
	}
	defer release(conn)
	if _, err := conn.RecordAction(ctx, actorOf(by), rec); err != nil {
		e.Errorf("the %s was done but could not be recorded in the audit log: %v", rec.Action, err)
	}
}

func quoteArg(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func restoreCommandLine(configPath, target, snapshotID, newName string) string {
	return fmt.Sprintf("tda restore -config %s -target %s -snapshot %s -to %s",
		quoteArg(configPath), quoteArg(target), snapshotID, newName)
}
