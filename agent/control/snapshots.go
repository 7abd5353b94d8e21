package control

import (
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/ops"
)

// snapshotTargets opens the config's snapshot targets for the operations.
func snapshotTargets(cfg *config.Config, log hclog.Logger) (ops.Snapshots, hcl.Diagnostics) {
	return nil, nil
}
