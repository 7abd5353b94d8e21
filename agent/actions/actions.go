// Package actions runs the operator actions that components serve through the plugin
// protocol (sdk.Action): take a snapshot, list them, restore one, plan and apply a repair.
// The agent links no plugin's code for them: it configures the instance a config block
// describes in a plugin process, exactly as `tda run` would launch it (the shared process
// of the plugins built into tda, or a process of its own for a separate binary, a block
// with isolate = true or a plugin block with memory_limit or env), calls the action and
// closes the instance. A third-party plugin serves the same commands by declaring the same
// actions.
package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/pluginhost"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
)

// Runner calls actions. The zero Runner logs the plugins' warnings to stderr.
type Runner struct {
	// Logger receives the plugin process's log (warnings and errors by default).
	Logger hclog.Logger
	// Env is added to the plugin process's environment (after what the config's plugin
	// blocks set), e.g. TDA_PLUGIN_LOG_LEVEL.
	Env []string
	// Stdout receives what the plugin process prints (nothing, for most).
	Stdout io.Writer
	// CloseTimeout bounds closing the instance after the action (0: DefaultCloseTimeout).
	CloseTimeout time.Duration
}

// DefaultCloseTimeout bounds the Close that ends an action's instance: a component finishes
// there the background work an action started (a snapshot sink's dump after a create that
// did not wait), so it is as long as the snapshot sink's default wait_timeout.
const DefaultCloseTimeout = time.Hour

// Call configures the instance at address (e.g. "sink.snapshot.db", "processor.rules.detect")
// from cfg — in its own plugin process or the shared one, exactly as `tda run`
// would launch it, with its pins, env and inherit_env — runs the action and closes the
// instance.
//
//	func Call(ctx context.Context, cfg *config.Config, address, action string, args, result any,
//		progress func(string), actor string) error
//
// cfg is a config loaded with its plugins (loader.Load sets cfg.Registry).
// args is marshalled to JSON (a []byte or json.RawMessage is sent as it is; nil sends
// nothing); the action's JSON result is unmarshalled into result (a *[]byte or
// *json.RawMessage receives it as it is; nil discards it). progress receives the lines the
// action streams (nil discards them); actor is who asked, for the audit trail. Every error
// is an *Error with its Kind; cancelling ctx cancels the action in the plugin.
func Call(ctx context.Context, cfg *config.Config, address, action string, args, result any,
	progress func(string), actor string) error {
	return Runner{}.Call(ctx, cfg, address, action, args, result, progress, actor)
}

// Call is the package's Call with r's logger and environment.
func (r Runner) Call(ctx context.Context, cfg *config.Config, address, action string, args, result any,
	progress func(string), actor string) error {
	fail := func(kind Kind, format string, a ...any) error {
		return &Error{Kind: kind, Address: address, Action: action, Err: fmt.Errorf(format, a...)}
	}
	if cfg == nil || cfg.Registry == nil {
		return fail(Invalid, "the configuration was read without its plugins (load it with loader.Load)")
	}
	comp := cfg.ComponentByAddress(address)
	if comp == nil {
		return fail(Invalid, "the configuration has no block %s", address)
	}
	bin, desc, ok := cfg.Registry.Lookup(comp.Kind, comp.Type)
	if !ok {
		return fail(PluginFailed, "no plugin offers %s %q; run `tda plugins` to see what is installed", comp.Kind, comp.Type)
	}
	if _, ok := desc.Action(action); !ok {
		if len(desc.Actions) == 0 {
			return fail(NotFound, "%s %q (plugin %s) serves no operator actions", comp.Kind, comp.Type, desc.PluginName(bin.Description))
		}
		return fail(NotFound, "%s %q has no action %q; it serves: %s", comp.Kind, comp.Type, action, names(desc.Actions))
	}
	argBytes, err := marshalArgs(args)
	if err != nil {
		return fail(Invalid, "action %s: encode the request: %v", action, err)
	}
	if comp.Config == nil {
		return fail(Invalid, "%s was not decoded (its plugin's schema is unknown)", address)
	}

	logger := r.Logger
	if logger == nil {
		logger = hclog.New(&hclog.LoggerOptions{Name: "tda", Level: hclog.Warn, Output: os.Stderr})
	}
	env := []string{"TDA_PLUGIN_LOG_LEVEL=warn"}
	if cfg.Agent.AppVersion != "" && os.Getenv("TDA_APP_VERSION") == "" {
		env = append(env, "TDA_APP_VERSION="+cfg.Agent.AppVersion)
	}
	env = append(env, r.Env...)
	stdout := r.Stdout
	if stdout == nil {
		stdout = io.Discard
	}
	// The processes of this call are its own: a running agent's instance of the same block
	// lives on undisturbed in the agent's processes.
	procs := pluginhost.NewProcesses(cfg.Registry, env, stdout)
	defer procs.Close()
	in, err := procs.Start(comp.Kind, comp.Type, address, comp.Isolate, logger.Named(address))
	if err != nil {
		return fail(PluginFailed, "start the plugin of %s: %v", address, err)
	}
	defer in.Release()

	dataDir := ""
	if cfg.Agent.DataDir != "" {
		dataDir = cfg.InstanceDataDir(comp)
	}
	conf := host.Configuration{Component: comp.Type, Instance: address, Config: comp.Config, DataDir: dataDir,
		ActionsOnly: true}
	configured, err := configure(ctx, in.Conn, comp.Kind, conf)
	if err != nil {
		if ctx.Err() != nil {
			return fail(Failed, "action %s on %s: %w", action, address, ctx.Err())
		}
		return fail(PluginFailed, "configure %s: %v", address, err)
	}
	if configured.Diagnostics.HasErrors() {
		return &Error{Kind: Invalid, Address: address, Action: action,
			Err:         fmt.Errorf("%s: %v", address, configured.Diagnostics.Err()),
			Diagnostics: cfg.Positioned(comp, desc.Spec, configured.Diagnostics)}
	}
	// The instance is closed before the process stops, so that it finishes what it started.
	defer func() {
		timeout := r.CloseTimeout
		if timeout <= 0 {
			timeout = DefaultCloseTimeout
		}
		cctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := closeInstance(cctx, in.Conn, comp.Kind); err != nil && !in.Exited() {
			logger.Warn("closing the instance after its action failed", "instance", address, "action", action, "error", err)
		}
	}()

	if progress == nil {
		progress = func(string) {}
	}
	out, err := in.Conn.CallAction(ctx, action, argBytes, actor, progress)
	if err != nil {
		return r.callError(ctx, in, address, action, err)
	}
	if err := unmarshalResult(out, result); err != nil {
		return fail(Failed, "action %s on %s: malformed result: %v", action, address, err)
	}
	return nil
}

// callError sorts a failed CallAction into its kind, and says what to do.
func (r Runner) callError(ctx context.Context, in *pluginhost.Instance, address, action string, err error) error {
	wrap := func(kind Kind, e error) error {
		return &Error{Kind: kind, Address: address, Action: action, Err: e}
	}
	var te *host.TransportError
	switch {
	case ctx.Err() != nil:
		return wrap(Failed, fmt.Errorf("action %s on %s: %w", action, address, ctx.Err()))
	case sdk.ActionErrorKindOf(err) != "":
		return wrap(Kind(sdk.ActionErrorKindOf(err)), err)
	case errors.Is(err, host.ErrNoActions):
		return wrap(PluginFailed, fmt.Errorf("%s: %w", address, err))
	case sdk.IsPanic(err):
		return wrap(PluginFailed, fmt.Errorf("action %s on %s panicked in the plugin (see its log): %w", action, address, err))
	case errors.As(err, &te):
		if exited(in) {
			return wrap(PluginFailed, fmt.Errorf("the plugin process serving %s exited during action %s (see its log above); "+
				"nothing was confirmed: check the action's target before running it again", address, action))
		}
		return wrap(PluginFailed, fmt.Errorf("action %s on %s: %w", action, address, err))
	default:
		return wrap(Failed, err)
	}
}

// exitNoticeTimeout is how long a broken connection waits for its process's exit to be
// noticed (a loaded machine reaps a dead plugin late).
const exitNoticeTimeout = 10 * time.Second

// exited reports whether the instance's process has exited, giving the exit a moment to be
// noticed: a broken connection is usually seen before the process's end.
func exited(in *pluginhost.Instance) bool {
	deadline := time.Now().Add(exitNoticeTimeout)
	for !in.Exited() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

func configure(ctx context.Context, conn *host.Conn, kind sdk.ComponentKind, c host.Configuration) (host.Configured, error) {
	switch kind {
	case sdk.KindSource:
		return conn.Source().Configure(ctx, c)
	case sdk.KindProcessor:
		return conn.Processor().Configure(ctx, c)
	default:
		return conn.Sink().Configure(ctx, c)
	}
}

func closeInstance(ctx context.Context, conn *host.Conn, kind sdk.ComponentKind) error {
	switch kind {
	case sdk.KindSource:
		return conn.Source().Close(ctx)
	case sdk.KindProcessor:
		return conn.Processor().Close(ctx)
	default:
		return conn.Sink().Close(ctx)
	}
}

func marshalArgs(args any) ([]byte, error) {
	switch a := args.(type) {
	case nil:
		return nil, nil
	case []byte:
		return a, nil
	case json.RawMessage:
		return a, nil
	default:
		return json.Marshal(args)
	}
}

func unmarshalResult(out []byte, result any) error {
	switch r := result.(type) {
	case nil:
		return nil
	case *[]byte:
		*r = out
		return nil
	case *json.RawMessage:
		*r = out
		return nil
	default:
		return json.Unmarshal(out, result)
	}
}

func names(actions []sdk.ActionDescription) string {
	out := make([]string, len(actions))
	for i, a := range actions {
		out[i] = a.Name
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// Serving lists the blocks of the loaded config whose component serves action, in the
// config's order.
func Serving(cfg *config.Config, action string) []*config.Component {
	var out []*config.Component
	if cfg == nil || cfg.Registry == nil {
		return nil
	}
	for _, c := range cfg.Components {
		if _, desc, ok := cfg.Registry.Lookup(c.Kind, c.Type); ok {
			if _, ok := desc.Action(action); ok {
				out = append(out, c)
			}
		}
	}
	return out
}

// Find returns the block whose component serves action and whose name is name, or the only
// one when name is "". Its errors (*Error, kind Invalid or NotFound) say which blocks there
// are.
func Find(cfg *config.Config, action, name string) (*config.Component, error) {
	all := Serving(cfg, action)
	fail := func(kind Kind, format string, a ...any) error {
		return &Error{Kind: kind, Action: action, Err: fmt.Errorf(format, a...)}
	}
	var found []*config.Component
	var labels []string
	for _, c := range all {
		labels = append(labels, c.Name)
		if name == "" || c.Name == name {
			found = append(found, c)
		}
	}
	switch {
	case len(all) == 0:
		return nil, fail(NotFound, "no block of the configuration serves %s: add a sink \"snapshot\" block, or the block of a plugin that serves it (see docs/recovery.md)", action)
	case len(found) == 0:
		return nil, fail(NotFound, "no block named %q serves %s; the blocks that do are: %s", name, action, strings.Join(labels, ", "))
	case len(found) > 1:
		return nil, fail(Invalid, "several blocks serve %s (%s): choose one with -target", action, strings.Join(labels, ", "))
	}
	return found[0], nil
}
