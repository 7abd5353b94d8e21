package runtime

import "sync"

// flow is a pipeline's budget of batches in flight: from the moment a source dispatches a
// batch to the pipeline until every sink of the pipeline accepted its share of the output
// (or the pipeline produced nothing from it). Each pipeline has its own, so a batch accepted
// by one pipeline frees that pipeline's budget whatever the others do: a source feeding two
// pipelines reads on while both have room, and only a pipeline that is itself full (its
// sinks not accepting) holds the source back.
//
// Invariant: batches[s] <= maxBatches for every source s, because a source is only ever
// granted credits that fit (see sourceRunner.regrant); bytes can pass maxBytes by the
// batches already granted, at most maxBatches per source.
type flow struct {
	maxBatches int
	maxBytes   int

	mu      sync.Mutex
	bytes   int
	batches map[*sourceRunner]int
}

func newFlow(maxBatches, maxBytes int) *flow {
	return &flow{maxBatches: maxBatches, maxBytes: maxBytes, batches: map[*sourceRunner]int{}}
}

// add counts a batch of s in flight.
func (f *flow) add(s *sourceRunner, size int) {
	f.mu.Lock()
	f.batches[s]++
	f.bytes += size
	f.mu.Unlock()
}

// done counts a batch of s accepted.
func (f *flow) done(s *sourceRunner, size int) {
	f.mu.Lock()
	f.batches[s]--
	f.bytes -= size
	f.mu.Unlock()
}

// room returns how many more batches s may have in flight in this pipeline, counting the
// credits it already holds: none while the pipeline holds max_inflight_bytes or more.
func (f *flow) room(s *sourceRunner, outstanding int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.bytes >= f.maxBytes {
		return 0
	}
	return f.maxBatches - f.batches[s] - outstanding
}

// inflight returns the batches and bytes in flight (for tests and health).
func (f *flow) inflight() (batches, bytes int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.batches {
		batches += n
	}
	return batches, f.bytes
}
