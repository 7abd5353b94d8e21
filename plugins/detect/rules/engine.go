package rules

import (
	"container/heap"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
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
	// Lateness is how far behind its origin's newest line a line may arrive and still be
	// counted exactly; windows keep that much extra history and incidents resolve that much
	// later.
	Lateness time.Duration
	// MaxFutureSkew: a line dated more than this ahead of its arrival is counted at its
	// arrival time (0: eventtime.DefaultMaxFutureSkew).
	MaxFutureSkew time.Duration
	// Override bounds the TTL of override declarations seen in the stream.
	Override override.Config
	// AllowOrigins are the origins whose log lines may declare an override (none by default;
	// operators' overrides always count).
	AllowOrigins override.Origins
	// RecordOverrides makes the engine emit the audit record of every override change (as
	// processor "override" does), for pipelines without an override processor before rules.
	RecordOverrides bool
	// IncidentUpdates makes the engine report open incidents' progress between their alert
	// records (sdk.IncidentUpdate: the count so far and the entities their events named), at
	// the end of a batch, at most once a second per incident, and before each resolution.
	IncidentUpdates bool
}

// Engine evaluates rules over a stream of parsed events. It is not safe for concurrent use.
type Engine struct {
	opts    Options
	rules   []*ruleState
	byEvent map[string][]*ruleState
	ov      override.State
	// clock is the newest counted time over every origin: it ends overrides and dates what
	// has no time of its own. Windows and incidents never use it (see originClock).
	clock   eventtime.Clock
	origins map[string]*originClock
	// lastOrigin and lastAll are the clocks origin returned last for a line's origin and for
	// allOrigins: lines come in runs of one origin, and a hit spares the map lookup. Each is
	// nil or in origins (forgetOrigin clears it).
	lastOrigin, lastAll *originClock
	// order is origins sorted by name (rebuilt when an origin comes or goes), so that the
	// records a batch's end produces come in the same order in every run.
	order    []*originClock
	useSeq   uint64
	lastWall time.Time
	lateness int64
	skew     time.Duration
	approved approvals
	closed   closedSet
	// sanitize is set by Restore: the first arrival clock seen drops the state dated beyond
	// it (written before lines from the future were held to their arrival).
	sanitize bool
	counters Counters
	keyBuf   []byte
	// across: some rule counts across origins (Rule.AcrossOrigins), in the allOrigins clock.
	across bool
	// lastSnapshot is the size of the last snapshot, to size the next one's buffer.
	lastSnapshot int
	// dirty are the incidents touched since their last update (IncidentUpdates), in the
	// order they were first touched; bounded by the open incidents.
	dirty []dirtyIncident
}

// Counters count the lines the engine did not take at face value.
type Counters struct {
	// FutureSkew: lines dated more than max_future_skew ahead of their arrival, counted at
	// their arrival. OutOfRange: lines whose time no real clock has (year 0, year 9999).
	FutureSkew uint64 `json:"future_skew"`
	OutOfRange uint64 `json:"out_of_range"`
	// Replayed: lines read again after a restore, older than what the snapshot had counted.
	Replayed uint64 `json:"replayed"`
	// OverridesRefused: override lines from origins allow_origins does not name.
	OverridesRefused uint64 `json:"overrides_refused"`
	// Sanitized: state entries a restored snapshot held beyond any real clock, dropped.
	Sanitized uint64 `json:"sanitized"`
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
	idx int
	w   int64
	// keys and incidents are by state key (stateKey: the rule's key and the origin).
	keys       map[string]*keyState
	head, tail *keyState // head: most recently seen
	incidents  map[string]*incident
	ring       ring
	evicted    uint64
	expired    uint64
	// hosts are the hosts of the counted events, by state key (see hosts.go).
	hosts map[string][]hostHit
}

type incident struct {
	key          string // the rule's key
	state        string
	fingerprint  string
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
	// due is when the incident resolves in its origin's time: a window after its last
	// over-threshold time (plus the lateness allowance).
	due int64
	ver uint64
	// silent: the incident was already closed before (its fingerprint is in the closed
	// set), or opened by a line another detector had judged (FieldReplayed): the lines are
	// being read again, and nothing is recorded twice.
	silent bool
	// total counts the events of the incident since it opened; ents are their entities;
	// dirty: touched since the last update, at lastUpdate (wall clock). IncidentUpdates only;
	// not in snapshots (after a restore the total starts again from the window's count).
	total      int64
	ents       incidentEntities
	dirty      bool
	lastUpdate time.Time
}

// NewEngine builds an engine for checked rules.
func NewEngine(rules []*Rule, o Options) *Engine {
	if o.Override == (override.Config{}) {
		o.Override = override.DefaultConfig
	}
	if o.MaxFutureSkew <= 0 {
		o.MaxFutureSkew = eventtime.DefaultMaxFutureSkew
	}
	e := &Engine{opts: o, byEvent: map[string][]*ruleState{}, lateness: int64(o.Lateness), skew: o.MaxFutureSkew,
		approved: approvals{}, origins: map[string]*originClock{}, closed: newClosedSet()}
	for i, r := range rules {
		rs := &ruleState{Rule: r, idx: i, w: int64(r.Window), keys: map[string]*keyState{},
			incidents: map[string]*incident{}}
		e.rules = append(e.rules, rs)
		for _, m := range r.Match {
			e.byEvent[m] = append(e.byEvent[m], rs)
		}
		e.across = e.across || r.AcrossOrigins
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

// Counters returns the counts of lines not taken at face value.
func (e *Engine) Counters() Counters { return e.counters }

// Override returns the override in force at t, as the engine knows it.
func (e *Engine) Override(t time.Time) (*override.Override, bool) { return e.ov.Active(t) }

// Now returns the engine's event-time clock (the newest counted event time over all origins).
func (e *Engine) Now() time.Time { return e.clock.Max() }

// Event processes one event whose arrival time is unknown (see EventAt).
func (e *Engine) Event(ev *sdk.Event, out []sdk.Event) []sdk.Event {
	return e.EventAt(ev, time.Time{}, out)
}

// EventAt processes one event: its time judged against its arrival (the source's stamp or
// the wall clock; zero when unknown: then the wall clock of the last watermark, if any),
// override changes, then counting for every rule that matches its event type. Alert records
// it causes (resolutions of earlier incidents of its origin, then the event's own alerts)
// are appended to out. A log event not counted at its own time is marked (eventtime.Apply).
func (e *Engine) EventAt(ev *sdk.Event, arrival time.Time, out []sdk.Event) []sdk.Event {
	isLog := ev.Kind == sdk.KindLog || ev.Kind == ""
	var o, all *originClock
	if isLog {
		if arrival.IsZero() {
			arrival = e.lastWall
		}
		if e.sanitize && eventtime.Valid(arrival) {
			out = e.sanitizeBeyond(arrival.Add(e.skew).UnixNano(), out)
		}
		eventtime.Apply(ev, arrival, e.skew)
		judged := ev.Field(eventtime.FieldClock) != ""
		switch ev.Field(eventtime.FieldClock) {
		case eventtime.ClockFutureSkew:
			e.counters.FutureSkew++
		case eventtime.ClockOutOfRange:
			e.counters.OutOfRange++
		}
		o = e.origin(ev.Origin, &out)
		if o.replayUntil != 0 && !ev.Time.IsZero() && ev.Time.UnixNano() < o.replayUntil {
			// Counted before the snapshot this engine was restored from: nothing to do twice.
			e.counters.Replayed++
			return out
		}
		if e.across {
			all = e.origin(allOrigins, &out)
		}
		if !ev.Time.IsZero() && !judged {
			// Only a line's own (valid, not future) time moves its origin's clock.
			o.observe(ev.Time.UnixNano())
			e.clock.Observe(ev.Time)
			out = e.resolveOrigin(o, o.wm, out)
			if all != nil {
				all.observe(ev.Time.UnixNano())
				out = e.resolveOrigin(all, all.wm, out)
			}
			out = e.expireOverride(e.clock.Max(), out)
		}
	}
	if override.IsChange(ev) {
		out = e.overrideChange(ev, isLog, out)
	}
	if !isLog {
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
		t = e.fallbackTime(o)
	}
	for _, r := range rs {
		if r.AcrossOrigins {
			out = e.count(r, ev, t, all, allOrigins, out)
		} else {
			out = e.count(r, ev, t, o, ev.Origin, out)
		}
	}
	return out
}

// overrideChange applies an override change, unless a log line from an origin that may not
// declare overrides made it.
func (e *Engine) overrideChange(ev *sdk.Event, isLog bool, out []sdk.Event) []sdk.Event {
	at := ev
	if at.Time.IsZero() {
		c := *ev
		c.Time = e.fallbackTime(nil)
		at = &c
	}
	if isLog && !e.opts.AllowOrigins.Allows(ev.Origin) {
		// With an override processor upstream its record is what counts (it judged the line
		// by its own allow_origins); refusals are reported by whoever records overrides.
		if e.opts.RecordOverrides {
			e.counters.OverridesRefused++
			if rec := e.ov.Refuse(at, e.opts.AllowOrigins.String()); rec != nil {
				out = append(out, *rec)
			}
		}
		return out
	}
	if rec := e.ov.Apply(at, e.opts.Override); rec != nil && e.opts.RecordOverrides {
		out = append(out, *rec)
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

// fallbackTime dates an event that has none: its origin's time, else the newest time, else
// the wall clock.
func (e *Engine) fallbackTime(o *originClock) time.Time {
	if o != nil && o.wm != 0 {
		return time.Unix(0, o.wm).UTC()
	}
	if m := e.clock.Max(); !m.IsZero() {
		return m
	}
	if !e.lastWall.IsZero() {
		return e.lastWall
	}
	return time.Unix(0, 0).UTC()
}

// EndBatch moves time on after a batch: every origin's clock, moved on by the wall clock
// while the origin is quiet (live runs), resolves the incidents whose windows have drained.
// With wm.Final every open incident is resolved (end of a replay).
func (e *Engine) EndBatch(wm sdk.Watermark, out []sdk.Event) []sdk.Event {
	if eventtime.Valid(wm.Time) {
		e.lastWall = wm.Time
		if e.sanitize {
			out = e.sanitizeBeyond(wm.Time.Add(e.skew).UnixNano(), out)
		}
	}
	for _, o := range e.sortedOrigins() {
		if o.moved || o.wallAt.IsZero() {
			o.wallAt = e.lastWall
		}
		o.moved = false
		out = e.resolveOrigin(o, o.now(e.lastWall), out)
	}
	now := e.clock.EndBatch(sdk.Watermark{Time: e.lastWall})
	if !now.IsZero() {
		out = e.expireOverride(now, out)
	}
	e.expireKeys(-1)
	if wm.Final {
		for _, o := range e.sortedOrigins() {
			out = e.resolveOrigin(o, math.MaxInt64, out)
		}
	}
	return e.flushUpdates(out)
}

// count counts an event for a rule, in the window of its key and origin (allOrigins for a rule
// that counts across origins), judged in that origin's clock o.
func (e *Engine) count(r *ruleState, ev *sdk.Event, t time.Time, o *originClock, origin string, out []sdk.Event) []sdk.Event {
	if ok, _ := r.counts(ev, e.approved.approved); !ok {
		return out
	}
	tn := t.UnixNano()
	key := r.keyOf(ev)
	// The state key is built in a reused buffer: looking it up allocates nothing, only a new
	// key's window does.
	e.keyBuf = append(append(append(e.keyBuf[:0], key...), 0), origin...)
	ks := e.touch(r, e.keyBuf)
	sk := ks.key
	var ents entityTuple
	if e.opts.IncidentUpdates {
		ents = entitiesOf(ev)
	}
	seq := r.ring.add(ev.Line, tn, sk, &ents)
	res := ks.add(tn, seq, r.w, r.Threshold)
	now := o.wm
	if now == 0 {
		now = tn
	}
	// History is kept relative to the origin's own time: a line of another origin, however
	// far ahead, never drops it.
	ks.prune(now-r.w-e.lateness, r.w)
	if h := ev.Field(FieldHost); h != "" {
		r.noteHost(sk, tn, h, now-r.w-e.lateness)
	}
	ks.touchedSec = secondsOf(now)
	e.expireKeys(2)

	inc := r.incidents[sk]
	if !res.over {
		if inc != nil && tn > inc.lastSeen {
			inc.lastSeen = tn
		}
		if inc != nil {
			e.touched(r, inc, &ents)
		}
		return out
	}
	late := res.lastOver+r.w+e.lateness <= now
	if inc != nil && late && res.lastOver < inc.firstSeen {
		// A window that drained long ago in this origin's time, older than the open incident:
		// a stray old line, not part of this burst.
		return out
	}
	if inc == nil {
		inc = &incident{key: key, opened: tn, firstSeen: res.start, lastSeen: tn, lastOver: res.lastOver,
			count: res.count, peak: res.count, lastNotify: tn, origin: ev.Origin, source: ev.Source,
			state: sdk.StateFiring}
		inc.fingerprint = fingerprint(e.opts.Instance, r.Name, key, origin, res.start)
		// An incident opened by a line another detector already judged (FieldReplayed: read
		// again when this detector took its partition over) was told by that detector.
		inc.silent = e.closed.has(inc.fingerprint) || ev.Field(FieldReplayed) != ""
		if r.Overridable {
			if ov, ok := e.ov.Active(t); ok {
				inc.state, inc.suppressedBy, inc.reason = sdk.StateSuppressed, ov.Actor, ov.Reason
			}
		}
		inc.excerpt = r.excerpt(ks, tn)
		r.incidents[sk] = inc
		o.open++
		e.schedule(r, sk, inc, o)
		if inc.silent {
			return out
		}
		if e.opts.IncidentUpdates {
			inc.total = res.count
			inc.ents.addValue(keyField, key)
			e.harvest(r, inc, sk, res.start, tn)
			e.markDirty(r, inc)
		}
		return append(out, e.hostedAlert(r, sk, inc, inc.state, t, inc.excerpt))
	}
	newer := tn > inc.lastSeen
	inc.count = res.count
	e.touched(r, inc, &ents)
	if res.count > inc.peak {
		inc.peak = res.count
	}
	if newer {
		inc.lastSeen = tn
	}
	if res.lastOver > inc.lastOver {
		inc.lastOver = res.lastOver
		e.schedule(r, sk, inc, o)
	}
	if !newer || inc.silent {
		// A line no newer than the incident has seen (read again, or late) changes what the
		// incident counts, never what it has told.
		return out
	}
	if inc.state == sdk.StateSuppressed {
		if _, ok := e.ov.Active(t); !ok || !r.Overridable {
			// The override ended while the burst goes on: page now.
			inc.state, inc.suppressedBy, inc.reason = sdk.StateFiring, "", ""
			inc.lastNotify = tn
			return append(out, e.hostedAlert(r, sk, inc, sdk.StateFiring, t, r.excerpt(ks, tn)))
		}
	}
	if r.Realert > 0 && tn-inc.lastNotify >= int64(r.Realert) {
		inc.realert++
		inc.lastNotify = tn
		return append(out, e.hostedAlert(r, sk, inc, inc.state, t, r.excerpt(ks, tn)))
	}
	return out
}

// hostedAlert is alert with the incident's per-host counts (hosts.go).
func (e *Engine) hostedAlert(r *ruleState, sk string, inc *incident, state string, t time.Time, excerpt []string) sdk.Event {
	ev := e.alert(r, inc, state, t, excerpt)
	r.withHosts(&ev, sk, inc)
	return ev
}

// touch returns the key's window, creating it (and evicting the least recently seen key when
// the rule is full) and moving it to the front of the recency list.
func (e *Engine) touch(r *ruleState, sk []byte) *keyState {
	ks, ok := r.keys[string(sk)]
	if ok {
		r.moveFront(ks)
		return ks
	}
	for len(r.keys) >= r.MaxKeys && r.tail != nil {
		r.drop(r.tail)
		r.evicted++
	}
	key := string(sk)
	ks = &keyState{key: key, hits: make([]hit, 0, 1)}
	r.keys[key] = ks
	r.pushFront(ks)
	return ks
}

// expireKeys drops keys (from the least recently seen end) that counted nothing while their
// origin's time moved on by a window and the lateness allowance: no later line of that origin
// can share a window with their events. limit < 0 means no limit.
func (e *Engine) expireKeys(limit int) {
	for _, r := range e.rules {
		for n := 0; r.tail != nil && (limit < 0 || n < limit); n++ {
			if now, ok := e.originNow(r.tail.key); ok && r.tail.touchedNs() > now-r.w-e.lateness {
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
	delete(r.hosts, ks.key)
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

// fingerprint identifies an incident: instance, rule, key, origin and the start of the window
// that opened it. A replay of the same lines gives the same fingerprint.
func fingerprint(instance, rule, key, origin string, start int64) string {
	h := sha256.New()
	h.Write([]byte(instance))
	h.Write([]byte{0})
	h.Write([]byte(rule))
	h.Write([]byte{0})
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write([]byte(origin))
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

// schedule (re)sets when an incident resolves: a window after its last over-threshold time,
// in its origin's time.
func (e *Engine) schedule(r *ruleState, sk string, inc *incident, o *originClock) {
	inc.ver++
	inc.due = inc.lastOver + r.w
	o.push(resolveEntry{at: inc.due, rule: r.idx, key: sk, ver: inc.ver})
}

// resolveOrigin resolves every incident of an origin whose window drained (plus the lateness
// allowance) by now, the origin's time.
func (e *Engine) resolveOrigin(o *originClock, now int64, out []sdk.Event) []sdk.Event {
	for len(o.pending) > 0 && o.pending[0].at <= now-e.lateness {
		ent := heap.Pop(&o.pending).(resolveEntry)
		r := e.rules[ent.rule]
		inc, ok := r.incidents[ent.key]
		if !ok || inc.ver != ent.ver {
			continue
		}
		delete(r.incidents, ent.key)
		o.open--
		e.closed.add(inc.fingerprint)
		if inc.dirty {
			out = append(out, e.update(r, inc))
		}
		if !inc.silent {
			out = append(out, e.alert(r, inc, sdk.StateResolved, time.Unix(0, inc.lastOver+r.w), inc.excerpt))
		}
	}
	if len(o.pending) > 4*o.open+64 {
		e.compactSchedule(o)
	}
	return out
}

// compactSchedule drops an origin's stale heap entries.
func (e *Engine) compactSchedule(o *originClock) {
	live := o.pending[:0]
	for _, ent := range o.pending {
		if inc, ok := e.rules[ent.rule].incidents[ent.key]; ok && inc.ver == ent.ver {
			live = append(live, ent)
		}
	}
	o.pending = live
	heap.Init(&o.pending)
}

// sortedIncidents returns the state keys of a rule's incidents in order (for snapshots).
func (r *ruleState) sortedIncidents() []string {
	out := make([]string, 0, len(r.incidents))
	for sk := range r.incidents {
		out = append(out, sk)
	}
	sort.Strings(out)
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
	// The time, state key and entities of each line, for the entities of an incident that
	// opens (IncidentUpdates).
	ts   [ringSize]int64
	keys [ringSize]string
	ents [ringSize]entityTuple
	next uint32
}

func (g *ring) add(line []byte, t int64, key string, ents *entityTuple) uint32 {
	g.next++
	if g.next == 0 {
		g.next = 1
	}
	i := g.next % ringSize
	g.lines[i] = excerptLine(line)
	g.seqs[i] = g.next
	g.ts[i], g.keys[i], g.ents[i] = t, key, *ents
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
