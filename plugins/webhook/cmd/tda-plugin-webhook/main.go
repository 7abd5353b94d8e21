// Command tda-plugin-webhook serves the webhook sink to the tda agent.
package main

import (
	"github.com/tda-dev/tda/plugins/webhook"
	"github.com/tda-dev/tda/sdk"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0"

func main() {
	sdk.Serve(sdk.PluginInfo{Name: "webhook", Version: version}, webhook.Component())
}
