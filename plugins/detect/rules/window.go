package rules

// hit is one or more counted events at the same instant.
type hit struct {
	t   int64  // event time, Unix nanoseconds
	seq uint32 // excerpt-ring sequence of the newest line at this instant
	n   uint32 // events at this instant
}

// maxHits bounds the distinct instants kept per key. Beyond it neighbouring instants merge
// (the counts stay exact; a merged instant drains at the later of the two times).
const maxHits = 4096

// keyState is the sliding window of one key, a doubly linked element of the rule's
// least-recently-seen list. hits are sorted by time; sum is the count of the window that ends
// at the newest hit. The struct is kept at 64 bytes (one allocation size class): a million
// keys must fit in the memory budget.
type keyState struct {
	key        string
	hits       []hit
	prev, next *keyState
	sum        int32
	// touchedSec is the stream clock (Unix seconds) when the key last counted an event; the
	// recency list is ordered by it.
	touchedSec uint32
}

// lo returns the index of the oldest hit in the window that ends at the newest hit.
func (k *keyState) lo(w int64) int {
	if len(k.hits) == 0 {
		return 0
	}
	return searchAfter(k.hits, k.hits[len(k.hits)-1].t-w)
}

// touchedNs returns the end of the second in which the key was last touched (never before the
// true time, so expiry based on it is never early).
func (k *keyState) touchedNs() int64 { return (int64(k.touchedSec) + 1) * 1e9 }

func secondsOf(ns int64) uint32 {
	if ns <= 0 {
		return 0
	}
	s := ns / 1e9
	if s > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(s)
}

func (k *keyState) newest() int64 {
	if len(k.hits) == 0 {
		return 0
	}
	return k.hits[len(k.hits)-1].t
}

// windowResult describes what a new hit did to the key's windows.
type windowResult struct {
	over     bool  // some window containing the new hit holds more than the threshold
	count    int64 // the largest count among those windows
	start    int64 // time of the oldest hit in that window
	lastOver int64 // end of the latest window over the threshold
}

// add counts one event at t and evaluates every window (t'-w, t'] that contains it.
func (k *keyState) add(t int64, seq uint32, w int64, threshold int64) windowResult {
	n := len(k.hits)
	if n == 0 || t >= k.hits[n-1].t {
		// In order: the window ending at t.
		if n > 0 && k.hits[n-1].t == t {
			k.hits[n-1].n++
			k.hits[n-1].seq = seq
		} else {
			k.hits = append(k.hits, hit{t: t, seq: seq, n: 1})
		}
		k.sum++
		// The hits that left the window: from the old window's start to the new one's.
		if n > 0 && k.hits[n-1].t != t {
			from := searchAfter(k.hits[:n], k.hits[n-1].t-w)
			for j := from; j < len(k.hits)-1 && k.hits[j].t <= t-w; j++ {
				k.sum -= int32(k.hits[j].n)
			}
		}
		if len(k.hits) > maxHits {
			k.coarsen(w)
		}
		r := windowResult{count: int64(k.sum), start: k.hits[k.lo(w)].t}
		if r.count > threshold {
			r.over, r.lastOver = true, t
		}
		return r
	}
	// Out of order: insert, then look at every window ending at a hit in [t, t+w).
	i := searchHits(k.hits, t)
	if i < n && k.hits[i].t == t {
		k.hits[i].n++
	} else {
		k.hits = append(k.hits, hit{})
		copy(k.hits[i+1:], k.hits[i:])
		k.hits[i] = hit{t: t, seq: seq, n: 1}
	}
	var r windowResult
	lo, sum := searchAfter(k.hits, k.hits[i].t-w), int64(0)
	for j := lo; j < i; j++ {
		sum += int64(k.hits[j].n)
	}
	for j := i; j < len(k.hits) && k.hits[j].t < t+w; j++ {
		sum += int64(k.hits[j].n)
		for k.hits[lo].t <= k.hits[j].t-w {
			sum -= int64(k.hits[lo].n)
			lo++
		}
		if sum > threshold {
			if !r.over || sum > r.count {
				r.count, r.start = sum, k.hits[lo].t
			}
			r.over, r.lastOver = true, k.hits[j].t
		} else if !r.over && sum > r.count {
			r.count, r.start = sum, k.hits[lo].t
		}
	}
	if len(k.hits) > maxHits {
		k.coarsen(w)
	}
	k.resum(w)
	return r
}

// resum recomputes the window ending at the newest hit.
func (k *keyState) resum(w int64) {
	var sum int32
	for j := k.lo(w); j < len(k.hits); j++ {
		sum += int32(k.hits[j].n)
	}
	k.sum = sum
}

// prune drops hits at or before cutoff.
func (k *keyState) prune(cutoff int64, w int64) {
	i := 0
	for i < len(k.hits)-1 && k.hits[i].t <= cutoff {
		i++
	}
	if i == 0 {
		return
	}
	lo := k.lo(w)
	k.hits = append(k.hits[:0], k.hits[i:]...)
	if lo < i {
		k.resum(w)
	}
}

// coarsen halves the number of instants by merging neighbours into the later one.
func (k *keyState) coarsen(w int64) {
	out := k.hits[:0]
	for i := 0; i < len(k.hits); i += 2 {
		if i+1 < len(k.hits) {
			h := k.hits[i+1]
			h.n += k.hits[i].n
			out = append(out, h)
		} else {
			out = append(out, k.hits[i])
		}
	}
	k.hits = out
	k.resum(w)
}

// searchHits returns the first index whose time is >= t.
func searchHits(h []hit, t int64) int {
	lo, hi := 0, len(h)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if h[m].t < t {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// searchAfter returns the first index whose time is > t.
func searchAfter(h []hit, t int64) int {
	lo, hi := 0, len(h)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if h[m].t <= t {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}
