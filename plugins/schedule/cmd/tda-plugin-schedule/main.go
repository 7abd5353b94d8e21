// Command tda-plugin-schedule serves the schedule source.
package main

import (
	"github.com/tda-dev/tda/plugins/schedule"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/version"
)

func main() {
	sdk.Serve(sdk.PluginInfo{Name: "schedule", Version: version.Version}, schedule.Component())
}
