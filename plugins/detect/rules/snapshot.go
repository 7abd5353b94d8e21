package rules

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/tda-dev/tda/plugins/detect/override"
)

// The snapshot is a compact binary encoding (a processor may track a million keys and is
// snapshotted at every checkpoint): a magic, a version, the clock, the override, then every
// rule by name with its keys from least to most recently seen and its open incidents, then
// the migration approvals (a trailing section: snapshots without it restore with none).

const (
	snapMagic   = "TDAR"
	snapVersion = 1
)

type writer struct{ b []byte }

func (w *writer) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *writer) varint(v int64)   { w.b = binary.AppendVarint(w.b, v) }
func (w *writer) str(s string) {
	w.uvarint(uint64(len(s)))
	w.b = append(w.b, s...)
}
func (w *writer) time(t time.Time) {
	if t.IsZero() {
		w.varint(0)
		return
	}
	w.varint(t.UnixNano())
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("snapshot truncated or corrupt at %s", what)
	}
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) str(what string) string {
	n := r.uvarint(what)
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.fail(what)
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) time(what string) time.Time {
	v := r.varint(what)
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v).UTC()
}

// count reads a length and checks it against what the remaining bytes can hold.
func (r *reader) count(what string, minBytes int) int {
	n := r.uvarint(what)
	if r.err == nil && n > uint64(len(r.b)/minBytes+1) {
		r.fail(what)
		return 0
	}
	return int(n)
}

// Snapshot encodes the engine's state.
func (e *Engine) Snapshot() []byte { return e.AppendSnapshot(make([]byte, 0, e.SnapshotSizeHint())) }

// SnapshotSizeHint is about the size of the next snapshot: the last one's and a margin, so
// that a snapshot of a million keys is written into one allocation instead of growing
// through a dozen.
func (e *Engine) SnapshotSizeHint() int {
	keys := 0
	for _, r := range e.rules {
		keys += len(r.keys)
	}
	return max(e.lastSnapshot+e.lastSnapshot/8, 24*keys) + 4096
}

// AppendSnapshot appends the engine's state, encoded, to b.
func (e *Engine) AppendSnapshot(b []byte) []byte {
	start := len(b)
	w := &writer{b: b}
	defer func() { e.lastSnapshot = len(w.b) - start }()
	w.b = append(w.b, snapMagic...)
	w.uvarint(snapVersion)
	w.time(e.clock.Max())
	if o := e.ov.Current; o != nil {
		w.uvarint(1)
		w.str(o.Actor)
		w.str(o.Reason)
		w.time(o.Since)
		w.time(o.Until)
		w.str(o.Origin)
		w.str(o.Source)
	} else {
		w.uvarint(0)
	}
	w.uvarint(uint64(len(e.rules)))
	for _, r := range e.rules {
		w.str(r.Name)
		w.uvarint(r.evicted)
		w.uvarint(r.expired)
		w.uvarint(uint64(r.ring.next))
		var live []int
		for i := range r.ring.seqs {
			if r.ring.seqs[i] != 0 {
				live = append(live, i)
			}
		}
		w.uvarint(uint64(len(live)))
		for _, i := range live {
			w.uvarint(uint64(r.ring.seqs[i]))
			w.str(r.ring.lines[i])
		}
		w.uvarint(uint64(len(r.keys)))
		for ks := r.tail; ks != nil; ks = ks.prev {
			w.str(ks.key)
			w.uvarint(uint64(ks.touchedSec))
			w.uvarint(uint64(len(ks.hits)))
			var prev int64
			for _, h := range ks.hits {
				w.varint(h.t - prev)
				prev = h.t
				w.uvarint(uint64(h.seq))
				w.uvarint(uint64(h.n))
			}
		}
		incs := r.sortedIncidents()
		w.uvarint(uint64(len(incs)))
		for _, inc := range incs {
			w.str(inc.key)
			w.str(inc.fingerprint)
			w.str(inc.state)
			w.varint(inc.opened)
			w.varint(inc.firstSeen)
			w.varint(inc.lastSeen)
			w.varint(inc.lastOver)
			w.varint(inc.count)
			w.varint(inc.peak)
			w.uvarint(uint64(inc.realert))
			w.varint(inc.lastNotify)
			w.varint(inc.due)
			w.str(inc.origin)
			w.str(inc.source)
			w.str(inc.suppressedBy)
			w.str(inc.reason)
			w.uvarint(uint64(len(inc.excerpt)))
			for _, l := range inc.excerpt {
				w.str(l)
			}
		}
	}
	names := make([]string, 0, len(e.approved))
	for n := range e.approved {
		names = append(names, n)
	}
	sort.Strings(names)
	w.uvarint(uint64(len(names)))
	for _, n := range names {
		a := e.approved[n]
		w.str(a.name)
		w.varint(a.from)
		w.varint(a.until)
	}
	return w.b
}

// Restore replaces the engine's state with a snapshot's. Rules are matched by name: a rule
// that is no longer configured is dropped, a new one starts empty.
func (e *Engine) Restore(b []byte) error {
	if len(b) < len(snapMagic) || string(b[:len(snapMagic)]) != snapMagic {
		return errors.New("not a rules snapshot")
	}
	r := &reader{b: b[len(snapMagic):]}
	if v := r.uvarint("version"); r.err == nil && v != snapVersion {
		return fmt.Errorf("rules snapshot version %d is not supported (want %d)", v, snapVersion)
	}
	fresh := NewEngine(e.Rules(), e.opts)
	fresh.clock.Set(r.time("clock"))
	if r.uvarint("override") == 1 {
		fresh.ov.Current = &override.Override{Actor: r.str("actor"), Reason: r.str("reason"),
			Since: r.time("since"), Until: r.time("until"), Origin: r.str("origin"), Source: r.str("source")}
	}
	byName := map[string]*ruleState{}
	for _, rs := range fresh.rules {
		byName[rs.Name] = rs
	}
	nrules := r.count("rules", 1)
	for i := 0; i < nrules && r.err == nil; i++ {
		name := r.str("rule name")
		rs := byName[name]
		if rs == nil {
			rs = &ruleState{Rule: &Rule{Name: name, MaxKeys: 1 << 62}, keys: map[string]*keyState{},
				incidents: map[string]*incident{}}
		}
		rs.evicted = r.uvarint("evicted")
		rs.expired = r.uvarint("expired")
		rs.ring.next = uint32(r.uvarint("ring"))
		nring := r.count("ring entries", 2)
		for j := 0; j < nring && r.err == nil; j++ {
			seq := uint32(r.uvarint("ring seq"))
			line := r.str("ring line")
			rs.ring.seqs[seq%ringSize] = seq
			rs.ring.lines[seq%ringSize] = line
		}
		nkeys := r.count("keys", 2)
		for j := 0; j < nkeys && r.err == nil; j++ {
			ks := &keyState{key: r.str("key"), touchedSec: uint32(r.uvarint("touched"))}
			nh := r.count("hits", 3)
			ks.hits = make([]hit, 0, max(nh, 1))
			var prev int64
			for k := 0; k < nh && r.err == nil; k++ {
				prev += r.varint("hit time")
				ks.hits = append(ks.hits, hit{t: prev, seq: uint32(r.uvarint("hit seq")), n: uint32(r.uvarint("hit n"))})
			}
			ks.resum(rs.w)
			rs.keys[ks.key] = ks
			rs.pushFront(ks)
		}
		ninc := r.count("incidents", 8)
		for j := 0; j < ninc && r.err == nil; j++ {
			inc := &incident{key: r.str("incident key"), fingerprint: r.str("fingerprint"), state: r.str("state"),
				opened: r.varint("opened"), firstSeen: r.varint("first seen"), lastSeen: r.varint("last seen"),
				lastOver: r.varint("last over"), count: r.varint("count"), peak: r.varint("peak"),
				realert: int(r.uvarint("realert")), lastNotify: r.varint("last notify"), due: r.varint("due"),
				origin: r.str("origin"), source: r.str("source"), suppressedBy: r.str("suppressed by"),
				reason: r.str("reason")}
			nex := r.count("excerpt", 1)
			for k := 0; k < nex && r.err == nil; k++ {
				inc.excerpt = append(inc.excerpt, r.str("excerpt line"))
			}
			rs.incidents[inc.key] = inc
			if byName[name] != nil {
				inc.ver = 1
				fresh.resolve = append(fresh.resolve, resolveEntry{at: inc.due, rule: rs.idx, key: inc.key, ver: 1})
			}
		}
	}
	if r.err == nil && len(r.b) > 0 {
		napp := r.count("approvals", 3)
		for j := 0; j < napp && r.err == nil; j++ {
			a := approval{name: r.str("approval"), from: r.varint("approved from"), until: r.varint("approved until")}
			fresh.approved[a.name] = a
		}
	}
	if r.err != nil {
		return r.err
	}
	heap.Init(&fresh.resolve)
	*e = *fresh
	return nil
}
