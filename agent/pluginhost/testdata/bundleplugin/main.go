// Command bundleplugin serves several plugins from one binary, as tda's `plugin-serve` does,
// for the tests of built-in plugins and shared processes: plugins alpha and beta (one sink
// each, which keeps nothing) and proto, whose sink proto_v1_2 a separate binary in the
// plugin directory also offers. It serves with `bundleplugin plugin-serve`.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/tda-dev/tda/sdk"
)

type discard struct{}

func (discard) Write(context.Context, sdk.Batch) error { return nil }

func sink(name string) []sdk.Component {
	return []sdk.Component{sdk.SinkComponent(name, nil,
		func(*sdk.Config, sdk.Resources) (sdk.Sink, error) { return discard{}, nil })}
}

func main() {
	if len(os.Args) < 2 || os.Args[1] != "plugin-serve" {
		fmt.Fprintln(os.Stderr, "usage: bundleplugin plugin-serve [describe]")
		os.Exit(2)
	}
	sdk.ServeBundle(sdk.PluginInfo{Name: "bundled", Version: "0.0.1"}, os.Args[2:],
		sdk.Bundled{Info: sdk.PluginInfo{Name: "alpha", Version: "1"}, Components: sink("alpha_sink")},
		sdk.Bundled{Info: sdk.PluginInfo{Name: "beta", Version: "2"}, Components: sink("beta_sink")},
		sdk.Bundled{Info: sdk.PluginInfo{Name: "proto", Version: "3"}, Components: sink("proto_v1_2")})
}
