// Command tda-plugin-detect serves the detection processors "override" and "rules" to the tda
// agent.
package main

import (
	_ "time/tzdata" // maintenance windows and log time zones work on hosts without tzdata

	"github.com/tda-dev/tda/plugins/detect"
	"github.com/tda-dev/tda/sdk"
)

func main() {
	sdk.Serve(sdk.PluginInfo{Name: "detect", Version: detect.Version}, detect.Components()...)
}
