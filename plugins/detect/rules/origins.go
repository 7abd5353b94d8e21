package rules

import (
	"container/heap"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/tda-dev/tda/plugins/detect/eventtime"
	"github.com/tda-dev/tda/sdk"
)

// Every origin (a file, a container) has its own clock: the newest time counted from its
// lines. A rule's windows are kept per key and origin, and judged in that origin's time: its
// history is pruned, its keys expire and its incidents resolve as the origin's own lines move
// on, never because another origin is ahead. So the incidents of several files read together
// are the same in any interleaving of their lines (each file in its own order), and an
// origin that lags behind the others (a catch-up, a wrong time zone) keeps its bursts
// separate.

// allOrigins is the origin of the windows of rules that count across origins
// (Rule.AcrossOrigins): its clock is the newest time over every origin, as one stream. No
// source names an origin with a control character.
const allOrigins = "\x01all-origins"

// maxOrigins bounds the origin clocks. Beyond it the least recently seen origin is forgotten:
// its open incidents resolve and its keys expire.
const maxOrigins = 4096

type originClock struct {
	name string
	// wm is the newest time counted from the origin (Unix ns; 0: none yet). Lines held to
	// their arrival time (eventtime.Judge) move it only to that arrival.
	wm int64
	// moved: wm moved during the current batch; wallAt is the wall clock when it last did
	// (live runs), from which a quiet origin's time moves on (eventtime.Grace).
	moved  bool
	wallAt time.Time
	// replayUntil is the origin's time when the engine was restored: its lines older than it
	// were counted before the snapshot, and reading them again counts nothing.
	replayUntil int64
	// pending are the origin's incidents waiting for their window to drain; open counts the
	// live ones (the rest are stale entries).
	pending resolveHeap
	open    int
	lastUse uint64
}

// now is the origin's time: its newest line, moved on by the wall time since that line
// arrived when the input is quiet (live runs only; wall is zero in replays).
func (o *originClock) now(wall time.Time) int64 {
	if wall.IsZero() || o.wallAt.IsZero() || o.wm == 0 {
		return o.wm
	}
	idle := wall.Sub(o.wallAt) - eventtime.Grace
	if idle <= 0 {
		return o.wm
	}
	return min(o.wm+int64(idle), eventtime.MaxTime.UnixNano())
}

// origin returns the clock of an origin, creating it (and forgetting the least recently seen
// one when there are maxOrigins) as needed.
func (e *Engine) origin(name string, out *[]sdk.Event) *originClock {
	e.useSeq++
	last := &e.lastOrigin
	if name == allOrigins {
		last = &e.lastAll
	}
	if o := *last; o != nil && o.name == name {
		o.lastUse = e.useSeq
		return o
	}
	if o, ok := e.origins[name]; ok {
		*last = o
		o.lastUse = e.useSeq
		return o
	}
	if len(e.origins) >= maxOrigins {
		var old *originClock
		for _, o := range e.origins {
			if old == nil || o.lastUse < old.lastUse {
				old = o
			}
		}
		e.forgetOrigin(old, out)
	}
	o := &originClock{name: name, lastUse: e.useSeq}
	e.origins[name] = o
	*last = o
	e.order = nil
	return o
}

// sortedOrigins returns the origin clocks by name.
func (e *Engine) sortedOrigins() []*originClock {
	if len(e.order) != len(e.origins) {
		e.order = e.order[:0]
		for _, o := range e.origins {
			e.order = append(e.order, o)
		}
		sort.Slice(e.order, func(i, j int) bool { return e.order[i].name < e.order[j].name })
	}
	return e.order
}

// forgetOrigin resolves the open incidents of an origin and drops its clock; its keys expire
// on their own (a key whose origin has no clock counts as drained).
func (e *Engine) forgetOrigin(o *originClock, out *[]sdk.Event) {
	*out = e.resolveOrigin(o, math.MaxInt64, *out)
	delete(e.origins, o.name)
	if e.lastOrigin == o {
		e.lastOrigin = nil
	}
	if e.lastAll == o {
		e.lastAll = nil
	}
	e.order = nil
}

// observe moves an origin's clock to t (Unix ns).
func (o *originClock) observe(t int64) {
	if t > o.wm {
		o.wm = t
		o.moved = true
	}
	if o.replayUntil != 0 && t >= o.replayUntil {
		o.replayUntil = 0
	}
}

// stateKey is the key of a rule's window and incident: the rule's key and the origin.
func stateKey(key, origin string) string { return key + "\x00" + origin }

// splitStateKey returns the rule's key and the origin of a state key.
func splitStateKey(k string) (key, origin string) {
	i := strings.LastIndexByte(k, 0)
	if i < 0 {
		return k, ""
	}
	return k[:i], k[i+1:]
}

// originNow is the time of the origin of a state key; false when the origin was forgotten.
func (e *Engine) originNow(k string) (int64, bool) {
	_, origin := splitStateKey(k)
	if o, ok := e.origins[origin]; ok {
		return o.now(e.lastWall), true
	}
	return 0, false
}

func (o *originClock) push(ent resolveEntry) { heap.Push(&o.pending, ent) }
