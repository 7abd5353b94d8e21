// Command tda-plugin-hello is an example tda plugin: copy it into the agent's plugin_dir.
package main

import (
	hello "example.com/tda-plugin-hello"

	"github.com/tda-dev/tda/sdk"
)

func main() {
	sdk.Serve(sdk.PluginInfo{Name: "hello", Version: "0.1.0"}, hello.Components()...)
}
