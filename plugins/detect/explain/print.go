package explain

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/termsafe"
)

// termSafe returns s with everything a terminal would interpret escaped: control characters
// (ESC, newlines, tabs, C1 controls, DEL) as Go escapes and invalid UTF-8 as \xNN. Log-derived
// values go through it before any of them reaches the table.
func termSafe(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsControl(r):
			q := strconv.QuoteRune(r) // '\x1b', '\n', '\u0085'
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// fieldValue is a field value for the table: terminal-safe, quoted when it has spaces.
func fieldValue(v string) string {
	v = termSafe(v)
	if v == "" || strings.ContainsAny(v, " \"") {
		return strconv.Quote(v)
	}
	return v
}

// safeDash is a log-derived value for the table: terminal-safe (bidirectional overrides
// included), "-" when empty.
func safeDash(s string) string {
	if s == "" {
		return "-"
	}
	return termsafe.String(termSafe(s))
}

// fields formats an event's fields as sorted key=value pairs.
func fields(f map[string]string) string {
	if len(f) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = termSafe(k) + "=" + fieldValue(f[k])
	}
	return strings.Join(parts, " ")
}

// decisions says in words what the rules did with a line.
func decisions(rec *Line) string {
	if len(rec.Rules) == 0 {
		return safeDash(rec.Reason)
	}
	parts := make([]string, len(rec.Rules))
	for i, d := range rec.Rules {
		switch {
		case d.Counted && d.Reason != "":
			parts[i] = d.Rule + ": counted (" + d.Reason + ")"
		case d.Counted:
			parts[i] = d.Rule + ": counted"
		default:
			parts[i] = d.Rule + ": not counted (" + d.Reason + ")"
		}
	}
	return termSafe(strings.Join(parts, "; "))
}

// Writer prints explained lines, as a table or as JSON lines.
type Writer interface {
	Write(rec *Line) error
	// Flush writes what is buffered; call it after the last line.
	Flush() error
}

// Table prints explained lines as an aligned table. Rows are aligned in blocks of tableBlock,
// so that memory stays bounded however long the input.
type Table struct {
	tw   *tabwriter.Writer
	rows int
}

const tableBlock = 1000

// NewTable writes the table's header to w and returns the table.
func NewTable(w io.Writer) *Table {
	t := &Table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	fmt.Fprint(t.tw, "LINE\tFORMAT\tEVENT\tRULES\tFIELDS\n")
	return t
}

// Write implements Writer.
func (t *Table) Write(rec *Line) error {
	if t.rows++; t.rows%tableBlock == 0 {
		if err := t.tw.Flush(); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(t.tw, "%s:%d\t%s\t%s\t%s\t%s\n", termSafe(rec.File), rec.Line, safeDash(rec.Format),
		safeDash(rec.Event), decisions(rec), fields(rec.Fields))
	return err
}

// Flush implements Writer.
func (t *Table) Flush() error { return t.tw.Flush() }

// JSON prints explained lines as JSON lines.
type JSON struct {
	enc *json.Encoder
}

// NewJSON returns a JSON-lines writer to w.
func NewJSON(w io.Writer) *JSON {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &JSON{enc: enc}
}

// Write implements Writer.
func (j *JSON) Write(rec *Line) error { return j.enc.Encode(rec) }

// Flush implements Writer.
func (j *JSON) Flush() error { return nil }

// WriteSummary prints the per-format and per-rule summary; rule "" means every rule.
func (x *Explainer) WriteSummary(w io.Writer, rule string) error {
	fmt.Fprintf(w, "\n%d lines, %d events", x.lines, x.events())
	if x.ignored > 0 {
		fmt.Fprintf(w, ", %d recognised but ignored by the parser", x.ignored)
	}
	fmt.Fprintln(w, ".")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprint(tw, "FORMAT\tLINES\tEVENTS\n")
	for _, f := range x.formatsByLines() {
		name := f.Format
		if name == "" {
			name = "(not an event)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\n", termSafe(name), f.Lines, f.Events)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	fmt.Fprint(tw, "RULE\tMATCHED\tCOUNTED\tWOULD FIRE\n")
	for _, t := range x.tallies {
		if rule != "" && t.Rule != rule {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", t.Rule, t.Matched, t.Counted, wouldFire(t))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(x.unmatched) > 0 && rule == "" {
		types := make([]string, 0, len(x.unmatched))
		for typ := range x.unmatched {
			types = append(types, typ)
		}
		sort.Strings(types)
		parts := make([]string, len(types))
		for i, typ := range types {
			parts[i] = fmt.Sprintf("%s (%d)", termSafe(typ), x.unmatched[typ])
		}
		fmt.Fprintf(w, "\nEvents no rule matches: %s.\n", strings.Join(parts, ", "))
	}
	return nil
}

// wouldFire says whether the rule raises an incident over these lines.
func wouldFire(t RuleTally) string {
	limit := fmt.Sprintf("more than %d in %s", t.Threshold, sdk.FormatDuration(t.Window))
	switch {
	case t.Incidents == 0:
		return "no (fires at " + limit + ")"
	case t.Suppressed == t.Incidents:
		return fmt.Sprintf("suppressed: %s, all under override mode", plural(t.Incidents, "incident"))
	case t.Suppressed > 0:
		return fmt.Sprintf("yes: %s (%d suppressed under override mode)", plural(t.Incidents, "incident"), t.Suppressed)
	}
	return "yes: " + plural(t.Incidents, "incident")
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// Shown applies -only-events and -rule to a line (and keeps only that rule's decision); rule
// "" keeps every rule.
func Shown(rec *Line, onlyEvents bool, rule string) bool {
	if rule != "" {
		for _, d := range rec.Rules {
			if d.Rule == rule {
				rec.Rules = append(rec.Rules[:0], d)
				return true
			}
		}
		return false
	}
	return !onlyEvents || rec.Event != "" || rec.Reason != ""
}
