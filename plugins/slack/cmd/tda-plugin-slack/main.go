// Command tda-plugin-slack serves the slack sink to the tda agent.
package main

import (
	"github.com/tda-dev/tda/plugins/slack"
	"github.com/tda-dev/tda/sdk"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0"

func main() {
	sdk.Serve(sdk.PluginInfo{Name: "slack", Version: version}, slack.Component())
}
