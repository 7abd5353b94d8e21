package cli

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

// safeDash is a log-derived value for the table: terminal-safe, "-" when empty.
func safeDash(s string) string { return dash(termSafe(s)) }

// explainFields formats an event's fields as sorted key=value pairs.
func explainFields(f map[string]string) string {
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

// explainDecisions says in words what the rules did with a line.
func explainDecisions(rec *explainLine) string {
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

// explainTable prints explain's lines as an aligned table.
// Rows are aligned in blocks of explainTableBlock, so that memory stays bounded however long
// the input.
type explainTable struct {
	tw   *tabwriter.Writer
	rows int
}

const explainTableBlock = 1000

func newExplainTable(w io.Writer) *explainTable {
	t := &explainTable{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	fmt.Fprint(t.tw, "LINE\tFORMAT\tEVENT\tRULES\tFIELDS\n")
	return t
}

func (t *explainTable) write(rec *explainLine) error {
	if t.rows++; t.rows%explainTableBlock == 0 {
		if err := t.tw.Flush(); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(t.tw, "%s:%d\t%s\t%s\t%s\t%s\n", termSafe(rec.File), rec.Line, safeDash(rec.Format),
		safeDash(rec.Event), explainDecisions(rec), explainFields(rec.Fields))
	return err
}

func (t *explainTable) flush() error { return t.tw.Flush() }

// explainJSON prints explain's lines as JSON lines.
type explainJSON struct {
	enc *json.Encoder
}

func newExplainJSON(w io.Writer) *explainJSON {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &explainJSON{enc: enc}
}

func (j *explainJSON) write(rec *explainLine) error { return j.enc.Encode(rec) }

// writeExplainSummary prints the per-format and per-rule summary; rule "" means every rule.
func writeExplainSummary(w io.Writer, x *explainer, rule string) error {
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

func (x *explainer) events() int {
	n := 0
	for _, f := range x.formats {
		n += f.Events
	}
	return n
}

// wouldFire says whether the rule raises an incident over these lines.
func wouldFire(t ruleTally) string {
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
