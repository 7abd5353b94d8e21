package runtime

import "time"

// FailCheckpointWrites makes every checkpoint write fail with what fault returns (nil: the
// write goes on); nil fault clears it. Tests use it for a state store that cannot write.
func FailCheckpointWrites(rt *Runtime, fault func() error) {
	if fault == nil {
		rt.commitFault.Store(nil)
		return
	}
	rt.commitFault.Store(&fault)
}

// Inflight returns a pipeline's batches and bytes not yet accepted by all of its sinks.
func Inflight(rt *Runtime, pipeline string) (batches, bytes int) {
	for _, p := range rt.pipelines {
		if p.name == pipeline {
			return p.flow.inflight()
		}
	}
	return -1, -1
}

// HeldForReplay returns the bytes of input a pipeline's stateful stages hold for replay.
func HeldForReplay(rt *Runtime, pipeline string) int {
	n := 0
	for _, p := range rt.pipelines {
		if p.name == pipeline {
			for _, st := range p.stages {
				n += st.heldBytes()
			}
		}
	}
	return n
}

// Uncommitted returns the checkpoint entries a source holds for a later commit.
func Uncommitted(rt *Runtime, source string) int {
	for _, s := range rt.sources {
		if s.addr() == source {
			return s.uncommitted()
		}
	}
	return -1
}

// SetCallTimeout sets the deadline of every call to an instance's plugin.
func SetCallTimeout(rt *Runtime, addr string, d time.Duration) {
	for _, in := range rt.instances {
		if in.addr() == addr {
			in.callTimeout = d
		}
	}
}

// OpenEpochs returns how many of a pipeline's epochs are not drained (the current one
// included).
func OpenEpochs(rt *Runtime, pipeline string) int {
	for _, p := range rt.pipelines {
		if p.name == pipeline {
			p.mu.Lock()
			defer p.mu.Unlock()
			n := 0
			for e := p.epoch; e != nil && !e.drained(); e = e.prev {
				n++
			}
			return n
		}
	}
	return -1
}
