// Command tda-plugin-console serves the console sink.
package main

import (
	"github.com/tda-dev/tda/plugins/console"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/version"
)

func main() {
	sdk.Serve(sdk.PluginInfo{Name: "console", Version: version.Version}, console.Component())
}
