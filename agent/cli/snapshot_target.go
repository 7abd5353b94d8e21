package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/control"
	"github.com/tda-dev/tda/agent/loader"
	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/plugins/snapshot"
	"github.com/tda-dev/tda/sdk"
)

// snapshotTarget is a `sink "snapshot" "NAME"` block opened for the snapshot commands, which
// run the snapshot sink's own code in-process with the block's settings.
type snapshotTarget struct {
	cfg  *config.Config
	comp *config.Component
	mgr  *snapshot.Manager
}

// snapshotFlagsHelp documents the flags every snapshot command shares.
const snapshotFlagsHelp = `  -config FILE      Configuration holding the sink "snapshot" block (required).
  -target NAME      Which sink "snapshot" block (default: the only one).`

// openSnapshotTarget loads the config, decodes the chosen snapshot block with the sink's spec
// (no plugin binary is needed) and opens its provider. It prints problems itself and returns
// nil when the command should exit 1.
func (e *Env) openSnapshotTarget(ctx context.Context, path, target, appVersion string) *snapshotTarget {
	if path == "" {
		e.Errorf("-config is required: the file with the sink \"snapshot\" block to use")
		return nil
	}
	cfg, diags := loader.LoadConfig(path)
	if diags.HasErrors() {
		e.Diagnostics(cfg, diags)
		return nil
	}
	var found []*config.Component
	var names []string
	for _, c := range cfg.Components {
		if c.Kind == sdk.KindSink && c.Type == "snapshot" {
			names = append(names, c.Name)
			if target == "" || c.Name == target {
				found = append(found, c)
			}
		}
	}
	switch {
	case len(names) == 0:
		e.Errorf("%s has no sink \"snapshot\" block; add one (see docs/recovery.md)", path)
		return nil
	case len(found) == 0:
		e.Errorf("%s has no sink \"snapshot\" %q; its snapshot sinks are: %s", path, target, strings.Join(names, ", "))
		return nil
	case len(found) > 1:
		e.Errorf("%s has several snapshot sinks (%s): choose one with -target", path, strings.Join(names, ", "))
		return nil
	}
	comp := found[0]
	logger := hclog.New(&hclog.LoggerOptions{Name: comp.Address(), Level: hclog.Warn, Output: e.Stderr})
	// The agent's control service reads the block the same way.
	settings, diags := control.SnapshotSettings(cfg, comp, logger)
	if e.Diagnostics(cfg, diags) {
		return nil
	}
	// app_version: the flag, then the block, $TDA_APP_VERSION and the agent block.
	if appVersion != "" {
		settings.AppVersion = appVersion
	}
	mgr, err := snapshot.Open(ctx, settings, logger)
	if err != nil {
		e.Errorf("%v", err)
		return nil
	}
	return &snapshotTarget{cfg: cfg, comp: comp, mgr: mgr}
}

// audit records an action the command ran in the audit log, through the running agent or the
// state store (as every operator action is). A failure to record is reported, not fatal: the
// action itself has happened.
func (e *Env) audit(ctx context.Context, configPath, by string, rec ops.ActionRecord) {
	if by == "" {
		by = os.Getenv("USER")
	}
	if by == "" {
		by = "unknown"
	}
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

// close releases the provider, waiting for background work.
func (t *snapshotTarget) close() {
	_ = t.mgr.Close(context.Background())
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
