// Command tda-plugin-jsonl serves the jsonl sink.
package main

import (
	"github.com/tda-dev/tda/plugins/jsonl"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/version"
)

func main() {
	sdk.Serve(sdk.PluginInfo{Name: "jsonl", Version: version.Version}, jsonl.Component())
}
