package detect

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/plugins/detect/eventtime"
	"github.com/tda-dev/tda/plugins/detect/override"
	"github.com/tda-dev/tda/plugins/detect/parse"
	"github.com/tda-dev/tda/plugins/detect/rules"
	"github.com/tda-dev/tda/sdk"
)

// Components returns the plugin's components: processors "override" and "rules".
func Components() []sdk.Component {
	return []sdk.Component{OverrideComponent(), RulesComponent()}
}

// OverrideComponent is processor "override". It keeps nothing of its input past Process
// (what it keeps are strings), so a plugin process reuses the memory of its batches.
func OverrideComponent() sdk.Component {
	return sdk.ProcessorComponent("override", OverrideSpec(), func(c *sdk.Config, res sdk.Resources) (sdk.Processor, error) {
		return NewOverride(c, res)
	}).WithBorrowedInput()
}

// RulesComponent is processor "rules". It keeps nothing of its input past Process (excerpts
// and keys are copied into strings), so a plugin process reuses the memory of its batches.
func RulesComponent() sdk.Component {
	return sdk.ProcessorComponent("rules", RulesSpec(), func(c *sdk.Config, res sdk.Resources) (sdk.Processor, error) {
		return NewRules(c, res)
	}).WithBorrowedInput().WithActions(rulesActions()...)
}

// clockConfig reads max_future_skew.
func clockConfig(c *sdk.Config) (time.Duration, error) {
	d := c.Duration("max_future_skew")
	if d <= 0 {
		return 0, c.Errorf("max_future_skew", "max_future_skew must be longer than 0s; a few minutes (\"5m\") covers hosts whose clocks drift")
	}
	return d, nil
}

// allowOrigins reads allow_origins, and adds extra: the origins of the override processors
// before a rules processor, when explain feeds it the lines themselves.
func allowOrigins(c *sdk.Config, extra ...string) (override.Origins, error) {
	o, err := override.NewOrigins(append(append([]string(nil), c.StringList("allow_origins")...), extra...))
	if err != nil {
		return o, c.Errorf("allow_origins", "%v", err)
	}
	return o, nil
}

// arrival is when a log event reached the agent: the time its source stamped on it (a file
// source: when it read the line; Docker: when the daemon received it), read before a parser
// replaces it with the line's own time, or else the wall clock of the batch.
func arrival(ev *sdk.Event, wm sdk.Watermark) time.Time {
	if !parse.Parsed(ev) && !ev.Time.IsZero() {
		return ev.Time
	}
	return wm.Time
}

func overrideConfig(c *sdk.Config) (override.Config, error) {
	oc := override.Config{DefaultTTL: c.Duration("default_ttl"), MaxTTL: c.Duration("max_ttl")}
	if oc.DefaultTTL <= 0 {
		return oc, c.Errorf("default_ttl", "default_ttl must be longer than 0s")
	}
	if oc.MaxTTL < oc.DefaultTTL {
		return oc, c.Errorf("max_ttl", "max_ttl (%s) must not be shorter than default_ttl (%s)",
			sdk.FormatDuration(oc.MaxTTL), sdk.FormatDuration(oc.DefaultTTL))
	}
	return oc, nil
}

// Override is processor "override". It parses every log line, follows override declarations
// from the app's lines and from operators, and puts an audit record of every change into the
// stream (right after the line that caused it). Log events pass through.
type Override struct {
	parser *parse.Parser
	cfg    override.Config
	allow  override.Origins
	skew   time.Duration
	state  override.State
	clock  eventtime.Clock
	log    hclog.Logger
	skewed eventtime.SkewReport
	// sanitize: restored, and the first arrival clock has not been seen yet.
	sanitize bool
}

// NewOverride builds processor "override" from its config.
func NewOverride(c *sdk.Config, res sdk.Resources) (*Override, error) {
	po, err := ParseOptions(c)
	if err != nil {
		return nil, err
	}
	oc, err := overrideConfig(c)
	if err != nil {
		return nil, err
	}
	skew, err := clockConfig(c)
	if err != nil {
		return nil, err
	}
	allow, err := allowOrigins(c)
	if err != nil {
		return nil, err
	}
	return &Override{parser: parse.New(po), cfg: oc, allow: allow, skew: skew, log: res.Logger,
		skewed: eventtime.SkewReport{Log: res.Logger}}, nil
}

// Process implements sdk.Processor.
func (o *Override) Process(_ context.Context, events []sdk.Event, wm sdk.Watermark) ([]sdk.Event, error) {
	// The output is the input until something is inserted or dropped; only then is it copied.
	out := events
	copied := false
	emit := func(i int, evs ...sdk.Event) {
		if !copied {
			out = make([]sdk.Event, i, len(events)+len(evs)+4)
			copy(out, events[:i])
			copied = true
		}
		out = append(out, evs...)
	}
	for i := range events {
		ev := &events[i]
		switch {
		case ev.Kind == sdk.KindLog || ev.Kind == "":
			at := arrival(ev, wm)
			o.parser.Apply(ev)
			if o.sanitize && eventtime.Valid(at) {
				o.sanitizeBeyond(at.Add(o.skew))
			}
			why := eventtime.Apply(ev, at, o.skew)
			o.skewed.Observe(why, ev)
			if !ev.Time.IsZero() && ev.Field(eventtime.FieldClock) == "" {
				// A line held to its arrival never moves the clock that ends overrides.
				o.clock.Observe(ev.Time)
			}
			if rec := o.state.Expire(o.clock.Max()); rec != nil {
				o.logChange(rec)
				emit(i, *rec)
			}
			if override.IsChange(ev) {
				if !o.allow.Allows(ev.Origin) {
					if rec := o.state.Refuse(ev, o.allow.String()); rec != nil {
						o.logChange(rec)
						emit(i, *ev, *rec)
						continue
					}
				} else if rec := o.state.Apply(ev, o.cfg); rec != nil {
					o.logChange(rec)
					emit(i, *ev, *rec)
					continue
				}
			}
		case ev.Kind == sdk.KindAudit && override.IsChange(ev):
			at := *ev
			if at.Time.IsZero() {
				at.Time = wm.Time
			}
			if at.Time.IsZero() {
				at.Time = o.clock.Max()
			}
			rec := o.state.Apply(&at, o.cfg)
			if ev.Field(override.FieldUntil) == "" {
				// An operator's declaration: the normalised record replaces it.
				if rec == nil {
					emit(i)
				} else {
					o.logChange(rec)
					emit(i, *rec)
				}
				continue
			}
		}
		if copied {
			out = append(out, *ev)
		}
	}
	if o.sanitize && eventtime.Valid(wm.Time) {
		o.sanitizeBeyond(wm.Time.Add(o.skew))
	}
	if now := o.clock.EndBatch(wm); !now.IsZero() {
		if rec := o.state.Expire(now); rec != nil {
			o.logChange(rec)
			emit(len(events), *rec)
		}
	}
	if rec, ok := o.skewed.Report(); ok {
		emit(len(events), rec)
	}
	return out, nil
}

func (o *Override) logChange(rec *sdk.Event) {
	if o.log == nil {
		return
	}
	f := rec.Fields
	if f["event"] == override.Refused {
		o.log.Warn("override line ignored: its origin may not declare overrides", "origin", f[override.FieldOrigin],
			"actor", f[override.FieldActor], "reason", f[override.FieldReason], "allow_origins", o.allow.String(),
			"hint", "add the origin to allow_origins, or have an operator run tda override on")
		return
	}
	o.log.Info("override "+f["event"], "actor", f[override.FieldActor], "reason", f[override.FieldReason],
		"until", f[override.FieldUntil], "origin", f[override.FieldOrigin], "via", f[override.FieldVia])
}

// sanitizeBeyond drops, once after a restore, what the restored state dated beyond limit (the
// first arrival clock plus the skew allowance).
func (o *Override) sanitizeBeyond(limit time.Time) {
	o.sanitize = false
	o.state.Sanitize(eventtime.MinTime, limit)
	if o.clock.Max().After(limit) {
		o.clock.Set(time.Time{})
	}
}

// Active returns the override in force at t.
func (o *Override) Active(t time.Time) (*override.Override, bool) { return o.state.Active(t) }

type overrideSnapshot struct {
	Version int                 `json:"version"`
	State   override.State      `json:"state"`
	Clock   time.Time           `json:"clock"`
	Parser  []parse.OriginState `json:"parser,omitempty"`
}

// Snapshot implements sdk.Stateful.
func (o *Override) Snapshot() ([]byte, error) {
	return json.Marshal(overrideSnapshot{Version: 1, State: o.state, Clock: o.clock.Max(), Parser: o.parser.State()})
}

// Restore implements sdk.Stateful.
func (o *Override) Restore(b []byte) error {
	var s overrideSnapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("override snapshot: %w", err)
	}
	if s.Version != 1 {
		return fmt.Errorf("override snapshot version %d is not supported", s.Version)
	}
	o.state = s.State
	o.state.Sanitize(eventtime.MinTime, eventtime.MaxTime)
	o.clock.Set(s.Clock.UTC())
	o.parser.SetState(s.Parser)
	o.sanitize = true
	return nil
}

// Rules is processor "rules". It parses the lines nobody parsed upstream, counts the events
// of every rule and emits alerts; audit records and other non-log events pass through, log
// events only with forward_logs.
type Rules struct {
	// conf, res, instance, parseOptions and rules are the instance's configuration, kept for
	// its actions (explain builds a fresh engine from them; tune and rules.describe read them).
	conf         *sdk.Config
	res          sdk.Resources
	instance     string
	parseOptions parse.Options
	rules        []*rules.Rule
	parser       *parse.Parser
	engine       *rules.Engine
	forwardLogs  bool
	// recordOverrides: the engine records override changes, and an operator's declaration is
	// replaced by its record.
	recordOverrides bool
	log             hclog.Logger
	reported        []uint64
	counted         rules.Counters
	skew            time.Duration
	skewed          eventtime.SkewReport
}

// NewRules builds processor "rules" from its config.
func NewRules(c *sdk.Config, res sdk.Resources) (*Rules, error) {
	return newRules(c, res, nil)
}

// newRules builds processor "rules", which also allows override declarations from the log
// lines of moreOrigins.
func newRules(c *sdk.Config, res sdk.Resources, moreOrigins []string) (*Rules, error) {
	po, err := ParseOptions(c)
	if err != nil {
		return nil, err
	}
	oc, err := overrideConfig(c)
	if err != nil {
		return nil, err
	}
	rs, err := ParseRules(c)
	if err != nil {
		return nil, err
	}
	instance := res.Instance
	if instance == "" {
		instance = "processor.rules"
	}
	skew, err := clockConfig(c)
	if err != nil {
		return nil, err
	}
	allow, err := allowOrigins(c, moreOrigins...)
	if err != nil {
		return nil, err
	}
	if l := c.Duration("lateness"); l < 0 || l > rules.MaxWindow {
		return nil, c.Errorf("lateness", "lateness must be between 0s and %s", sdk.FormatDuration(rules.MaxWindow))
	}
	eng := rules.NewEngine(rs, rules.Options{Instance: instance, Lateness: c.Duration("lateness"), Override: oc,
		MaxFutureSkew: skew, AllowOrigins: allow, RecordOverrides: c.Bool("record_overrides"), IncidentUpdates: true})
	return &Rules{conf: c, res: res, instance: instance, parseOptions: po, rules: rs, parser: parse.New(po), engine: eng, forwardLogs: c.Bool("forward_logs"),
		recordOverrides: c.Bool("record_overrides"), log: res.Logger, reported: make([]uint64, len(rs)),
		skew: skew, skewed: eventtime.SkewReport{Log: res.Logger}}, nil
}

// Engine returns the rule engine (for tools that inspect its state).
func (p *Rules) Engine() *rules.Engine { return p.engine }

// Process implements sdk.Processor.
func (p *Rules) Process(_ context.Context, events []sdk.Event, wm sdk.Watermark) ([]sdk.Event, error) {
	var out []sdk.Event
	if p.forwardLogs {
		out = make([]sdk.Event, 0, len(events)+4)
	}
	for i := range events {
		ev := &events[i]
		isLog := ev.Kind == sdk.KindLog || ev.Kind == ""
		var at time.Time
		if isLog {
			at = arrival(ev, wm)
			p.parser.Apply(ev)
			if ev.Field(eventtime.FieldClock) == "" {
				// Not judged upstream: judge and report it here (forwarded with its verdict).
				p.skewed.Observe(eventtime.Apply(ev, at, p.skew), ev)
			}
		}
		operatorDeclaration := p.recordOverrides && ev.Kind == sdk.KindAudit && override.IsChange(ev) &&
			ev.Field(override.FieldUntil) == ""
		if (p.forwardLogs || !isLog) && !operatorDeclaration {
			out = append(out, *ev)
		}
		if operatorDeclaration && ev.Time.IsZero() {
			ev.Time = wm.Time
		}
		out = p.engine.EventAt(ev, at, out)
	}
	out = p.engine.EndBatch(wm, out)
	if rec, ok := p.skewed.Report(); ok {
		out = append(out, rec)
	}
	p.reportEvictions()
	p.reportCounters()
	return out, nil
}

// reportCounters logs, once per batch at most, what the engine did not take at face value
// since the last report: lines read again after a restore, restored state dropped as
// impossible, override lines refused for their origin (with record_overrides). Lines held to
// their arrival time are reported by the skew report.
func (p *Rules) reportCounters() {
	c := p.engine.Counters()
	last := p.counted
	p.counted = c
	if p.log == nil {
		return
	}
	if n := c.Replayed - last.Replayed; n > 0 {
		p.log.Info("lines read again after a restore were not counted again (they were before the snapshot)",
			"lines", n, "lines_total", c.Replayed)
	}
	if n := c.Sanitized - last.Sanitized; n > 0 {
		p.log.Warn("the restored state held times no real clock has, or beyond the arrival clock; dropped (incidents resolved)",
			"entries", n, "hint", "a snapshot written before lines from the future were held to their arrival time")
	}
	if n := c.OverridesRefused - last.OverridesRefused; n > 0 {
		p.log.Warn("override lines ignored: their origin may not declare overrides", "lines", n,
			"hint", "add the origin to allow_origins, or have an operator run tda override on")
	}
}

// reportEvictions logs, once per batch at most, the rules that evicted keys since the last
// report.
func (p *Rules) reportEvictions() {
	if p.log == nil {
		return
	}
	for i, s := range p.engine.Stats() {
		if s.Evicted > p.reported[i] {
			p.log.Warn("rule reached max_keys: least recently seen keys evicted; raise max_keys or group by a coarser field",
				"rule", s.Rule, "evicted", s.Evicted-p.reported[i], "evicted_total", s.Evicted, "keys", s.Keys)
			p.reported[i] = s.Evicted
		}
	}
}

// Stats reports every rule's keys, incidents and evictions.
func (p *Rules) Stats() []rules.Stats { return p.engine.Stats() }

// Snapshot implements sdk.Stateful: the parser's per-origin state, then the engine's.
func (p *Rules) Snapshot() ([]byte, error) {
	ps, err := json.Marshal(p.parser.State())
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(ps)+p.engine.SnapshotSizeHint())
	b = append(b, 1)
	b = binary.AppendUvarint(b, uint64(len(ps)))
	b = append(b, ps...)
	return p.engine.AppendSnapshot(b), nil
}

// Restore implements sdk.Stateful.
func (p *Rules) Restore(b []byte) error {
	if len(b) < 2 || b[0] != 1 {
		return errors.New("rules snapshot: unknown format")
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || uint64(len(b)-1-k) < n {
		return errors.New("rules snapshot: truncated")
	}
	var ps []parse.OriginState
	if err := json.Unmarshal(b[1+k:1+k+int(n)], &ps); err != nil {
		return fmt.Errorf("rules snapshot: %w", err)
	}
	if err := p.engine.Restore(b[1+k+int(n):]); err != nil {
		return fmt.Errorf("rules snapshot: %w", err)
	}
	p.parser.SetState(ps)
	for i, s := range p.engine.Stats() {
		p.reported[i] = s.Evicted
	}
	// The restored engine counts from zero; what it dropped while restoring is reported next.
	p.counted = rules.Counters{}
	return nil
}
