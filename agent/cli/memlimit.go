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

// inAgentProcessorAllowance is added for each processor of a pipeline when the bundled
// plugins run inside the agent (bundled_plugins = "in_agent"): its state (windows, keys,
// incidents) is the agent's memory then. The shipped rules hold about 3 MiB after 5,000,000
// lines of the benchmark's workload; max_keys bounds a rule's keys at about 140 bytes each.
const inAgentProcessorAllowance = 16 << 20

// agentMemoryLimit is the agent's soft memory limit (GOMEMLIMIT) unless the environment
// sets one: its base plus every byte the configuration lets it hold, each pipeline's
// max_inflight_bytes and the replay hold of each of its processors, and each sink's memory
// buffer (buffer.max_size). It never binds while the agent holds what its bounds allow; it
// keeps the collector's headroom (GOGC 50: half the live heap again) from growing past the
// sum when buffers fill, for instance while a sink is down. Processors running inside the
// agent add an allowance each for their state.
func agentMemoryLimit(cfg *config.Config) int64 {
	limit := int64(agentMemoryBase)
	for _, p := range cfg.Pipelines {
		limit += int64(cfg.Agent.MaxInflightBytes) + int64(len(p.Through))*runtime.DefaultReplayHoldBytes
		if cfg.Agent.BundledPlugins == config.BundledInAgent {
			limit += int64(len(p.Through)) * inAgentProcessorAllowance
		}
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
