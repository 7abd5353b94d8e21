package control

import (
	"context"

	"github.com/tda-dev/tda/agent/ops"
)

// Recovery implements ops.Operations.
func (c *Conn) Recovery(ctx context.Context, incident string) (ops.IncidentRecovery, error) {
	return call(c, ctx, func(o ops.Operations) (ops.IncidentRecovery, error) { return o.Recovery(ctx, incident) })
}
