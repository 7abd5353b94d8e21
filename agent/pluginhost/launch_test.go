package pluginhost_test

import (
	"github.com/tda-dev/tda/sdk/host"
)

// launchDirect starts a plugin binary without describing it first.
func launchDirect(path string) (*host.Process, error) {
	p, err := host.Launch(host.LaunchConfig{Path: path})
	if err == nil {
		p.Kill()
	}
	return p, err
}
