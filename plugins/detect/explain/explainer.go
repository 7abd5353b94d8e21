// Package explain replays log lines through the parsers of a detection pipeline and the rules
// engine of one rules processor, and reports for every line what detection made of it: the
// format recognised, the event and its fields, and for every rule matching the event whether
// it counted it or why not. The detect plugin's "explain" action (`tda explain`) prints it.
package explain

import (
	"sort"
	"time"

	"github.com/tda-dev/tda/plugins/detect/override"
	"github.com/tda-dev/tda/plugins/detect/parse"
	"github.com/tda-dev/tda/plugins/detect/rules"
	"github.com/tda-dev/tda/sdk"
)

// LineParser is what the explainer needs of a detection parser: *parse.Parser. A parser that
// can say why it dropped the last line's event also has LastIgnored() string.
type LineParser interface {
	Apply(ev *sdk.Event) string
}

// Line is what explain reports about one input line. Its JSON form is one line of
// `tda explain -json`; the keys and their order are stable (docs/detection.md).
type Line struct {
	File string `json:"file"`
	Line int    `json:"line"`
	// Time is the line's event time as detection sees it (RFC 3339, UTC); "" when unknown.
	Time string `json:"time"`
	// Format is the format the parser recognised for an event line; "" for other lines.
	Format string `json:"format"`
	// Event is the event type; "" when the line is not a detection event.
	Event string `json:"event"`
	// Fields are the event's fields besides event and format.
	Fields map[string]string `json:"fields"`
	// Rules are the decisions of the rules whose match names the event, in config order.
	Rules []rules.Decision `json:"rules"`
	// Reason is why nothing counts the line when no rule decision says it: the parser
	// recognised an event but ignored it, or no rule matches the event type.
	Reason string `json:"reason"`
}

// RuleTally is what the summary says about one rule.
type RuleTally struct {
	Rule       string
	Matched    int // events of a type the rule matches
	Counted    int
	Incidents  int // new incidents the engine opened (firing)
	Suppressed int // of which recorded as suppressed under override mode
	Threshold  int64
	Window     time.Duration
}

// FormatTally counts lines and events per recognised format.
type FormatTally struct {
	Format string
	Lines  int
	Events int
}

// Explainer runs lines through the parsers of a detection pipeline and the rules engine of
// one rules processor and reports, per line, what detection made of it. Files are read one
// after another, in the lines' own time, as tda replay reads them; the engine counts what it
// would count there. An Explainer is used by one goroutine.
type Explainer struct {
	// parsers are those of the detect processors up to and including the rules processor,
	// in pipeline order: as in the pipeline, the first to recognise a line parses it and the
	// later ones reuse its fields (and keep their own per-origin state).
	parsers []LineParser
	engine  *rules.Engine
	// ruleIndex finds a rule's tally by name.
	ruleIndex map[string]int
	tallies   []RuleTally
	formats   map[string]*FormatTally
	// unmatched counts events of types no rule matches (at most maxUnmatchedTypes keys and
	// otherTypes); ignored the events the parser dropped.
	unmatched map[string]int
	ignored   int
	lines     int
	out       []sdk.Event
	// incidents are the states of the incidents seen, by fingerprint (one entry per incident,
	// far fewer than lines).
	incidents map[string]string
}

// New returns an explainer over parsers (in pipeline order, the rules processor's last) and
// the rules processor's engine.
func New(parsers []LineParser, e *rules.Engine) *Explainer {
	x := &Explainer{parsers: parsers, engine: e, ruleIndex: map[string]int{}, formats: map[string]*FormatTally{},
		unmatched: map[string]int{}, incidents: map[string]string{}}
	for i, r := range e.Rules() {
		x.ruleIndex[r.Name] = i
		x.tallies = append(x.tallies, RuleTally{Rule: r.Name, Threshold: r.Threshold, Window: r.Window})
	}
	return x
}

// HasRule reports whether the engine has a rule of that name.
func (x *Explainer) HasRule(name string) bool {
	_, ok := x.ruleIndex[name]
	return ok
}

// RuleNames returns the engine's rules, in config order.
func (x *Explainer) RuleNames() []string {
	names := make([]string, len(x.tallies))
	for i, t := range x.tallies {
		names[i] = t.Rule
	}
	return names
}

// lastIgnored asks the parsers why they dropped the event of the last line, where they can
// say; the first reason given wins.
func (x *Explainer) lastIgnored() string {
	for _, p := range x.parsers {
		if li, ok := p.(interface{ LastIgnored() string }); ok {
			if why := li.LastIgnored(); why != "" {
				return why
			}
		}
	}
	return ""
}

// Explain parses line n of origin and returns what detection makes of it.
func (x *Explainer) Explain(origin string, n int, line []byte) Line {
	x.lines++
	ev := sdk.Event{Kind: sdk.KindLog, Origin: origin, Source: "file.explain", Line: line}
	var typ string
	for _, p := range x.parsers {
		typ = p.Apply(&ev)
	}
	rec := Line{File: origin, Line: n, Fields: map[string]string{}, Rules: []rules.Decision{}}
	if !ev.Time.IsZero() {
		rec.Time = ev.Time.UTC().Format(time.RFC3339Nano)
	}
	if typ == "" {
		rec.Reason = x.lastIgnored()
		if rec.Reason != "" {
			x.ignored++
			rec.Reason = "ignored: " + rec.Reason
		}
	} else {
		rec.Event = typ
		for k, v := range ev.Fields {
			switch k {
			case parse.FieldEvent:
			case parse.FieldFormat:
				rec.Format = v
			default:
				rec.Fields[k] = v
			}
		}
		rec.Rules = append(rec.Rules, x.engine.Trace(&ev)...)
		switch {
		case len(rec.Rules) > 0:
		case override.IsChange(&ev):
			rec.Reason = "changes override mode (alerts of overridable rules are recorded as suppressed while it is on)"
		default:
			rec.Reason = "no rule matches " + typ
			x.countUnmatched(typ)
		}
		for _, d := range rec.Rules {
			t := &x.tallies[x.ruleIndex[d.Rule]]
			t.Matched++
			if d.Counted {
				t.Counted++
			}
		}
	}
	key := rec.Format
	ft := x.formats[key]
	if ft == nil {
		ft = &FormatTally{Format: key}
		x.formats[key] = ft
	}
	ft.Lines++
	if typ != "" {
		ft.Events++
	}
	// The engine sees every line, as in the rules processor: times move its clock, override
	// lines change its override state, events are counted.
	x.out = x.engine.Event(&ev, x.out[:0])
	x.tally(x.out)
	return rec
}

// maxUnmatchedTypes bounds the event types the summary lists as matched by no rule (a user
// parser's event group can name any type); the others are counted together.
const maxUnmatchedTypes = 100

// otherTypes is where the unmatched event types beyond maxUnmatchedTypes are counted.
const otherTypes = "(other types)"

func (x *Explainer) countUnmatched(typ string) {
	if _, ok := x.unmatched[typ]; !ok && len(x.unmatched) >= maxUnmatchedTypes {
		typ = otherTypes
	}
	x.unmatched[typ]++
}

// Finish ends the input: open incidents resolve. Call it once, after the last line.
func (x *Explainer) Finish() {
	x.out = x.engine.EndBatch(sdk.Watermark{Final: true}, x.out[:0])
	x.tally(x.out)
}

// tally counts the incidents alert records open. An incident is counted once, by its
// fingerprint; one recorded as suppressed that pages later (the override ended while the burst
// went on) is no longer counted as suppressed.
func (x *Explainer) tally(alerts []sdk.Event) {
	for _, a := range alerts {
		if a.Kind != sdk.KindAlert || a.Alert == nil {
			continue
		}
		i, ok := x.ruleIndex[a.Alert.Rule]
		if !ok {
			continue
		}
		st := a.Alert.State
		if st != sdk.StateFiring && st != sdk.StateSuppressed {
			continue
		}
		t := &x.tallies[i]
		prev, seen := x.incidents[a.Alert.Fingerprint]
		switch {
		case !seen:
			x.incidents[a.Alert.Fingerprint] = st
			t.Incidents++
			if st == sdk.StateSuppressed {
				t.Suppressed++
			}
		case prev == sdk.StateSuppressed && st == sdk.StateFiring:
			x.incidents[a.Alert.Fingerprint] = st
			t.Suppressed--
		}
	}
}

// Tallies returns the per-rule tallies, in config order.
func (x *Explainer) Tallies() []RuleTally { return append([]RuleTally(nil), x.tallies...) }

// formatsByLines returns the format tallies, most lines first.
func (x *Explainer) formatsByLines() []FormatTally {
	out := make([]FormatTally, 0, len(x.formats))
	for _, f := range x.formats {
		out = append(out, *f)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Lines != out[j].Lines {
			return out[i].Lines > out[j].Lines
		}
		return out[i].Format < out[j].Format
	})
	return out
}

func (x *Explainer) events() int {
	n := 0
	for _, f := range x.formats {
		n += f.Events
	}
	return n
}
