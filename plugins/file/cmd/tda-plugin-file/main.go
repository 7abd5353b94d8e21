// Command tda-plugin-file serves source "file" to the tda agent.
package main

import (
	"github.com/tda-dev/tda/plugins/file"
	"github.com/tda-dev/tda/sdk"
)

func main() {
	sdk.Serve(sdk.PluginInfo{Name: "file", Version: file.Version}, file.Component())
}
