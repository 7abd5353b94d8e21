package cli

import (
	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/runtime"
	"github.com/tda-dev/tda/sdk"
)

// agentMemoryBase is what the agent holds besides its pipelines' data, with room for the
// collector: idle, the default configuration's agent holds about 11 MiB of its own memory
// (the libraries' tables, the runtime, the control socket, the store's pages).
const agentMemoryBase = 32 << 20

// agentMemoryLimit is the agent's soft memory limit (GOMEMLIMIT) unless the environment
// sets one: its base plus every byte the configuration lets it hold, each pipeline's
// max_inflight_bytes and the replay hold of each of its processors, and each sink's memory
// buffer (buffer.max_size). It never binds while the agent holds what its bounds allow; it
// keeps the collector's headroom (GOGC 50: half the live heap again) from growing past the
// sum when buffers fill, for instance while a sink is down.
func agentMemoryLimit(cfg *config.Config) int64 {
	limit := int64(agentMemoryBase)
	for _, p := range cfg.Pipelines {
		limit += int64(cfg.Agent.MaxInflightBytes) + int64(len(p.Through))*runtime.DefaultReplayHoldBytes
	}
	for _, c := range cfg.Components {
		if c.Kind != sdk.KindSink || c.Sink == nil {
			continue
		}
		if n := c.Sink.Buffer.MaxSize; n > 0 {
			limit += n
		} else {
			limit += config.DefaultBufferMaxSize
		}
	}
	return limit
}
