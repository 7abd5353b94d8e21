package runtime

import (
	"math/rand/v2"
	"testing"

	"github.com/tda-dev/tda/sdk"
)

// Whatever the order in which sinks accept the deliveries of a chain of epochs, an epoch is
// drained exactly when it and every epoch before it were closed and fully accepted.
func TestEpochChainDrainsInPrefixOrderWhateverTheAckOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for round := 0; round < 500; round++ {
		p := &pipelineRunner{epoch: newEpoch()}
		var epochs []*epoch
		type delivery struct{ ep *epoch }
		var pending []delivery
		n := 1 + r.IntN(5)
		for i := 0; i < n; i++ {
			for d := r.IntN(4); d > 0; d-- {
				p.mu.Lock()
				p.epoch.outstanding++
				pending = append(pending, delivery{p.epoch})
				p.mu.Unlock()
			}
			p.mu.Lock()
			old := p.epoch
			p.epoch = old.successor()
			old.closed = true
			old.settle()
			p.mu.Unlock()
			epochs = append(epochs, old)
		}
		r.Shuffle(len(pending), func(i, j int) { pending[i], pending[j] = pending[j], pending[i] })
		left := map[*epoch]int{}
		for _, d := range pending {
			left[d.ep]++
		}
		check := func() {
			prefix := true
			for i, e := range epochs {
				prefix = prefix && left[e] == 0
				if e.drained() != prefix {
					t.Fatalf("round %d: epoch %d drained=%v, want %v", round, i, e.drained(), prefix)
				}
			}
		}
		check()
		for _, d := range pending {
			p.ackDelivery(d.ep)
			left[d.ep]--
			check()
		}
	}
}

// A source keeps at most one sealed segment and one open one, whatever the number of
// barriers given up; a commit covers exactly the sealed position.
func TestSourceSegmentsStayBounded(t *testing.T) {
	s := &sourceRunner{latest: map[string][]byte{}, inst: &instance{}}
	put := func(key, val string) {
		s.seq++
		if s.open == nil {
			s.open = map[string]sdk.Checkpoint{}
		}
		s.open[key] = sdk.Checkpoint{Key: key, Value: []byte(val)}
	}
	put("a", "1")
	put("b", "1")
	first := s.seal()
	put("a", "2")
	// The first barrier is given up; the next seal absorbs it.
	second := s.seal()
	put("a", "3")
	if n := s.uncommitted(); n != 3 {
		t.Fatalf("%d entries held, want 3 (a, b sealed; a open)", n)
	}
	if got := s.committable(first); len(got) != 0 {
		t.Fatalf("a position older than the sealed one commits %v", got)
	}
	got := s.committable(second)
	if string(got["a"].Value) != "2" || string(got["b"].Value) != "1" || len(got) != 2 {
		t.Fatalf("committable at the seal: %v", got)
	}
	s.committed(second)
	if n := s.uncommitted(); n != 1 {
		t.Fatalf("%d entries held after the commit, want the open one", n)
	}
}
