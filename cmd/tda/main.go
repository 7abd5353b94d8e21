// Command tda is the Tracking Database Automator agent and its command line. The bundled
// plugins are compiled in: `tda plugin-serve` serves them to the agent, which starts one
// such process for all their instances (see bundle.go).
package main

import (
	"os"

	"github.com/tda-dev/tda/agent/cli"
	"github.com/tda-dev/tda/agent/pluginhost"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == pluginServeCommand {
		serveBundle(os.Args[2:])
		return
	}
	opts := cli.Options{}
	if exe, err := os.Executable(); err == nil {
		plugins := bundled()
		opts.Builtin = &pluginhost.Builtin{Path: exe, Args: []string{pluginServeCommand},
			Description: describeBundleOf(plugins), Plugins: plugins}
	}
	os.Exit(cli.MainWith(os.Args[1:], os.Stdout, os.Stderr, opts))
}
