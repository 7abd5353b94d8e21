package rules

import (
	"container/heap"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/tda-dev/tda/plugins/detect/eventtime"
	"github.com/tda-dev/tda/plugins/detect/override"
	"github.com/tda-dev/tda/sdk"
)

// The snapshot is a compact binary encoding (a processor may track a million keys and is
// snapshotted at every checkpoint): a magic, a version, the clock, the override state, the
// origin clocks, then every rule by name with its keys (by state key) from least to most
// recently seen and its open incidents, then the migration approvals, the fingerprints of
// the newest closed incidents and the hosts of the counted events (hosts_snapshot.go).
//
// Version 1 (before origin clocks) is still read: its keys were not per origin, so only the
// windows of keys with an open incident are kept (under that incident's origin). Whatever
// version, the decoder sanitises: times outside eventtime's valid range are dropped, and the
// first arrival clock after the restore drops what lies beyond it (sanitizeBeyond).

const (
	snapMagic   = "TDAR"
	snapVersion = 2
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
	ov, _ := json.Marshal(&e.ov)
	w.str(string(ov))
	names := make([]string, 0, len(e.origins))
	for n := range e.origins {
		names = append(names, n)
	}
	sort.Strings(names)
	w.uvarint(uint64(len(names)))
	for _, n := range names {
		w.str(n)
		w.varint(e.origins[n].wm)
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
		sks := r.sortedIncidents()
		w.uvarint(uint64(len(sks)))
		for _, sk := range sks {
			inc := r.incidents[sk]
			w.str(sk)
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
			if inc.silent {
				w.uvarint(1)
			} else {
				w.uvarint(0)
			}
		}
	}
	apps := make([]string, 0, len(e.approved))
	for n := range e.approved {
		apps = append(apps, n)
	}
	sort.Strings(apps)
	w.uvarint(uint64(len(apps)))
	for _, n := range apps {
		a := e.approved[n]
		w.str(a.name)
		w.varint(a.from)
		w.varint(a.until)
	}
	w.uvarint(uint64(len(e.closed.order)))
	for _, part := range [][]string{e.closed.order[e.closed.next:], e.closed.order[:e.closed.next]} {
		for _, fp := range part {
			w.str(fp)
		}
	}
	e.appendHosts(w)
	return w.b
}

// Restore replaces the engine's state with a snapshot's. Rules are matched by name: a rule
// that is no longer configured is dropped, a new one starts empty. Lines read again after
// the restore that are older than what their origin had counted count nothing.
func (e *Engine) Restore(b []byte) error {
	if len(b) < len(snapMagic) || string(b[:len(snapMagic)]) != snapMagic {
		return errors.New("not a rules snapshot")
	}
	r := &reader{b: b[len(snapMagic):]}
	v := r.uvarint("version")
	if r.err == nil && v != 1 && v != snapVersion {
		return fmt.Errorf("rules snapshot version %d is not supported (want %d)", v, snapVersion)
	}
	fresh := NewEngine(e.Rules(), e.opts)
	fresh.clock.Set(r.time("clock"))
	if v == 1 {
		if r.uvarint("override") == 1 {
			fresh.ov.Current = &override.Override{Actor: r.str("actor"), Reason: r.str("reason"),
				Since: r.time("since"), Until: r.time("until"), Origin: r.str("origin"), Source: r.str("source")}
		}
	} else {
		if ov := r.str("override"); r.err == nil {
			if err := json.Unmarshal([]byte(ov), &fresh.ov); err != nil {
				r.fail("override")
			}
		}
		norig := r.count("origins", 2)
		for j := 0; j < norig && r.err == nil; j++ {
			name := r.str("origin")
			wm := r.varint("origin time")
			if len(fresh.origins) < maxOrigins {
				fresh.origins[name] = &originClock{name: name, wm: wm}
			}
		}
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
		var legacy []*keyState // version 1: keys without their origin
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
			if !saneHits(ks.hits) {
				fresh.counters.Sanitized++
				continue
			}
			ks.resum(rs.w)
			if v == 1 {
				legacy = append(legacy, ks)
				continue
			}
			if _, dup := rs.keys[ks.key]; dup || len(rs.keys) >= rs.MaxKeys {
				continue
			}
			rs.keys[ks.key] = ks
			rs.pushFront(ks)
		}
		ninc := r.count("incidents", 8)
		for j := 0; j < ninc && r.err == nil; j++ {
			sk := ""
			if v != 1 {
				sk = r.str("incident state key")
			}
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
			if v != 1 {
				inc.silent = r.uvarint("silent") == 1
			}
			if v == 1 {
				sk = stateKey(inc.key, inc.origin)
				for _, ks := range legacy {
					if ks.key == inc.key {
						ks.key = sk
						if _, dup := rs.keys[sk]; !dup {
							rs.keys[sk] = ks
							rs.pushFront(ks)
						}
					}
				}
			}
			if r.err != nil || byName[name] == nil {
				continue
			}
			if !saneIncident(inc) || inc.due != inc.lastOver+rs.w {
				inc.due = inc.lastOver + rs.w
			}
			if !saneIncident(inc) {
				fresh.counters.Sanitized++
				continue
			}
			if _, dup := rs.incidents[sk]; dup {
				continue
			}
			_, origin := splitStateKey(sk)
			o := fresh.restoredOrigin(origin, inc.lastSeen)
			if o == nil {
				continue
			}
			rs.incidents[sk] = inc
			inc.ver = 1
			o.open++
			o.pending = append(o.pending, resolveEntry{at: inc.due, rule: rs.idx, key: sk, ver: 1})
		}
	}
	if r.err == nil && len(r.b) > 0 {
		napp := r.count("approvals", 3)
		for j := 0; j < napp && r.err == nil; j++ {
			a := approval{name: r.str("approval"), from: r.varint("approved from"), until: r.varint("approved until")}
			if len(fresh.approved) < maxApprovals {
				fresh.approved[a.name] = a
			}
		}
	}
	if r.err == nil && len(r.b) > 0 && v != 1 {
		nclosed := r.count("closed", 1)
		for j := 0; j < nclosed && r.err == nil; j++ {
			fresh.closed.add(r.str("closed fingerprint"))
		}
	}
	if r.err == nil && len(r.b) > 0 && v != 1 {
		fresh.restoreHosts(r)
	}
	if r.err != nil {
		return r.err
	}
	if fresh.ov.Sanitize(eventtime.MinTime, eventtime.MaxTime) {
		fresh.counters.Sanitized++
	}
	for name, o := range fresh.origins {
		if o.wm != 0 && !eventtime.Valid(time.Unix(0, o.wm)) {
			o.wm = 0
			fresh.counters.Sanitized++
		}
		o.replayUntil = o.wm
		if o.wm == 0 && o.open == 0 {
			delete(fresh.origins, name)
		}
		heap.Init(&o.pending)
	}
	fresh.sanitize = true
	*e = *fresh
	return nil
}

// restoredOrigin returns the clock of a restored incident's origin, creating it from the
// incident's last line when the snapshot had none (version 1); nil when there are too many.
func (e *Engine) restoredOrigin(name string, lastSeen int64) *originClock {
	o, ok := e.origins[name]
	if !ok {
		if len(e.origins) >= maxOrigins {
			return nil
		}
		o = &originClock{name: name}
		e.origins[name] = o
	}
	if lastSeen > o.wm {
		o.wm = lastSeen
	}
	return o
}

// saneHits reports whether a restored window is one the engine could have written: times in
// the valid range and strictly increasing, no empty instant.
func saneHits(h []hit) bool {
	if len(h) == 0 {
		return false
	}
	lo, hi := eventtime.MinTime.UnixNano(), eventtime.MaxTime.UnixNano()
	for i, x := range h {
		if x.t < lo || x.t > hi || x.n == 0 || (i > 0 && x.t <= h[i-1].t) {
			return false
		}
	}
	return true
}

// saneIncident reports whether a restored incident's times are in the valid range.
func saneIncident(inc *incident) bool {
	lo, hi := eventtime.MinTime.UnixNano(), eventtime.MaxTime.UnixNano()
	for _, t := range []int64{inc.opened, inc.firstSeen, inc.lastSeen, inc.lastOver, inc.lastNotify} {
		if t < lo || t > hi {
			return false
		}
	}
	switch inc.state {
	case sdk.StateFiring, sdk.StateSuppressed:
	default:
		return false
	}
	return inc.count >= 0 && inc.peak >= inc.count && inc.realert >= 0 && inc.fingerprint != ""
}

// sanitizeBeyond runs once after a restore, with the first arrival clock known: limit is that
// clock plus the future-skew allowance. Windows, incidents, origin clocks and overrides dated
// beyond it were written before such lines were held to their arrival; they are dropped (an
// incident is resolved), so a snapshot from the future cannot blind a rule.
func (e *Engine) sanitizeBeyond(limit int64, out []sdk.Event) []sdk.Event {
	e.sanitize = false
	for _, o := range e.origins {
		if o.wm > limit {
			o.wm = 0
			e.counters.Sanitized++
		}
		if o.replayUntil > limit {
			o.replayUntil = 0
		}
	}
	if e.clock.Max().UnixNano() > limit {
		e.clock.Set(time.Time{})
		e.counters.Sanitized++
	}
	if e.ov.Sanitize(eventtime.MinTime, time.Unix(0, limit)) {
		e.counters.Sanitized++
	}
	for _, r := range e.rules {
		for _, sk := range r.sortedIncidents() {
			inc := r.incidents[sk]
			if inc.lastOver <= limit && inc.lastSeen <= limit {
				continue
			}
			e.counters.Sanitized++
			delete(r.incidents, sk)
			_, origin := splitStateKey(sk)
			if o := e.origins[origin]; o != nil {
				o.open--
			}
			if !inc.silent {
				out = append(out, e.alert(r, inc, sdk.StateResolved, time.Unix(0, min(inc.lastOver, limit)), inc.excerpt))
			}
		}
		for ks := r.tail; ks != nil; {
			prev := ks.prev
			n := len(ks.hits)
			for n > 0 && ks.hits[n-1].t > limit {
				n--
			}
			if n != len(ks.hits) {
				e.counters.Sanitized++
				ks.hits = ks.hits[:n]
				if n == 0 {
					r.drop(ks)
				} else {
					ks.resum(r.w)
				}
			}
			ks = prev
		}
	}
	return out
}
