// Command tda-plugin-email serves the email sink to the tda agent.
package main

import (
	"github.com/tda-dev/tda/plugins/email"
	"github.com/tda-dev/tda/sdk"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0"

func main() {
	sdk.Serve(sdk.PluginInfo{Name: "email", Version: version}, email.Component())
}
