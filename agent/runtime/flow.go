package runtime

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// flow is a pipeline's budget of batches in flight: from the moment a source dispatches a
// batch to the pipeline until every sink of the pipeline accepted its share of the output
// (or the pipeline produced nothing from it). Each pipeline has its own, so a batch accepted
// by one pipeline frees that pipeline's budget whatever the others do: a source feeding two
// pipelines reads on while both have room, and only a pipeline that is itself full (its
// sinks not accepting) holds the source back.
//
// Invariant: batches[s] <= maxBatches for every source s, because a source is only ever
// granted credits that fit (see sourceRunner.regrant); bytes pass maxBytes by no more than
// the batches granted while under it, which are sized on each source's usual batch: about
// one batch per source.
type flow struct {
	maxBatches int
	maxBytes   int
	// sources feed the pipeline (set while building, read-only after).
	sources []*sourceRunner
	// gauges mirror batches and bytes in the metrics (nil: none).
	batchGauge, byteGauge prometheus.Gauge

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
	if f.batchGauge != nil {
		f.batchGauge.Inc()
		f.byteGauge.Add(float64(size))
	}
}

// done counts a batch of s accepted.
func (f *flow) done(s *sourceRunner, size int) {
	f.mu.Lock()
	f.batches[s]--
	f.bytes -= size
	f.mu.Unlock()
	if f.batchGauge != nil {
		f.batchGauge.Dec()
		f.byteGauge.Sub(float64(size))
	}
}

// room returns how many more batches s may have in flight in this pipeline, counting the
// credits it already holds: what fits under max_inflight_batches, and under
// max_inflight_bytes at the source's usual batch size (avg; one credit until the first batch
// tells it), at least one while the pipeline holds less than max_inflight_bytes and s holds
// no credit.
func (f *flow) room(s *sourceRunner, outstanding, avg int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.bytes >= f.maxBytes {
		return 0
	}
	n := f.maxBatches - f.batches[s] - outstanding
	if avg < 1 {
		// The source's batch size is not known yet: one batch tells it.
		return min(n, 1-outstanding)
	}
	byBytes := (f.maxBytes-f.bytes)/avg - outstanding
	if byBytes < 1 && outstanding == 0 {
		byBytes = 1
	}
	return min(n, byBytes)
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
