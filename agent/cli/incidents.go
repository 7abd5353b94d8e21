package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tda-dev/tda/agent/control"
	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/sdk"
)

// The -json output of tda incidents is a JSON array of ops.Incident objects, most recently
// updated first; tda incidents show -json prints one ops.IncidentDetail (the incident with
// "timeline" and "entities"). Scripts rely on them: add keys, never rename or remove one.

type incidentsCommand struct {
	env *Env
	now func() time.Time
}

func (c *incidentsCommand) Synopsis() string { return "List and search incidents, open and past" }

func (c *incidentsCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda incidents [-state STATE] [-rule NAME] [-since AGE] [-q TEXT] [-json] [-config FILE]

  Lists incidents, most recently updated first: those still open and past ones.
  An incident is one burst of a rule: opened by the rule, acknowledged by a
  person (who, why), resolved by the rule when the burst ended, closed by a
  person with a note for the post-incident review. A HIGH incident keeps the
  system blocked until someone acknowledges it, even after it resolved.

  tda incidents show ID     the incident: timeline, entities, first steps
  tda incidents ack ID      acknowledge it (-by, -reason)
  tda incidents close ID    close it once resolved (-by, -note)
  tda incidents export ID   its affected users, actors, IPs, tables as CSV or JSON

Flags:
  -state STATE      open, acknowledged, resolved, closed, or active (not closed).
  -severity SEV     HIGH, MEDIUM or LOW.
  -rule NAME        One rule.
  -since AGE        Updated within AGE (e.g. 24h, 7d) or since an RFC 3339 time.
  -q TEXT           Text in the id, rule, key, origin, excerpt or notes.
  -limit N          At most N (default 50).
  -json             Print JSON.
` + controlFlagsHelp)
}

// parseSince reads an age ("24h", "7d") or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := sdk.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("-since %q is neither an age such as 24h or 7d nor an RFC 3339 time", s)
	}
	return now.Add(-d), nil
}

func (c *incidentsCommand) Run(args []string) int {
	fs := c.env.FlagSet("incidents")
	cf := addControlFlags(fs)
	st := fs.String("state", "", "")
	sev := fs.String("severity", "", "")
	rule := fs.String("rule", "", "")
	since := fs.String("since", "", "")
	q := fs.String("q", "", "")
	limit := fs.Int("limit", 50, "")
	asJSON := fs.Bool("json", false, "")
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	t := now(c.now)
	from, err := parseSince(*since, t)
	if err != nil {
		c.env.Errorf("%v", err)
		return 1
	}
	return c.env.withControl(cf, time.Minute, func(ctx context.Context, conn *control.Conn) int {
		list, err := conn.Incidents(ctx, ops.IncidentFilter{Status: *st, Severity: *sev, Rule: *rule, Since: from,
			Query: *q, Limit: *limit})
		if err != nil {
			c.env.Errorf("%v", err)
			return 1
		}
		if *asJSON {
			b, _ := json.MarshalIndent(list, "", "  ")
			c.env.Printf("%s\n", b)
			return 0
		}
		if len(list) == 0 {
			c.env.Printf("No incident.\n")
			return 0
		}
		printIncidents(c.env, list, t)
		return 0
	})
}

func printIncidents(env *Env, list []ops.Incident, t time.Time) {
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tSEVERITY\tRULE\tKEY\tCOUNT\tFIRST EVENT\tACKNOWLEDGED\tCLOSED")
	for _, in := range list {
		ack, closed := "-", "-"
		if in.Ack != nil {
			ack = in.Ack.By
		}
		if in.Close != nil {
			closed = in.Close.By
		}
		status := in.Status
		if in.Blocking() {
			status += " (blocking)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s (%s)\t%s\t%s\n", safe(in.ID), safe(status), safe(in.Severity),
			safe(in.Rule), clip(dash(in.Key), 40), in.Count, stamp(in.FirstSeen), ageOf(in.FirstSeen, t), safe(ack), safe(closed))
	}
	tw.Flush()
}

type incidentShowCommand struct {
	env *Env
	now func() time.Time
}

func (c *incidentShowCommand) Synopsis() string {
	return "Show an incident: timeline, entities, first steps"
}

func (c *incidentShowCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda incidents show ID [-json] [-config FILE]

  Prints an incident: its status, live count, the explanation in parts (what
  happened, likely cause, first steps with the command of each), the timeline
  (opened, count updates, acknowledged, resolved, closed, snapshots), the
  affected entities (user ids, actors, IPs, tables) and the excerpt. ID is the
  incident's id (or its fingerprint).

Flags:
  -json             Print JSON (with every entity).
` + controlFlagsHelp)
}

// maxShownEntities is how many values of each field tda incidents show prints.
const maxShownEntities = 20

func (c *incidentShowCommand) Run(args []string) int {
	fs := c.env.FlagSet("incidents show")
	cf := addControlFlags(fs)
	asJSON := fs.Bool("json", false, "")
	pos, ok, code := c.env.parseMixed(fs, args, c.Help)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		c.env.Errorf("give one incident id (tda incidents lists them)")
		return 1
	}
	return c.env.withControl(cf, time.Minute, func(ctx context.Context, conn *control.Conn) int {
		d, err := conn.Incident(ctx, pos[0])
		if err != nil {
			c.env.Errorf("%v", err)
			return 1
		}
		if *asJSON {
			b, _ := json.MarshalIndent(d, "", "  ")
			c.env.Printf("%s\n", b)
			return 0
		}
		printIncident(c.env, d, now(c.now))
		return 0
	})
}

func printIncident(env *Env, d ops.IncidentDetail, t time.Time) {
	env.Printf("Incident %s: %s %s, %s\n", safe(d.ID), safe(d.Severity), safe(d.Rule), safe(d.Status))
	if d.Blocking() {
		env.Printf("  BLOCKING: nobody has acknowledged it; restores and migrations are refused until someone does.\n")
	}
	if d.Key != "" {
		env.Printf("  key          %s\n", safe(d.Key))
	}
	env.Printf("  count        %d events (threshold %d in %s)\n", d.Count, d.Threshold, safe(d.Window))
	env.Printf("  first event  %s (%s)\n", stamp(d.FirstSeen), ageOf(d.FirstSeen, t))
	env.Printf("  last event   %s\n", stamp(d.LastSeen))
	env.Printf("  origin       %s%s\n", dash(d.Origin), parens(d.Source))
	if d.Ack != nil {
		env.Printf("  acknowledged by %s at %s: %s\n", safe(d.Ack.By), stamp(d.Ack.At), safe(d.Ack.Comment))
	}
	if !d.ResolvedAt.IsZero() {
		env.Printf("  resolved     %s\n", stamp(d.ResolvedAt))
	}
	if d.Close != nil {
		env.Printf("  closed by %s at %s: %s\n", safe(d.Close.By), stamp(d.Close.At), safe(d.Close.Note))
	}
	env.Printf("  fingerprint  %s\n", safe(d.Fingerprint))

	x := d.Explained
	env.Printf("\nWhat happened\n  %s\n", safe(x.What))
	if x.Cause != "" {
		env.Printf("Likely cause\n  %s\n", safe(x.Cause))
	}
	env.Printf("First steps\n")
	for i, s := range x.Steps {
		env.Printf("  %d. %s\n", i+1, safe(s.Text))
		if cmd := stepCommand(s.Action, d.Incident); cmd != "" {
			env.Printf("     $ %s\n", cmd)
		}
	}
	if x.State != "" {
		env.Printf("  %s\n", safe(x.State))
	}

	env.Printf("\nTimeline\n")
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	for _, e := range d.Timeline {
		what := e.What
		if e.By != "" {
			what += " by " + e.By
		}
		text := e.Text
		if e.Snapshot != "" {
			text = strings.TrimSpace(e.Snapshot + " " + text)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\n", stamp(e.At), safe(what), e.Count, dash(text))
	}
	tw.Flush()

	env.Printf("\nEntities (%d", d.Entities.Total)
	if d.Entities.Truncated {
		env.Printf(", truncated: more were seen than kept")
	}
	env.Printf(")\n")
	fields := make([]string, 0, len(d.Entities.Fields))
	for f := range d.Entities.Fields {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	for _, f := range fields {
		vals := d.Entities.Fields[f]
		shown := vals
		if len(shown) > maxShownEntities {
			shown = shown[:maxShownEntities]
		}
		more := ""
		if len(vals) > len(shown) {
			more = fmt.Sprintf(" … and %d more", len(vals)-len(shown))
		}
		env.Printf("  %-9s %d: %s%s\n", safe(f), len(vals), safe(strings.Join(shown, ", ")), more)
	}
	if d.Entities.Total > 0 {
		env.Printf("  every value: tda incidents export %s -format csv\n", safe(d.ID))
	}
	if len(d.Excerpt) > 0 {
		env.Printf("\nExcerpt\n")
		for _, l := range d.Excerpt {
			env.Printf("  %s\n", safe(l))
		}
	}
}

// stepCommand is the CLI's form of a first step's panel control.
func stepCommand(action string, in ops.Incident) string {
	switch action {
	case ops.StepAcknowledge:
		if in.Ack != nil {
			return ""
		}
		return fmt.Sprintf(`tda incidents ack %s -by NAME -reason "what you are doing"`, in.ID)
	case ops.StepClose:
		if in.Close != nil {
			return ""
		}
		return fmt.Sprintf(`tda incidents close %s -by NAME -note "what happened and what was done"`, in.ID)
	case ops.StepEntities:
		return fmt.Sprintf("tda incidents export %s -format csv", in.ID)
	case ops.StepRestore:
		return fmt.Sprintf(`tda snapshot list, then tda restore -snapshot ID -to NEW_NAME (newest before %s)`, stamp(in.FirstSeen))
	case ops.StepSnapshot:
		return "tda snapshot list"
	case ops.StepOverride:
		return `tda override on -by NAME -reason "the approved work" -ttl 30m`
	}
	return ""
}

type incidentActCommand struct {
	env   *Env
	close bool
}

func (c *incidentActCommand) Synopsis() string {
	if c.close {
		return "Close a resolved incident with a note for the review"
	}
	return "Acknowledge an incident: who is on it and why"
}

func (c *incidentActCommand) Help() string {
	if c.close {
		return strings.TrimSpace(`
Usage: tda incidents close ID -by WHO -note TEXT [-config FILE]

  Closes an incident once the rule has resolved it (the burst ended) and
  someone acknowledged it, with a note for the post-incident review: what
  happened, what was done. Recorded in the audit log.

Flags:
  -by WHO           Who (or $TDA_ACTOR).
  -note TEXT        What happened and what was done (required).
` + controlFlagsHelp)
	}
	return strings.TrimSpace(`
Usage: tda incidents ack ID -by WHO -reason TEXT [-config FILE]

  Records that someone is on an incident. A HIGH incident keeps the system
  blocked (restores and migrations refused) until acknowledged; the state then
  says "acknowledged" until the incident is closed. Recorded in the audit log.

Flags:
  -by WHO           Who (or $TDA_ACTOR).
  -reason TEXT      What you are doing about it (required).
` + controlFlagsHelp)
}

func (c *incidentActCommand) Run(args []string) int {
	name := "incidents ack"
	if c.close {
		name = "incidents close"
	}
	fs := c.env.FlagSet(name)
	cf := addControlFlags(fs)
	by := actorFlag(fs)
	reason := fs.String("reason", "", "")
	note := fs.String("note", "", "")
	pos, ok, code := c.env.parseMixed(fs, args, c.Help)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		c.env.Errorf("give one incident id (tda incidents lists them)")
		return 1
	}
	return c.env.withControl(cf, time.Minute, func(ctx context.Context, conn *control.Conn) int {
		req := ops.IncidentAction{ID: pos[0], Reason: *reason, Note: *note}
		var in ops.Incident
		var err error
		if c.close {
			in, err = conn.CloseIncident(ctx, actorOf(*by), req)
		} else {
			in, err = conn.AcknowledgeIncident(ctx, actorOf(*by), req)
		}
		if err != nil {
			c.env.Errorf("%v", err)
			return 1
		}
		if c.close {
			c.env.Printf("Closed incident %s (%s) by %s at %s.\n", safe(in.ID), safe(in.Rule), safe(in.Close.By), stamp(in.Close.At))
			return 0
		}
		c.env.Printf("Acknowledged incident %s (%s) by %s at %s; it is %s.\n", safe(in.ID), safe(in.Rule),
			safe(in.Ack.By), stamp(in.Ack.At), safe(in.Status))
		if in.Open() {
			c.env.Printf("The rule still sees the burst: close it with a note once it has resolved (tda incidents close %s).\n", safe(in.ID))
		} else {
			c.env.Printf("Close it with a note once the damage is dealt with (tda incidents close %s).\n", safe(in.ID))
		}
		return 0
	})
}

type incidentEntitiesCommand struct{ env *Env }

func (c *incidentEntitiesCommand) Synopsis() string {
	return "Export an incident's affected entities as CSV or JSON"
}

func (c *incidentEntitiesCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda incidents export ID [-format csv|json] [-config FILE]

  Prints the distinct user ids, usernames, actors, IPs, tables and revisions
  the incident's events named (at most 10,000 per incident; "truncated" says
  when more were seen): CSV rows "field,value" or the JSON object.

Flags:
  -format FORMAT    csv (default) or json.
` + controlFlagsHelp)
}

func (c *incidentEntitiesCommand) Run(args []string) int {
	fs := c.env.FlagSet("incidents export")
	cf := addControlFlags(fs)
	format := fs.String("format", "csv", "")
	pos, ok, code := c.env.parseMixed(fs, args, c.Help)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		c.env.Errorf("give one incident id (tda incidents lists them)")
		return 1
	}
	if *format != "csv" && *format != "json" {
		c.env.Errorf("-format must be csv or json, not %q", *format)
		return 1
	}
	return c.env.withControl(cf, time.Minute, func(ctx context.Context, conn *control.Conn) int {
		d, err := conn.Incident(ctx, pos[0])
		if err != nil {
			c.env.Errorf("%v", err)
			return 1
		}
		if *format == "json" {
			b, _ := json.MarshalIndent(d.Entities, "", "  ")
			c.env.Printf("%s\n", b)
			return 0
		}
		if err := d.Entities.WriteCSV(c.env.Stdout); err != nil {
			c.env.Errorf("%v", err)
			return 1
		}
		if d.Entities.Truncated {
			fmt.Fprintf(c.env.Stderr, "Note: incident %s named more entities than tda keeps (%d): the list is truncated.\n",
				safe(d.ID), ops.MaxEntities)
		}
		return 0
	})
}
