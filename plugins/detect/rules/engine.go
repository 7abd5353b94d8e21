package rules

import (
	"container/heap"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"sort"
	"time"

	"github.com/tda-dev/tda/plugins/detect/eventtime"
	"github.com/tda-dev/tda/plugins/detect/override"
	"github.com/tda-dev/tda/plugins/detect/parse"
	"github.com/tda-dev/tda/sdk"
)

// Options configure an Engine.
type Options struct {
	// Instance is the processor's address; it is part of every fingerprint so that two
	// pipelines with the same rule names never share incidents.
	Instance string
	// Lateness is how far behind the newest event a line may arrive and still be counted
	// exactly; windows keep that much extra history and incidents resolve that much later.
	Lateness time.Duration
	// Override bounds the TTL of override declarations seen in the stream.
	Override override.Config
	// RecordOverrides makes the engine emit the audit record of every override change (as
	// processor "override" does), for pipelines without an override processor before rules.
	RecordOverrides bool
}

// Engine evaluates rules over a stream of parsed events. It is not safe for concurrent use.
type Engine struct {
	opts     Options
	rules    []*ruleState
	byEvent  map[string][]*ruleState
	ov       override.State
	clock    eventtime.Clock
	resolve  resolveHeap
	lastWall time.Time
	lateness int64
	approved approvals
	// lastSnapshot is the size of the last snapshot, to size the next one's buffer.
	lastSnapshot int
}

// Stats describes one rule's state.
type Stats struct {
	Rule      string `json:"rule"`
	Keys      int    `json:"keys"`
	Incidents int    `json:"incidents"`
	// Evicted counts keys dropped because the rule reached max_keys (least recently seen
	// first); Expired counts keys dropped because their window drained.
	Evicted uint64 `json:"evicted"`
	Expired uint64 `json:"expired"`
}

type ruleState struct {
	*Rule
	idx        int
	w          int64
	keys       map[string]*keyState
	head, tail *keyState // head: most recently seen
	incidents  map[string]*incident
	ring       ring
	evicted    uint64
	expired    uint64
}

type incident struct {
	key          string
	fingerprint  string
	state        string
	opened       int64
	firstSeen    int64
	lastSeen     int64
	lastOver     int64
	count        int64
	peak         int64
	realert      int
	lastNotify   int64
	origin       string
	source       string
	suppressedBy string
	reason       string
	excerpt      []string
	// due is when the incident resolves on the stream clock: a window after the later of
	// its last over-threshold time and the clock when that was seen, so that the incidents
	// of an origin lagging behind the others (a catch-up, a wrong time zone) do not resolve
	// and re-open at every line.
	due int64
	ver uint64
}

// NewEngine builds an engine for checked rules.
func NewEngine(rules []*Rule, o Options) *Engine {
	if o.Override == (override.Config{}) {
		o.Override = override.DefaultConfig
	}
	e := &Engine{opts: o, byEvent: map[string][]*ruleState{}, lateness: int64(o.Lateness), approved: approvals{}}
	for i, r := range rules {
		rs := &ruleState{Rule: r, idx: i, w: int64(r.Window), keys: map[string]*keyState{},
			incidents: map[string]*incident{}}
		e.rules = append(e.rules, rs)
		for _, m := range r.Match {
			e.byEvent[m] = append(e.byEvent[m], rs)
		}
	}
	return e
}

// Rules returns the engine's rules in config order.
func (e *Engine) Rules() []*Rule {
	out := make([]*Rule, len(e.rules))
	for i, r := range e.rules {
		out[i] = r.Rule
	}
	return out
}

// Stats reports every rule's keys, incidents and evictions.
func (e *Engine) Stats() []Stats {
	out := make([]Stats, len(e.rules))
	for i, r := range e.rules {
		out[i] = Stats{Rule: r.Name, Keys: len(r.keys), Incidents: len(r.incidents),
			Evicted: r.evicted, Expired: r.expired}
	}
	return out
}

// Override returns the override in force at t, as the engine knows it.
func (e *Engine) Override(t time.Time) (*override.Override, bool) { return e.ov.Active(t) }

// Now returns the engine's event-time clock (the newest event time seen).
func (e *Engine) Now() time.Time { return e.clock.Max() }

// Event processes one event: override changes, then counting for every rule that matches its
// event type. Alert records it causes (resolutions of earlier incidents, then the event's own
// alerts) are appended to out.
func (e *Engine) Event(ev *sdk.Event, out []sdk.Event) []sdk.Event {
	if ev.Kind == sdk.KindLog || ev.Kind == "" {
		if !ev.Time.IsZero() {
			e.clock.Observe(ev.Time)
			out = e.resolveUntil(e.clock.Max().UnixNano(), out)
			out = e.expireOverride(e.clock.Max(), out)
		}
	}
	if override.IsChange(ev) {
		at := ev
		if at.Time.IsZero() {
			c := *ev
			c.Time = e.fallbackTime()
			at = &c
		}
		if rec := e.ov.Apply(at, e.opts.Override); rec != nil && e.opts.RecordOverrides {
			out = append(out, *rec)
		}
	}
	if ev.Kind != sdk.KindLog && ev.Kind != "" {
		e.approved.observe(ev)
		return out
	}
	typ := ev.Field(parse.FieldEvent)
	if typ == "" {
		return out
	}
	rs := e.byEvent[typ]
	if len(rs) == 0 {
		return out
	}
	t := ev.Time
	if t.IsZero() {
		t = e.fallbackTime()
	}
	for _, r := range rs {
		out = e.count(r, ev, t, out)
	}
	return out
}

// expireOverride ends an override whose TTL passed by now (recording it when asked to).
func (e *Engine) expireOverride(now time.Time, out []sdk.Event) []sdk.Event {
	if rec := e.ov.Expire(now); rec != nil && e.opts.RecordOverrides {
		out = append(out, *rec)
	}
	return out
}

func (e *Engine) fallbackTime() time.Time {
	if m := e.clock.Max(); !m.IsZero() {
		return m
	}
	if !e.lastWall.IsZero() {
		return e.lastWall
	}
	return time.Unix(0, 0).UTC()
}

// EndBatch moves time on after a batch: with the newest event time, or the wall clock while
// the input is quiet (live runs), and resolves incidents whose windows have drained. With
// wm.Final every open incident is resolved (end of a replay).
func (e *Engine) EndBatch(wm sdk.Watermark, out []sdk.Event) []sdk.Event {
	if !wm.Time.IsZero() {
		e.lastWall = wm.Time
	}
	now := e.clock.EndBatch(wm)
	if !now.IsZero() {
		out = e.expireOverride(now, out)
		out = e.resolveUntil(now.UnixNano(), out)
		e.expireKeys(now.UnixNano(), -1)
	}
	if wm.Final {
		out = e.resolveUntil(1<<63-1-e.lateness, out)
	}
	return out
}

func (e *Engine) count(r *ruleState, ev *sdk.Event, t time.Time, out []sdk.Event) []sdk.Event {
	if ok, _ := r.counts(ev, e.approved.approved); !ok {
		return out
	}
	tn := t.UnixNano()
	key := r.keyOf(ev)
	ks := e.touch(r, key)
	seq := r.ring.add(ev.Line)
	res := ks.add(tn, seq, r.w, r.Threshold)
	// History is kept relative to the key's own newest event, so the lines of an origin that
	// lags behind the others are still counted together.
	ks.prune(ks.newest()-r.w-e.lateness, r.w)
	ks.touchedSec = secondsOf(max(e.clock.Max().UnixNano(), tn))
	e.expireKeys(e.clock.Max().UnixNano(), 2)

	inc := r.incidents[key]
	if !res.over {
		if inc != nil && tn > inc.lastSeen {
			inc.lastSeen = tn
		}
		return out
	}
	if inc == nil {
		inc = &incident{key: key, opened: tn, firstSeen: res.start, lastSeen: tn, lastOver: res.lastOver,
			count: res.count, peak: res.count, lastNotify: tn, origin: ev.Origin, source: ev.Source,
			state: sdk.StateFiring}
		inc.fingerprint = fingerprint(e.opts.Instance, r.Name, key, res.start)
		if r.Overridable {
			if o, ok := e.ov.Active(t); ok {
				inc.state, inc.suppressedBy, inc.reason = sdk.StateSuppressed, o.Actor, o.Reason
			}
		}
		inc.excerpt = r.excerpt(ks, tn)
		r.incidents[key] = inc
		e.schedule(r, inc, e.clock.Max().UnixNano())
		return append(out, e.alert(r, inc, inc.state, t, inc.excerpt))
	}
	inc.count = res.count
	if res.count > inc.peak {
		inc.peak = res.count
	}
	if tn > inc.lastSeen {
		inc.lastSeen = tn
	}
	if res.lastOver > inc.lastOver {
		inc.lastOver = res.lastOver
		e.schedule(r, inc, e.clock.Max().UnixNano())
	}
	if inc.state == sdk.StateSuppressed {
		if _, ok := e.ov.Active(t); !ok || !r.Overridable {
			// The override ended while the burst goes on: page now.
			inc.state, inc.suppressedBy, inc.reason = sdk.StateFiring, "", ""
			inc.lastNotify = tn
			return append(out, e.alert(r, inc, sdk.StateFiring, t, r.excerpt(ks, tn)))
		}
	}
	if r.Realert > 0 && tn-inc.lastNotify >= int64(r.Realert) {
		inc.realert++
		inc.lastNotify = tn
		return append(out, e.alert(r, inc, inc.state, t, r.excerpt(ks, tn)))
	}
	return out
}

// touch returns the key's window, creating it (and evicting the least recently seen key when
// the rule is full) and moving it to the front of the recency list.
func (e *Engine) touch(r *ruleState, key string) *keyState {
	ks, ok := r.keys[key]
	if ok {
		r.moveFront(ks)
		return ks
	}
	for len(r.keys) >= r.MaxKeys && r.tail != nil {
		r.drop(r.tail)
		r.evicted++
	}
	ks = &keyState{key: key, hits: make([]hit, 0, 1)}
	r.keys[key] = ks
	r.pushFront(ks)
	return ks
}

// expireKeys drops keys (from the least recently seen end) that counted nothing while the
// stream clock moved on by a window and the lateness allowance: no later line can share a
// window with their events. limit < 0 means no limit.
func (e *Engine) expireKeys(now int64, limit int) {
	for _, r := range e.rules {
		cutoff := now - r.w - e.lateness
		for n := 0; r.tail != nil && (limit < 0 || n < limit); n++ {
			if r.tail.touchedNs() > cutoff {
				break
			}
			r.drop(r.tail)
			r.expired++
		}
	}
}

func (r *ruleState) pushFront(ks *keyState) {
	ks.prev, ks.next = nil, r.head
	if r.head != nil {
		r.head.prev = ks
	}
	r.head = ks
	if r.tail == nil {
		r.tail = ks
	}
}

func (r *ruleState) unlink(ks *keyState) {
	if ks.prev != nil {
		ks.prev.next = ks.next
	} else {
		r.head = ks.next
	}
	if ks.next != nil {
		ks.next.prev = ks.prev
	} else {
		r.tail = ks.prev
	}
	ks.prev, ks.next = nil, nil
}

func (r *ruleState) moveFront(ks *keyState) {
	if r.head == ks {
		return
	}
	r.unlink(ks)
	r.pushFront(ks)
}

func (r *ruleState) drop(ks *keyState) {
	r.unlink(ks)
	delete(r.keys, ks.key)
}

// excerpt returns the lines of the newest hits in the window ending at t, oldest first.
func (r *ruleState) excerpt(ks *keyState, t int64) []string {
	if r.Excerpt == 0 || ks == nil {
		return nil
	}
	lines := make([]string, 0, r.Excerpt)
	for j := len(ks.hits) - 1; j >= 0 && len(lines) < r.Excerpt; j-- {
		h := ks.hits[j]
		if h.t > t {
			continue
		}
		if h.t <= t-r.w {
			break
		}
		if l, ok := r.ring.get(h.seq); ok {
			lines = append(lines, l)
		}
	}
	for i, j := 0, len(lines)-1; i < j; i, j = i+1, j-1 {
		lines[i], lines[j] = lines[j], lines[i]
	}
	return lines
}

func (e *Engine) alert(r *ruleState, inc *incident, state string, t time.Time, excerpt []string) sdk.Event {
	a := &sdk.Alert{
		Rule:        r.Name,
		Severity:    r.Severity,
		State:       state,
		Key:         inc.key,
		Count:       inc.count,
		Threshold:   r.Threshold,
		Window:      r.Window,
		FirstSeen:   time.Unix(0, inc.firstSeen).UTC(),
		LastSeen:    time.Unix(0, inc.lastSeen).UTC(),
		Excerpt:     excerpt,
		Fingerprint: inc.fingerprint,
		Realert:     inc.realert,
	}
	if state == sdk.StateSuppressed {
		a.SuppressedBy, a.OverrideReason = inc.suppressedBy, inc.reason
	}
	if state == sdk.StateResolved {
		a.Count = inc.peak
		a.Realert = 0
	}
	a.Explanation = Explain(r.Rule, a)
	return sdk.Event{Time: t.UTC(), Kind: sdk.KindAlert, Origin: inc.origin, Source: inc.source, Alert: a}
}

// fingerprint identifies an incident: instance, rule, key and the start of the window that
// opened it. A replay of the same lines gives the same fingerprint.
func fingerprint(instance, rule, key string, start int64) string {
	h := sha256.New()
	h.Write([]byte(instance))
	h.Write([]byte{0})
	h.Write([]byte(rule))
	h.Write([]byte{0})
	h.Write([]byte(key))
	h.Write([]byte{0})
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(start))
	h.Write(b[:])
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Resolution schedule: a heap of (resolve time, rule, key) with lazy invalidation.

type resolveEntry struct {
	at   int64
	rule int
	key  string
	ver  uint64
}

type resolveHeap []resolveEntry

func (h resolveHeap) Len() int { return len(h) }
func (h resolveHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	if h[i].rule != h[j].rule {
		return h[i].rule < h[j].rule
	}
	return h[i].key < h[j].key
}
func (h resolveHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *resolveHeap) Push(x any)   { *h = append(*h, x.(resolveEntry)) }
func (h *resolveHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (e *Engine) schedule(r *ruleState, inc *incident, clock int64) {
	inc.ver++
	inc.due = max(inc.lastOver, clock) + r.w
	heap.Push(&e.resolve, resolveEntry{at: inc.due, rule: r.idx, key: inc.key, ver: inc.ver})
}

// resolveUntil resolves every incident whose window drained (plus the lateness allowance)
// by now.
func (e *Engine) resolveUntil(now int64, out []sdk.Event) []sdk.Event {
	for len(e.resolve) > 0 && e.resolve[0].at+e.lateness <= now {
		ent := heap.Pop(&e.resolve).(resolveEntry)
		r := e.rules[ent.rule]
		inc, ok := r.incidents[ent.key]
		if !ok || inc.ver != ent.ver {
			continue
		}
		delete(r.incidents, ent.key)
		out = append(out, e.alert(r, inc, sdk.StateResolved, time.Unix(0, inc.lastOver+r.w), inc.excerpt))
	}
	if len(e.resolve) > 4*e.openIncidents()+64 {
		e.compactSchedule()
	}
	return out
}

func (e *Engine) openIncidents() int {
	n := 0
	for _, r := range e.rules {
		n += len(r.incidents)
	}
	return n
}

// compactSchedule drops stale heap entries.
func (e *Engine) compactSchedule() {
	live := e.resolve[:0]
	for _, ent := range e.resolve {
		if inc, ok := e.rules[ent.rule].incidents[ent.key]; ok && inc.ver == ent.ver {
			live = append(live, ent)
		}
	}
	e.resolve = live
	heap.Init(&e.resolve)
}

// sortedIncidents returns a rule's incidents in key order (for snapshots).
func (r *ruleState) sortedIncidents() []*incident {
	out := make([]*incident, 0, len(r.incidents))
	for _, inc := range r.incidents {
		out = append(out, inc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// ring keeps the newest counted lines of a rule for alert excerpts, so that excerpts cost a
// bounded amount of memory whatever the number of keys.
const ringSize = 512

// maxExcerptLine bounds one excerpt line.
const maxExcerptLine = 512

type ring struct {
	lines [ringSize]string
	seqs  [ringSize]uint32
	next  uint32
}

func (g *ring) add(line []byte) uint32 {
	g.next++
	if g.next == 0 {
		g.next = 1
	}
	i := g.next % ringSize
	g.lines[i] = excerptLine(line)
	g.seqs[i] = g.next
	return g.next
}

func (g *ring) get(seq uint32) (string, bool) {
	if seq == 0 {
		return "", false
	}
	i := seq % ringSize
	if g.seqs[i] != seq {
		return "", false
	}
	return g.lines[i], true
}

func excerptLine(line []byte) string {
	if len(line) > maxExcerptLine {
		line = line[:maxExcerptLine]
	}
	for _, c := range line {
		if c == 0x1b {
			return string(stripEscapes(line))
		}
	}
	return string(line)
}

func stripEscapes(line []byte) []byte {
	out := make([]byte, 0, len(line))
	for i := 0; i < len(line); i++ {
		if line[i] == 0x1b && i+1 < len(line) && line[i+1] == '[' {
			j := i + 2
			for j < len(line) && (line[j] < 0x40 || line[j] > 0x7e) {
				j++
			}
			i = j
			continue
		}
		out = append(out, line[i])
	}
	return out
}
