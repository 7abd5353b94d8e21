package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tda-dev/tda/agent/control"
	"github.com/tda-dev/tda/agent/deadletter"
	"github.com/tda-dev/tda/agent/ops"
)

// deadletterActCommand is tda deadletter replay and tda deadletter drop.
type deadletterActCommand struct {
	env  *Env
	drop bool
	now  func() time.Time
}

func (c *deadletterActCommand) verb() string {
	if c.drop {
		return "drop"
	}
	return "replay"
}

func (c *deadletterActCommand) Synopsis() string {
	if c.drop {
		return "Delete dead letters for good"
	}
	return "Put dead letters back on their instance's queue"
}

func (c *deadletterActCommand) Help() string {
	if c.drop {
		return strings.TrimSpace(`
Usage: tda deadletter drop ID... | -all [-instance ADDR]  -reason TEXT [-by NAME] [-yes]

  Deletes dead letters for good: their events are not delivered. Lists what it
  is about to delete and asks for confirmation unless -yes. Each drop is in the
  audit log with who, why, which letter and which instance.

Flags:
  -all              Every dead letter (with -instance: every one of that instance).
  -instance ADDR    With -all: only the letters of this instance, e.g. sink.slack.oncall.
  -reason TEXT      Why they can go (required).
  -by NAME          Who drops them (or $TDA_ACTOR; with -addr, the token's holder).
  -yes              Do not ask for confirmation.
` + controlFlagsHelp)
	}
	return strings.TrimSpace(`
Usage: tda deadletter replay ID... | -all [-instance ADDR]  -reason TEXT [-by NAME]

  Puts each dead letter's events back on the queue of the instance that gave up
  on them, once the cause is fixed (the webhook rotated, the plugin upgraded); the
  letter goes once the queue has taken them. A batch that fails again becomes a
  new dead letter. Each replay is in the audit log with who, why, which letter and
  which instance. Exits 1 if any letter could not be replayed.

Flags:
  -all              Every dead letter (with -instance: every one of that instance).
  -instance ADDR    With -all: only the letters of this instance, e.g. sink.slack.oncall.
  -reason TEXT      What was fixed (required).
  -by NAME          Who replays them (or $TDA_ACTOR; with -addr, the token's holder).
` + controlFlagsHelp)
}

func (c *deadletterActCommand) Run(args []string) int {
	fs := c.env.FlagSet("deadletter " + c.verb())
	cf := addControlFlags(fs)
	by := actorFlag(fs)
	reason := fs.String("reason", "", "")
	all := fs.Bool("all", false, "")
	instance := fs.String("instance", "", "")
	yes := fs.Bool("yes", false, "")
	pos, ok, code := c.env.parseMixed(fs, args, c.Help)
	if !ok {
		return code
	}
	if !c.drop && *yes {
		c.env.Errorf("-yes is a flag of tda deadletter drop; a replay asks for no confirmation")
		return 1
	}
	ids, err := parseIDs(pos)
	switch {
	case err != nil:
		c.env.Errorf("%v", err)
		return 1
	case *all && len(ids) > 0:
		c.env.Errorf("give ids or -all, not both")
		return 1
	case !*all && len(ids) == 0:
		c.env.Errorf("which dead letters? give their ids, or -all (tda deadletter list shows them)")
		return 1
	case *instance != "" && !*all:
		c.env.Errorf("-instance selects letters with -all; with ids, the ids say which")
		return 1
	case strings.TrimSpace(*reason) == "":
		c.env.Errorf("a reason is required: say why you %s these dead letters (-reason)", c.verb())
		return 1
	}
	return c.env.withControl(cf, 10*time.Minute, func(ctx context.Context, conn *control.Conn) int {
		selected, err := c.selectLetters(ctx, conn, ids, *all, *instance)
		if err != nil {
			c.env.Errorf("%v", err)
			return 1
		}
		if len(selected) == 0 {
			c.env.Printf("No dead letter to %s.\n", c.verb())
			return 0
		}
		if c.drop && !*yes && !c.confirm(selected) {
			c.env.Printf("Nothing dropped.\n")
			return 1
		}
		failed := 0
		for _, l := range selected {
			req := ops.DeadLetterAction{ID: l.ID, Reason: *reason}
			var got deadletter.Letter
			if c.drop {
				got, err = conn.DropDeadLetter(ctx, actorOf(*by), req)
			} else {
				got, err = conn.ReplayDeadLetter(ctx, actorOf(*by), req)
			}
			if err != nil {
				failed++
				c.env.Errorf("dead letter %d: %v", l.ID, err)
				switch ops.KindOf(err) {
				case ops.KindInvalid, ops.KindForbidden, ops.KindUnavailable:
					return 1 // the next ones would be refused alike
				}
				continue
			}
			done := "Replayed"
			if c.drop {
				done = "Dropped"
			}
			c.env.Printf("%s dead letter %d (%s, %s).\n", done, got.ID, safe(got.Instance), plural(got.Events, "event"))
		}
		if failed > 0 {
			return 1
		}
		return 0
	})
}

// selectLetters returns the letters named by ids (an id the agent does not know is kept, so
// that the call reports it), or with all every letter of instance ("" for any).
func (c *deadletterActCommand) selectLetters(ctx context.Context, conn *control.Conn, ids []uint64, all bool, instance string) ([]deadletter.Letter, error) {
	if !all && !c.drop {
		out := make([]deadletter.Letter, 0, len(ids))
		for _, id := range ids {
			out = append(out, deadletter.Letter{ID: id})
		}
		return out, nil
	}
	list, err := conn.DeadLetters(ctx)
	if err != nil {
		return nil, err
	}
	if all {
		return ofInstance(list, instance), nil
	}
	known := map[uint64]deadletter.Letter{}
	for _, l := range list {
		known[l.ID] = l
	}
	out := make([]deadletter.Letter, 0, len(ids))
	for _, id := range ids {
		l, ok := known[id]
		if !ok {
			l = deadletter.Letter{ID: id}
		}
		out = append(out, l)
	}
	return out, nil
}

// confirm lists the letters about to be dropped and asks; only "yes" confirms.
func (c *deadletterActCommand) confirm(list []deadletter.Letter) bool {
	c.env.Printf("About to drop, for good:\n")
	tw := tabwriter.NewWriter(c.env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  ID\tINSTANCE\tREASON\tEVENTS\tAGE")
	for _, l := range list {
		if l.Instance == "" {
			fmt.Fprintf(tw, "  %d\t(not listed)\t-\t-\t-\n", l.ID)
			continue
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%d\t%s\n", l.ID, safe(l.Instance), safe(string(l.Reason)), l.Events, ageOf(l.Time, now(c.now)))
	}
	tw.Flush()
	answer, err := c.env.UI.Ask(fmt.Sprintf("Type yes to drop %d dead letter(s):", len(list)))
	return err == nil && strings.TrimSpace(answer) == "yes"
}
