// Command tda-plugin-docker serves tda's Docker source.
package main

import (
	"github.com/tda-dev/tda/plugins/docker"
	"github.com/tda-dev/tda/sdk"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "0.1.0"

func main() {
	sdk.Serve(sdk.PluginInfo{Name: "docker", Version: version}, docker.Component())
}
