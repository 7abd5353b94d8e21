// Command tda-plugin-logfile serves the logfile sink.
package main

import (
	"github.com/tda-dev/tda/plugins/logfile"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/version"
)

func main() {
	sdk.Serve(sdk.PluginInfo{Name: "logfile", Version: version.Version}, logfile.Component())
}
