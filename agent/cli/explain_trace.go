package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/tda-dev/tda/plugins/detect"
	"github.com/tda-dev/tda/plugins/detect/override"
	"github.com/tda-dev/tda/plugins/detect/parse"
	"github.com/tda-dev/tda/plugins/detect/rules"
	"github.com/tda-dev/tda/sdk"
)

// explainMaxLine bounds one input line of tda explain; longer lines are cut, as the file
// source cuts them (their start is what the parsers read).
const explainMaxLine = 1 << 20

// lineParser is what tda explain needs of the detection parser: *parse.Parser.
type lineParser interface {
	Apply(ev *sdk.Event) string
}

// explainLine is what tda explain reports about one input line. Its JSON form is one line of
// `tda explain -json`; the keys and their order are stable (docs/detection.md).
type explainLine struct {
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

// ruleTally is what tda explain's summary says about one rule.
type ruleTally struct {
	Rule       string
	Matched    int // events of a type the rule matches
	Counted    int
	Incidents  int // new incidents the engine opened (firing)
	Suppressed int // of which recorded as suppressed under override mode
	Threshold  int64
	Window     time.Duration
}

// formatTally counts lines and events per recognised format.
type formatTally struct {
	Format string
	Lines  int
	Events int
}

// explainer runs lines through the parsers of a detection pipeline and the rules engine of
// one rules processor and reports, per line, what detection made of it. Files are read one
// after another, in the lines' own time, as tda replay reads them; the engine counts what it
// would count there.
type explainer struct {
	// parsers are those of the detect processors up to and including the rules processor,
	// in pipeline order: as in the pipeline, the first to recognise a line parses it and the
	// later ones reuse its fields (and keep their own per-origin state).
	parsers []lineParser
	engine  *rules.Engine
	// ruleIndex finds a rule's tally by name.
	ruleIndex map[string]int
	tallies   []ruleTally
	formats   map[string]*formatTally
	// unmatched counts events of types no rule matches; ignored the events the parser dropped.
	unmatched map[string]int
	ignored   int
	lines     int
	out       []sdk.Event
	// incidents are the states of the incidents seen, by fingerprint (one entry per incident,
	// far fewer than lines).
	incidents map[string]string
}

// newExplainer builds an explainer from the JSON config of a "rules" processor block (as the
// config loader decodes it with the component's spec) and those of the detect processors that
// run before it in its pipeline (override or rules blocks, in order).
func newExplainer(config []byte, instance string, upstream []upstreamParser) (*explainer, error) {
	var parsers []lineParser
	for _, u := range upstream {
		p, err := parserOf(u.spec, u.config)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", u.address, err)
		}
		parsers = append(parsers, p)
	}
	config, err := withUpstreamOrigins(config, upstream)
	if err != nil {
		return nil, err
	}
	c, diags := sdk.ParseConfig(detect.RulesSpec(), config)
	if diags.HasErrors() {
		return nil, diags.Err()
	}
	po, err := detect.ParseOptions(c)
	if err != nil {
		return nil, err
	}
	// The processor the agent runs, so that its engine has the same rules and options; its
	// own parser is not used: explain parses first, to see what the parser reports.
	proc, err := detect.NewRules(c, sdk.Resources{Instance: instance})
	if err != nil {
		return nil, err
	}
	return newExplainerWith(append(parsers, parse.New(po)), proc.Engine()), nil
}

// upstreamParser is a detect processor before the rules processor in the pipeline.
type upstreamParser struct {
	address string
	spec    *sdk.Spec
	config  []byte
}

func parserOf(spec *sdk.Spec, config []byte) (*parse.Parser, error) {
	c, diags := sdk.ParseConfig(spec, config)
	if diags.HasErrors() {
		return nil, diags.Err()
	}
	po, err := detect.ParseOptions(c)
	if err != nil {
		return nil, err
	}
	return parse.New(po), nil
}

func newExplainerWith(parsers []lineParser, e *rules.Engine) *explainer {
	x := &explainer{parsers: parsers, engine: e, ruleIndex: map[string]int{}, formats: map[string]*formatTally{},
		unmatched: map[string]int{}, incidents: map[string]string{}}
	for i, r := range e.Rules() {
		x.ruleIndex[r.Name] = i
		x.tallies = append(x.tallies, ruleTally{Rule: r.Name, Threshold: r.Threshold, Window: r.Window})
	}
	return x
}

// lastIgnored asks the parsers why they dropped the event of the last line, where they can
// say; the first reason given wins.
func (x *explainer) lastIgnored() string {
	for _, p := range x.parsers {
		if li, ok := p.(interface{ LastIgnored() string }); ok {
			if why := li.LastIgnored(); why != "" {
				return why
			}
		}
	}
	return ""
}

// explain parses one line of origin and returns what detection makes of it.
func (x *explainer) explain(origin string, n int, line []byte) explainLine {
	x.lines++
	ev := sdk.Event{Kind: sdk.KindLog, Origin: origin, Source: "file.explain", Line: line}
	var typ string
	for _, p := range x.parsers {
		typ = p.Apply(&ev)
	}
	rec := explainLine{File: origin, Line: n, Fields: map[string]string{}, Rules: []rules.Decision{}}
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
		ft = &formatTally{Format: key}
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

func (x *explainer) countUnmatched(typ string) {
	if _, ok := x.unmatched[typ]; !ok && len(x.unmatched) >= maxUnmatchedTypes {
		typ = otherTypes
	}
	x.unmatched[typ]++
}

// finish ends the input: open incidents resolve.
func (x *explainer) finish() {
	x.out = x.engine.EndBatch(sdk.Watermark{Final: true}, x.out[:0])
	x.tally(x.out)
}

// tally counts the incidents alert records open. An incident is counted once, by its
// fingerprint; one recorded as suppressed that pages later (the override ended while the burst
// went on) is no longer counted as suppressed.
func (x *explainer) tally(alerts []sdk.Event) {
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

// formatsByLines returns the format tallies, most lines first.
func (x *explainer) formatsByLines() []formatTally {
	out := make([]formatTally, 0, len(x.formats))
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

// readLines calls fn with every line of r (without its line end), numbered from 1.
func readLines(r io.Reader, fn func(n int, line []byte) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long := append([]byte(nil), line...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				if len(long) < explainMaxLine {
					long = append(long, line...)
				}
			}
			line = long
		}
		if len(line) > 0 {
			line = bytes.TrimRight(line, "\r\n")
			if len(line) > explainMaxLine {
				line = line[:explainMaxLine]
			}
			if ferr := fn(n, line); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read line %d: %w", n, err)
		}
	}
}

// withUpstreamOrigins gives the rules block the allow_origins of the override processors before
// it. In the pipeline an override processor judges a log line's override by its own
// allow_origins and hands the rules processor its record; explain feeds the engine the lines
// themselves, so the engine must judge them as that processor would.
func withUpstreamOrigins(config []byte, upstream []upstreamParser) ([]byte, error) {
	var origins []any
	for _, u := range upstream {
		if !strings.HasPrefix(u.address, "processor.override.") {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(u.config, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", u.address, err)
		}
		if l, ok := m["allow_origins"].([]any); ok {
			origins = append(origins, l...)
		}
	}
	if len(origins) == 0 {
		return config, nil
	}
	var m map[string]any
	if err := json.Unmarshal(config, &m); err != nil {
		return nil, err
	}
	own, _ := m["allow_origins"].([]any)
	m["allow_origins"] = append(own, origins...)
	return json.Marshal(m)
}
