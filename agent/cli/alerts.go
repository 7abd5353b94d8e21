package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tda-dev/tda/agent/control"
	"github.com/tda-dev/tda/agent/ops"
)

type alertsCommand struct{ env *Env }

func (c *alertsCommand) Synopsis() string { return "List alerts from the audit trail" }

func (c *alertsCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda alerts [-state open] [-severity HIGH] [-rule NAME] [-json] [-config FILE]

  Lists the incidents the rules reported (the jsonl sink the panel reads), most
  recently updated first, by the rule's state, with whether someone acknowledged
  them. tda incidents lists them by their lifecycle (open, acknowledged,
  resolved, closed) and searches past ones.

Flags:
  -state STATE      firing, suppressed, resolved or open (default open).
  -severity SEV     HIGH, MEDIUM or LOW.
  -rule NAME        One rule.
  -limit N          At most N (default 50).
  -json             Print JSON (with explanations and excerpts).
` + controlFlagsHelp)
}

func (c *alertsCommand) Run(args []string) int {
	fs := c.env.FlagSet("alerts")
	cf := addControlFlags(fs)
	st := fs.String("state", "open", "")
	sev := fs.String("severity", "", "")
	rule := fs.String("rule", "", "")
	limit := fs.Int("limit", 50, "")
	asJSON := fs.Bool("json", false, "")
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	return c.env.withControl(cf, time.Minute, func(ctx context.Context, conn *control.Conn) int {
		list, err := conn.Alerts(ctx, ops.AlertFilter{State: *st, Severity: *sev, Rule: *rule, Limit: *limit})
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
			c.env.Printf("No alert.\n")
			return 0
		}
		now := time.Now()
		tw := tabwriter.NewWriter(c.env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSEVERITY\tRULE\tSTATE\tKEY\tCOUNT\tSINCE\tACKNOWLEDGED\tFINGERPRINT")
		for _, in := range list {
			ack := "-"
			if in.Ack != nil {
				ack = in.Ack.By
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%d in %s\t%s\t%s\t%s\n", safe(in.ID), safe(in.Severity), safe(in.Rule), safe(in.State),
				dash(in.Key), in.Count, in.Threshold, in.Window, ageOf(in.FirstSeen, now), safe(ack), safe(in.Fingerprint))
		}
		tw.Flush()
		return 0
	})
}

type alertsAckCommand struct{ env *Env }

func (c *alertsAckCommand) Synopsis() string { return "Acknowledge an alert with a comment" }

func (c *alertsAckCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda alerts ack ID|FINGERPRINT -by WHO -comment TEXT [-config FILE]

  Records that someone is on an incident (as tda incidents ack does). An
  acknowledged HIGH incident no longer blocks restores and migrations; the state
  says "acknowledged" until it is closed. Recorded in the audit log.

Flags:
  -by WHO           Who (or $TDA_ACTOR).
  -comment TEXT     What you are doing about it (required).
` + controlFlagsHelp)
}

func (c *alertsAckCommand) Run(args []string) int {
	fs := c.env.FlagSet("alerts ack")
	cf := addControlFlags(fs)
	by := actorFlag(fs)
	comment := fs.String("comment", "", "")
	var fp string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		fp, args = args[0], args[1:]
	}
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	if fp == "" && fs.NArg() > 0 {
		fp = fs.Arg(0)
	}
	return c.env.withControl(cf, time.Minute, func(ctx context.Context, conn *control.Conn) int {
		a, err := conn.Acknowledge(ctx, actorOf(*by), ops.AckRequest{Fingerprint: fp, Comment: *comment})
		if err != nil {
			c.env.Errorf("%v", err)
			return 1
		}
		c.env.Printf("Acknowledged incident %s (%s) by %s at %s.\n", safe(a.Incident), safe(a.Fingerprint), safe(a.By), stamp(a.At))
		return 0
	})
}

type auditCommand struct{ env *Env }

func (c *auditCommand) Synopsis() string { return "Show the audit log of operator actions" }

func (c *auditCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda audit [-actor WHO] [-action ACTION] [-limit N] [-json] [-config FILE]

  Prints who did what, when and why: overrides, migration requests and
  decisions, acknowledgements, snapshots and restores, refused attempts included.

Flags:
  -actor WHO        One person.
  -action ACTION    e.g. migration, migration.approve, override.on.
  -limit N          At most N entries (default 50).
  -json             Print JSON.
` + controlFlagsHelp)
}

func (c *auditCommand) Run(args []string) int {
	fs := c.env.FlagSet("audit")
	cf := addControlFlags(fs)
	actor := fs.String("actor", "", "")
	action := fs.String("action", "", "")
	limit := fs.Int("limit", 50, "")
	asJSON := fs.Bool("json", false, "")
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	return c.env.withControl(cf, time.Minute, func(ctx context.Context, conn *control.Conn) int {
		list, err := conn.Audit(ctx, ops.AuditFilter{Actor: *actor, Action: *action, Limit: *limit})
		if err != nil {
			c.env.Errorf("%v", err)
			return 1
		}
		if *asJSON {
			b, _ := json.MarshalIndent(list, "", "  ")
			c.env.Printf("%s\n", b)
			return 0
		}
		tw := tabwriter.NewWriter(c.env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "WHEN\tWHO\tVIA\tACTION\tTARGET\tWHY\tOUTCOME")
		for _, e := range list {
			out := e.Outcome
			if e.Error != "" {
				out += ": " + e.Error
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", stamp(e.Time), safe(e.Actor), dash(e.Via), safe(e.Action),
				dash(e.Target), dash(e.Reason), safe(out))
		}
		tw.Flush()
		return 0
	})
}
