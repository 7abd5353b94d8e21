// Package console is the sink that prints events for a human at a terminal: alerts in a short,
// readable block (severity, rule, count against threshold, key, when, where, the explanation
// and the lines that caused it), other events as one line each.
package console

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/tda-dev/tda/sdk"
)

// Spec is the console sink's config schema.
var Spec = &sdk.Spec{
	Summary: "Prints alerts (and optionally other events) readably on the agent's standard output.",
	Fields: []sdk.Field{
		{Name: "format", Type: sdk.TypeString, Default: "text", Enum: []string{"text", "json"},
			Description: "text: a readable block per alert; json: tda's canonical JSON, one line per event."},
		{Name: "color", Type: sdk.TypeString, Default: "auto", Enum: []string{"auto", "always", "never"},
			Description: "Colour severities with ANSI codes (auto: when the agent's standard output is a terminal and NO_COLOR is unset)."},
		{Name: "excerpt_lines", Type: sdk.TypeInt, Default: 3,
			Description: "How many of an alert's excerpt lines to print."},
		{Name: "explain", Type: sdk.TypeBool, Default: true,
			Description: "Print each alert's explanation."},
	},
	Example: `sink "console" "screen" {
  format = "text"
}`,
}

// Component returns the console sink component. It takes alerts and audit records unless
// the sink block says otherwise with kinds.
func Component() sdk.Component {
	return sdk.SinkComponent("console", Spec, New).WithAccepts(sdk.KindAlert, sdk.KindAudit)
}

// Sink prints events.
type Sink struct {
	out      io.Writer
	json     bool
	color    bool
	excerpt  int
	explain  bool
	mu       sync.Mutex
	buf      []byte
	location *time.Location
}

// New builds the sink from its config.
func New(conf *sdk.Config, res sdk.Resources) (sdk.Sink, error) {
	s := &Sink{out: res.Output(), json: conf.String("format") == "json", excerpt: int(conf.Int("excerpt_lines")),
		explain: conf.Bool("explain"), location: time.UTC}
	switch conf.String("color") {
	case "always":
		s.color = true
	case "auto":
		// The plugin writes through the agent, which says whether its output is a terminal.
		s.color = res.Env("NO_COLOR") == "" && res.StdoutIsTerminal()
	}
	if s.excerpt < 0 {
		return nil, conf.Errorf("excerpt_lines", "excerpt_lines must not be negative")
	}
	return s, nil
}

// NewWriter returns a text sink writing to w (for tests and embedding).
func NewWriter(w io.Writer, color bool) *Sink {
	return &Sink{out: w, color: color, excerpt: 3, explain: true, location: time.UTC}
}

// Write prints the batch.
func (s *Sink) Write(_ context.Context, b sdk.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	buf := s.buf[:0]
	for i := range b.Events {
		e := &b.Events[i]
		if s.json {
			buf = e.AppendJSON(buf)
			buf = append(buf, '\n')
			continue
		}
		buf = s.appendText(buf, e)
	}
	s.buf = buf
	if _, err := s.out.Write(buf); err != nil {
		return fmt.Errorf("write to stdout: %w", err)
	}
	return nil
}

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiGreen  = "\x1b[32m"
	ansiDim    = "\x1b[2m"
)

func (s *Sink) paint(code, text string) string {
	if !s.color {
		return text
	}
	return code + text + ansiReset
}

func (s *Sink) stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.In(s.location).Format("2006-01-02 15:04:05Z07:00")
}

// sanitize keeps terminal control sequences in log lines from reaching the screen.
func sanitize(text string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' {
			return ' '
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '·'
		}
		return r
	}, strings.ToValidUTF8(text, "�"))
}

func (s *Sink) appendText(buf []byte, e *sdk.Event) []byte {
	a := e.Alert
	if u, ok := sdk.ParseIncidentUpdate(e); ok {
		// One short line: the entities can be thousands of values (the audit trail has them).
		n := 0
		for _, vals := range u.Entities {
			n += len(vals)
		}
		key := ""
		if u.Key != "" {
			key = " key " + sanitize(u.Key)
		}
		line := fmt.Sprintf("%s %-9s %s%s: %d events so far, %d new entities", s.stamp(e.Time), "update",
			sanitize(u.Rule), key, u.Count, n)
		return append(append(buf, line...), '\n')
	}
	if e.Kind != sdk.KindAlert || a == nil {
		line := fmt.Sprintf("%s %-9s %s %s", s.stamp(e.Time), e.Kind, sanitize(e.Origin), sanitize(string(e.Line)))
		if e.Kind == sdk.KindAudit && len(e.Fields) > 0 {
			var kv []string
			for _, k := range e.SortedFieldNames() {
				kv = append(kv, k+"="+sanitize(e.Fields[k]))
			}
			line = fmt.Sprintf("%s %-9s %s", s.stamp(e.Time), "audit", strings.Join(kv, " "))
		}
		return append(append(buf, strings.TrimRight(line, " ")...), '\n')
	}
	sev := a.Severity
	switch a.Severity {
	case sdk.SeverityHigh:
		sev = s.paint(ansiBold+ansiRed, sev)
	case sdk.SeverityMedium:
		sev = s.paint(ansiBold+ansiYellow, sev)
	}
	state := strings.ToUpper(a.State)
	switch a.State {
	case sdk.StateResolved:
		state = s.paint(ansiGreen, state)
	case sdk.StateSuppressed:
		state = s.paint(ansiDim, state)
	}
	head := fmt.Sprintf("%s %s %s: %d in %s (threshold %d)", state, sev, s.paint(ansiBold, a.Rule),
		a.Count, sdk.FormatDuration(a.Window), a.Threshold)
	if a.Key != "" {
		head += " key " + sanitize(a.Key)
	}
	if a.Realert > 0 {
		head += fmt.Sprintf(" (still firing, reminder %d)", a.Realert)
	}
	buf = append(buf, head...)
	buf = append(buf, '\n')
	buf = append(buf, fmt.Sprintf("  first %s, last %s, %s from %s\n", s.stamp(a.FirstSeen), s.stamp(a.LastSeen),
		sanitize(e.Origin), e.Source)...)
	if a.State == sdk.StateSuppressed {
		buf = append(buf, fmt.Sprintf("  suppressed by override of %s: %s\n", sanitize(a.SuppressedBy),
			sanitize(a.OverrideReason))...)
	}
	if s.explain && a.Explanation != "" && a.State != sdk.StateResolved {
		for _, l := range strings.Split(strings.TrimSpace(a.Explanation), "\n") {
			buf = append(buf, "  "+sanitize(l)+"\n"...)
		}
	}
	n := len(a.Excerpt)
	if n > s.excerpt {
		n = s.excerpt
	}
	for _, l := range a.Excerpt[len(a.Excerpt)-n:] {
		buf = append(buf, s.paint(ansiDim, "  > "+sanitize(l))...)
		buf = append(buf, '\n')
	}
	return buf
}
