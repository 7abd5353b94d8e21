// Command tda-plugin-snapshot serves the snapshot sink.
package main

import (
	"github.com/tda-dev/tda/plugins/snapshot"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/version"
)

func main() {
	sdk.Serve(sdk.PluginInfo{Name: "snapshot", Version: version.Version}, snapshot.Component())
}
