// Command actionplugin serves a sink "vault" with operator actions, for the tests of
// agent/actions: `actionplugin plugin-serve` serves it as the plugins built into tda are
// served (one shared process), `actionplugin` alone as a separate plugin binary.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"

	"github.com/tda-dev/tda/sdk"
)

type vault struct {
	label   string
	started bool
}

func (*vault) Write(context.Context, sdk.Batch) error { return nil }

func (v *vault) Start(context.Context) error {
	v.started = true
	return nil
}

// Echo is the result of the echo action.
type echo struct {
	Label   string `json:"label"`
	Started bool   `json:"started"`
	Args    string `json:"args"`
	Actor   string `json:"actor"`
	Mark    string `json:"mark"`
	Pid     int    `json:"pid"`
}

func component() sdk.Component {
	spec := &sdk.Spec{Fields: []sdk.Field{{Name: "label", Type: sdk.TypeString, Required: true}}}
	return sdk.SinkComponent("vault", spec, func(cfg *sdk.Config, _ sdk.Resources) (sdk.Sink, error) {
		return &vault{label: cfg.String("label")}, nil
	}).WithActions(
		sdk.Action{Name: "echo", Summary: "say what the instance is", Starts: true,
			Run: func(_ context.Context, comp any, req sdk.ActionRequest) ([]byte, error) {
				v := comp.(*vault)
				req.Progress("one")
				req.Progress("two")
				return json.Marshal(echo{Label: v.label, Started: v.started, Args: string(req.Args), Actor: req.Actor,
					Mark: os.Getenv("VAULT_MARK"), Pid: os.Getpid()})
			}},
		sdk.Action{Name: "wait", Summary: "wait until cancelled, then write the marker file",
			Run: func(ctx context.Context, _ any, req sdk.ActionRequest) ([]byte, error) {
				var args struct {
					Marker string `json:"marker"`
				}
				if err := json.Unmarshal(req.Args, &args); err != nil || args.Marker == "" {
					return nil, sdk.ActionInvalid("wait needs {\"marker\": PATH}")
				}
				req.Progress("waiting")
				<-ctx.Done()
				if err := os.WriteFile(args.Marker, []byte("cancelled"), 0o600); err != nil {
					return nil, err
				}
				return nil, ctx.Err()
			}},
		sdk.Action{Name: "conflict", Summary: "always a conflict",
			Run: func(context.Context, any, sdk.ActionRequest) ([]byte, error) {
				return nil, sdk.ActionConflict("database %q already exists", "restored")
			}},
		sdk.Action{Name: "fail", Summary: "always a plain failure",
			Run: func(context.Context, any, sdk.ActionRequest) ([]byte, error) {
				return nil, errors.New("the dump tool failed")
			}},
		sdk.Action{Name: "crash", Summary: "the process dies mid-action",
			Run: func(_ context.Context, _ any, req sdk.ActionRequest) ([]byte, error) {
				req.Progress("about to crash")
				os.Exit(3)
				return nil, nil
			}},
	)
}

func main() {
	info := sdk.PluginInfo{Name: "vault", Version: "1"}
	if len(os.Args) > 1 && os.Args[1] == "plugin-serve" {
		sdk.ServeBundle(sdk.PluginInfo{Name: "bundled", Version: "1"}, os.Args[2:],
			sdk.Bundled{Info: info, Components: []sdk.Component{component()}})
		return
	}
	sdk.Serve(info, component())
}
