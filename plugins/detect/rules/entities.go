package rules

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tda-dev/tda/plugins/detect/parse"
	"github.com/tda-dev/tda/sdk"
)

// entityFields are the event fields whose values name who or what an incident touched.
var entityFields = [...]string{parse.FieldUserID, parse.FieldUsername, parse.FieldActor, parse.FieldIP,
	parse.FieldTable, parse.FieldRevision}

// entityTuple holds an event's values of entityFields ("" where it has none).
type entityTuple [len(entityFields)]string

func entitiesOf(ev *sdk.Event) (t entityTuple) {
	if len(ev.Fields) == 0 {
		return t
	}
	for i, f := range entityFields {
		t[i] = ev.Fields[f]
	}
	return t
}

// MaxIncidentEntities bounds the distinct values one incident collects over all fields; the
// values beyond it are not collected and its updates say so (entities_truncated).
const MaxIncidentEntities = 10000

// maxEntityLen bounds one collected value.
const maxEntityLen = 256

// updateEvery is the least wall-clock time between two updates of an incident while it fires
// (a replay, which has no wall clock, reports at the end of every batch).
const updateEvery = time.Second

// incidentEntities collects an incident's distinct entity values and the ones not yet
// reported.
type incidentEntities struct {
	seen      map[string]struct{} // field index byte + value
	fresh     map[string][]string
	truncated bool
}

func (x *incidentEntities) add(t *entityTuple) {
	for i, v := range t {
		x.addValue(i, v)
	}
}

// keyField is the index addValue takes for the rule's key (after entityFields).
const keyField = len(entityFields)

func entityFieldName(i int) string {
	if i == keyField {
		return "key"
	}
	return entityFields[i]
}

func (x *incidentEntities) addValue(i int, v string) {
	if v == "" || v == "-" {
		return
	}
	if len(v) > maxEntityLen {
		n := maxEntityLen
		for n > 0 && !utf8.RuneStart(v[n]) {
			n--
		}
		v = v[:n]
	}
	k := string(rune('0'+i)) + v
	if _, ok := x.seen[k]; ok {
		return
	}
	if len(x.seen) >= MaxIncidentEntities {
		x.truncated = true
		return
	}
	if x.seen == nil {
		x.seen = map[string]struct{}{}
	}
	v = strings.Clone(v) // never keep a batch's memory alive
	x.seen[string(rune('0'+i))+v] = struct{}{}
	if x.fresh == nil {
		x.fresh = map[string][]string{}
	}
	name := entityFieldName(i)
	x.fresh[name] = append(x.fresh[name], v)
}

// take returns the values not reported yet and forgets them.
func (x *incidentEntities) take() map[string][]string {
	f := x.fresh
	x.fresh = nil
	return f
}

// dirtyIncident is an incident with something to report.
type dirtyIncident struct {
	r   *ruleState
	inc *incident
}

// touched records an event of an open incident: its count and entities, to be reported by
// the next update.
func (e *Engine) touched(r *ruleState, inc *incident, t *entityTuple) {
	if !e.opts.IncidentUpdates || inc.silent {
		return
	}
	inc.total++
	inc.ents.add(t)
	e.markDirty(r, inc)
}

func (e *Engine) markDirty(r *ruleState, inc *incident) {
	if inc.dirty {
		return
	}
	inc.dirty = true
	e.dirty = append(e.dirty, dirtyIncident{r: r, inc: inc})
}

// harvest collects the entities of the events that opened an incident: the lines of the
// rule's excerpt ring counted in the key's window (the ring holds the newest 512 lines of the
// rule; older ones in a long window are not there to read).
func (e *Engine) harvest(r *ruleState, inc *incident, sk string, from, to int64) {
	for i := range r.ring.lines {
		if r.ring.seqs[i] == 0 || r.ring.keys[i] != sk || r.ring.ts[i] < from || r.ring.ts[i] > to {
			continue
		}
		inc.ents.add(&r.ring.ents[i])
	}
}

// update returns the update of an incident and marks it reported.
func (e *Engine) update(r *ruleState, inc *incident) sdk.Event {
	inc.dirty = false
	inc.lastUpdate = e.lastWall
	u := sdk.IncidentUpdate{Fingerprint: inc.fingerprint, Rule: r.Name, Key: inc.key, Count: max(inc.total, inc.peak),
		Entities: inc.ents.take(), Truncated: inc.ents.truncated}
	return u.Event(time.Unix(0, inc.lastSeen), inc.source, inc.origin)
}

// flushUpdates reports the incidents touched since their last update, each at most once per
// updateEvery of wall-clock time (the others wait for a later batch or their resolution).
func (e *Engine) flushUpdates(out []sdk.Event) []sdk.Event {
	kept := e.dirty[:0]
	for _, d := range e.dirty {
		if !d.inc.dirty {
			continue // reported with its resolution
		}
		if !e.lastWall.IsZero() && !d.inc.lastUpdate.IsZero() && e.lastWall.Sub(d.inc.lastUpdate) < updateEvery {
			kept = append(kept, d)
			continue
		}
		out = append(out, e.update(d.r, d.inc))
	}
	clear(e.dirty[len(kept):])
	e.dirty = kept
	return out
}
