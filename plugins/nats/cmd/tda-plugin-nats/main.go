// Command tda-plugin-nats serves the nats sink and source (fleet detection) to the tda agent.
package main

import (
	"github.com/tda-dev/tda/plugins/nats"
	"github.com/tda-dev/tda/sdk"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0"

func main() {
	sdk.Serve(sdk.PluginInfo{Name: "nats", Version: version}, nats.Components()...)
}
