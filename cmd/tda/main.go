// Command tda is the Tracking Database Automator agent and its command line.
package main

import (
	"os"

	"github.com/tda-dev/tda/agent/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
