package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/tda-dev/tda/sdk/termsafe"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tda-dev/tda/agent/control"
	"github.com/tda-dev/tda/agent/ops"
)

type migrateRequestCommand struct{ env *Env }

func (c *migrateRequestCommand) Synopsis() string {
	return "Ask for approval to run a database migration"
}

func (c *migrateRequestCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda migrate request -name NAME -by WHO [-reason TEXT] [-config FILE]

  Files a pending migration request. Another person approves or rejects it (tda
  migrate approve|reject, or the panel); tda migrate run refuses a migration
  without a valid approval, and a migration seen in the logs without one raises
  an alert.

Flags:
  -name NAME        The migration as its tool logs it: an Alembic revision, a
                    Flyway version, a Liquibase changeset (required).
  -by WHO           Who asks (or $TDA_ACTOR).
  -reason TEXT      What it changes and why.
` + controlFlagsHelp)
}

func (c *migrateRequestCommand) Run(args []string) int {
	fs := c.env.FlagSet("migrate request")
	cf := addControlFlags(fs)
	by := actorFlag(fs)
	name := fs.String("name", "", "")
	reason := fs.String("reason", "", "")
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	return c.env.withControl(cf, time.Minute, func(ctx context.Context, conn *control.Conn) int {
		m, err := conn.RequestMigration(ctx, actorOf(*by), ops.MigrationRequest{Name: *name, Reason: *reason})
		if err != nil {
			c.env.Errorf("%v", err)
			return 1
		}
		c.env.Printf("Migration request %s (%s) is pending. Another person approves it with:\n\n    tda migrate approve %s -by NAME -reason TEXT\n",
			m.ID, m.Name, m.ID)
		return 0
	})
}

type migrateDecideCommand struct {
	env     *Env
	approve bool
}

func (c *migrateDecideCommand) verb() string {
	if c.approve {
		return "approve"
	}
	return "reject"
}

func (c *migrateDecideCommand) Synopsis() string {
	if c.approve {
		return "Approve a pending migration request"
	}
	return "Reject a pending migration request"
}

func (c *migrateDecideCommand) Help() string {
	extra := ""
	if c.approve {
		extra = `
  Nobody approves their own request. While the system is blocked (a HIGH alert
  firing and not acknowledged) an approval needs an override in force. The
  approval lasts -valid-for (default: the http block's approval_validity, 24h).
`
	}
	valid := ""
	if c.approve {
		valid = "\n  -valid-for DUR     How long the approval lasts, e.g. 4h."
	}
	return strings.TrimSpace(fmt.Sprintf(`
Usage: tda migrate %s ID -by WHO -reason TEXT [-config FILE]

  Records the decision on migration request ID with who decided and why, in the
  request and in the audit log.
%s
Flags:
  -by WHO           Who decides (or $TDA_ACTOR).
  -reason TEXT      Why (required).%s
`, c.verb(), extra, valid) + controlFlagsHelp)
}

func (c *migrateDecideCommand) Run(args []string) int {
	fs := c.env.FlagSet("migrate " + c.verb())
	cf := addControlFlags(fs)
	by := actorFlag(fs)
	reason := fs.String("reason", "", "")
	validFor := fs.String("valid-for", "", "")
	// The ID may come before the flags: tda migrate approve 3 -by bob -reason ok.
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	if id == "" && fs.NArg() > 0 {
		id = fs.Arg(0)
	}
	if id == "" {
		c.env.Errorf("which request? give its ID (see tda migrate list)")
		return 1
	}
	return c.env.withControl(cf, time.Minute, func(ctx context.Context, conn *control.Conn) int {
		m, err := conn.DecideMigration(ctx, actorOf(*by), ops.Decision{ID: id, Approve: c.approve, Reason: *reason, ValidFor: *validFor})
		if err != nil {
			c.env.Errorf("%v", err)
			return 1
		}
		if c.approve {
			c.env.Printf("Migration request %s (%s) approved by %s until %s.\n", safe(m.ID), safe(m.Name), safe(m.DecidedBy), stamp(m.ValidUntil))
		} else {
			c.env.Printf("Migration request %s (%s) rejected by %s.\n", safe(m.ID), safe(m.Name), safe(m.DecidedBy))
		}
		return 0
	})
}

type migrateListCommand struct{ env *Env }

func (c *migrateListCommand) Synopsis() string { return "List migration requests and their decisions" }

func (c *migrateListCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda migrate list [-status STATUS] [-json] [-config FILE]

  Lists migration requests, newest first: who asked, who decided and why, how
  long an approval lasts, and the runs with their pre-migration snapshot.

Flags:
  -status STATUS    pending, approved, rejected, running, succeeded or failed.
  -limit N          At most N requests (default 50).
  -json             Print JSON.
` + controlFlagsHelp)
}

func (c *migrateListCommand) Run(args []string) int {
	fs := c.env.FlagSet("migrate list")
	cf := addControlFlags(fs)
	status := fs.String("status", "", "")
	limit := fs.Int("limit", 50, "")
	asJSON := fs.Bool("json", false, "")
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	return c.env.withControl(cf, time.Minute, func(ctx context.Context, conn *control.Conn) int {
		list, err := conn.Migrations(ctx, ops.MigrationFilter{Status: *status, Limit: *limit})
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
			c.env.Printf("No migration request.\n")
			return 0
		}
		now := time.Now()
		tw := tabwriter.NewWriter(c.env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSTATUS\tREQUESTED\tBY\tDECIDED BY\tWHY\tVALID UNTIL")
		for _, m := range list {
			valid := "-"
			if !m.ValidUntil.IsZero() {
				valid = stamp(m.ValidUntil)
				if !m.Approved(now) {
					valid += " (expired)"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", safe(m.ID), safe(m.Name), safe(m.Status), ageOf(m.RequestedAt, now),
				safe(m.RequestedBy), dash(m.DecidedBy), dash(m.Decision), valid)
		}
		tw.Flush()
		for _, m := range list {
			for _, r := range m.Runs {
				c.env.Printf("  %s run by %s %s: %s, pre-migration snapshot %s%s\n", safe(m.ID), safe(r.By), stamp(r.Started), safe(r.Outcome),
					dash(r.Snapshot), parens(r.Override))
			}
		}
		return 0
	})
}

// dash shows s, escaped for the terminal, or "-" when it is empty.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return termsafe.String(s)
}

// safe escapes text from logs or API input for the terminal: a control character or a
// newline in it can neither act on the terminal nor forge a row of a table.
func safe(s string) string { return termsafe.String(s) }

func parens(s string) string {
	if s == "" {
		return ""
	}
	return " (" + termsafe.String(s) + ")"
}
