package repair

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// maxShown is how many characters of a value the plan table shows; bcrypt hashes (60) fit.
const maxShown = 64

// WritePlan writes the plan as a table: one line per changed column of each row, then the
// summary. Rows already as restored are counted, not listed.
func WritePlan(w io.Writer, p *Plan) {
	rule := "updated_at column " + p.UpdatedAt
	if p.UpdatedAt == "" {
		rule = "no updated_at column: rows named by the incident's events are repaired"
	}
	fmt.Fprintf(w, "Repair plan for table %s (key %s; columns %s; %s)\n", p.Scope.Table, p.KeyColumn,
		strings.Join(p.Columns, ", "), rule)
	fmt.Fprintf(w, "  from the restored database %s into the live database %s\n", p.Source, p.Live)
	if !p.Scope.Window.From.IsZero() {
		until := "now"
		if !p.Scope.Window.Until.IsZero() {
			until = p.Scope.Window.Until.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "  incident from %s to %s (tolerance %s)\n", p.Scope.Window.From.UTC().Format(time.RFC3339), until, p.Scope.tolerance())
	}
	if n := len(p.Scope.Keys); n > 0 {
		fmt.Fprintf(w, "  %d rows named in scope\n", n)
	} else {
		fmt.Fprintf(w, "  every row of %s in scope\n", p.Scope.Table)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DECISION\tTABLE\tKEY\tCOLUMN\tRESTORED\tLIVE\tREASON")
	for _, it := range p.Items {
		if it.Decision == Same {
			continue
		}
		if it.Decision == Missing {
			fmt.Fprintf(tw, "%s\t%s\t%s\t(%d columns)\t%s\t-\t%s\n", it.Decision, it.Table, it.Key,
				len(it.Changes), shown(rowSummary(it.Changes)), it.Reason)
			continue
		}
		if len(it.Changes) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\t%s\n", it.Decision, it.Table, it.Key, it.Reason)
			continue
		}
		for i, c := range it.Changes {
			reason := it.Reason
			if i > 0 {
				reason = ""
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", it.Decision, it.Table, it.Key, c.Column,
				shown(c.Restored.String()), shown(c.Live.String()), reason)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%s\n", Summary(p))
}

// Summary is the plan's one-line count.
func Summary(p *Plan) string {
	return fmt.Sprintf("%d to repair, %d missing to re-insert, %d skipped (listed above with why), %d already as restored.",
		p.Counts[Repair], p.Counts[Missing], p.Counts[Skip], p.Counts[Same])
}

// WriteResult writes what an Apply did.
func WriteResult(w io.Writer, r Result) {
	fmt.Fprintf(w, "Repaired %d rows and re-inserted %d (via %s) in %s; %d skipped rows left as they are.\n",
		r.Repaired, r.Inserted, r.Via, r.Finished.Sub(r.Started).Round(time.Millisecond), r.Skipped)
	if len(r.Mismatches) == 0 {
		fmt.Fprintf(w, "Verified: all %d written rows hold the restored values.\n", r.Verified)
		return
	}
	fmt.Fprintf(w, "Verification: %d rows hold the restored values, %d do not (changed since, or the app rewrote them):\n",
		r.Verified, len(r.Mismatches))
	for _, m := range r.Mismatches {
		fmt.Fprintf(w, "  %s\n", m)
	}
}

func rowSummary(cs []Change) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.Column + "=" + c.Restored.String()
	}
	return strings.Join(parts, " ")
}

func shown(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len([]rune(s)) > maxShown {
		return string([]rune(s)[:maxShown-1]) + "…"
	}
	return s
}
