package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tda-dev/tda/agent/control"
	"github.com/tda-dev/tda/agent/deadletter"
	"github.com/tda-dev/tda/agent/ops"
)

// deadletterGroupHelp introduces the dead-letter commands.
const deadletterGroupHelp = `Usage: tda deadletter <list|show|replay|drop> [flags] [ID...]

  A dead letter is a batch tda stopped trying to deliver or process: its destination
  refused it permanently (a revoked Slack webhook), or it failed, crashed or hung its
  plugin max_attempts times. It is kept with its events and its last error, and the
  system state is degraded until someone replays it (once the cause is fixed) or
  drops it. Needs the running agent; replays and drops are in the audit log.`

// The -json output of tda deadletter list is a JSON array of dead letters, oldest first;
// each object's keys are deadletter.Letter's: id, instance, pipeline (omitted when
// unknown), time (RFC 3339), reason (refused, crash_budget or deadline), error, attempts,
// events, bytes, kinds and preview (omitted when empty). Scripts rely on it: add keys,
// never rename or remove one.

// parseMixed is Parse for commands that take arguments: flags may come before, between or
// after them (tda deadletter replay 3 4 -reason "..." as well as -reason "..." 3 4). It
// returns the arguments; ok false means exit with the returned code.
func (e *Env) parseMixed(fs *flag.FlagSet, args []string, help func() string) (positional []string, ok bool, code int) {
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				fmt.Fprintln(e.Stdout, help())
				return nil, false, 0
			}
			e.Errorf("%v", err)
			fmt.Fprintln(e.Stderr)
			fmt.Fprintln(e.Stderr, help())
			return nil, false, 1
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, true, 0
		}
		if rest[0] == "--" {
			return append(positional, rest[1:]...), true, 0
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// parseIDs reads dead letter ids from the command line.
func parseIDs(args []string) ([]uint64, error) {
	ids := make([]uint64, 0, len(args))
	for _, a := range args {
		id, err := ops.ParseDeadLetterID(a)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// clip shortens s to n runes for a table cell, on one line.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func now(f func() time.Time) time.Time {
	if f == nil {
		return time.Now()
	}
	return f()
}

// --- list ---

type deadletterListCommand struct {
	env *Env
	// now is the clock the ages are computed from (time.Now when nil).
	now func() time.Time
}

func (c *deadletterListCommand) Synopsis() string {
	return "List the dead letters: batches tda gave up on"
}

func (c *deadletterListCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda deadletter list [-instance ADDR] [-json] [-config FILE]

  Lists the dead letters, oldest first: id, the instance that gave up (e.g.
  sink.slack.oncall), why (refused, crash_budget, deadline), how many events, how
  long ago, and the last error. tda state says whether there are any (it exits 2
  while the system is degraded).

  With -json, prints a JSON array of objects with the keys id, instance, pipeline,
  time, reason, error, attempts, events, bytes, kinds and preview (see
  docs/architecture.md); the shape is stable.

Flags:
  -instance ADDR    Only the dead letters of one instance.
  -json             Print JSON.
` + controlFlagsHelp)
}

func (c *deadletterListCommand) Run(args []string) int {
	fs := c.env.FlagSet("deadletter list")
	cf := addControlFlags(fs)
	instance := fs.String("instance", "", "")
	asJSON := fs.Bool("json", false, "")
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	if fs.NArg() > 0 {
		c.env.Errorf("tda deadletter list takes no arguments (got %q): use tda deadletter show ID for one letter", fs.Arg(0))
		return 1
	}
	return c.env.withControl(cf, time.Minute, func(ctx context.Context, conn *control.Conn) int {
		list, err := conn.DeadLetters(ctx)
		if err != nil {
			c.env.Errorf("%v", err)
			return 1
		}
		list = ofInstance(list, *instance)
		if *asJSON {
			b, _ := json.MarshalIndent(list, "", "  ")
			c.env.Printf("%s\n", b)
		} else {
			c.print(list, *instance)
		}
		return 0
	})
}

func ofInstance(list []deadletter.Letter, instance string) []deadletter.Letter {
	out := []deadletter.Letter{}
	for _, l := range list {
		if instance == "" || l.Instance == instance {
			out = append(out, l)
		}
	}
	return out
}

func (c *deadletterListCommand) print(list []deadletter.Letter, instance string) {
	if len(list) == 0 {
		if instance != "" {
			c.env.Printf("No dead letter from %s.\n", instance)
		} else {
			c.env.Printf("No dead letter.\n")
		}
		return
	}
	t := now(c.now)
	tw := tabwriter.NewWriter(c.env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tINSTANCE\tREASON\tEVENTS\tAGE\tERROR")
	for _, l := range list {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", l.ID, safe(l.Instance), safe(string(l.Reason)), l.Events, ageOf(l.Time, t), safe(clip(l.Error, 72)))
	}
	tw.Flush()
	c.env.Printf("\n%d dead letter(s). Fix the cause, then tda deadletter replay ID... -reason TEXT;\n"+
		"tda deadletter show ID prints a letter's events; tda deadletter drop ID... deletes them.\n", len(list))
}

// --- show ---

type deadletterShowCommand struct {
	env *Env
	now func() time.Time
}

func (c *deadletterShowCommand) Synopsis() string { return "Show a dead letter and its events" }

func (c *deadletterShowCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda deadletter show ID [-json] [-config FILE]

  Prints a dead letter: the instance and pipeline, why and when it was given up
  on, after how many attempts, the last error, then its events, one JSON object
  a line.

Flags:
  -json             Print {"letter": {...}, "events": [...]} as JSON.
` + controlFlagsHelp)
}

func (c *deadletterShowCommand) Run(args []string) int {
	fs := c.env.FlagSet("deadletter show")
	cf := addControlFlags(fs)
	asJSON := fs.Bool("json", false, "")
	pos, ok, code := c.env.parseMixed(fs, args, c.Help)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		c.env.Errorf("which dead letter? give one id (tda deadletter list shows them)")
		return 1
	}
	ids, err := parseIDs(pos)
	if err != nil {
		c.env.Errorf("%v", err)
		return 1
	}
	return c.env.withControl(cf, time.Minute, func(ctx context.Context, conn *control.Conn) int {
		d, err := conn.DeadLetter(ctx, ids[0])
		if err != nil {
			c.env.Errorf("%v", err)
			return 1
		}
		if *asJSON {
			b, _ := json.MarshalIndent(d, "", "  ")
			c.env.Printf("%s\n", b)
			return 0
		}
		l := d.Letter
		c.env.Printf("Dead letter %d\n", l.ID)
		c.env.Printf("  instance   %s\n", safe(l.Instance))
		if l.Pipeline != "" {
			c.env.Printf("  pipeline   %s\n", safe(l.Pipeline))
		}
		c.env.Printf("  since      %s (%s)\n", stamp(l.Time), ageOf(l.Time, now(c.now)))
		c.env.Printf("  reason     %s, after %d attempt(s)\n", safe(string(l.Reason)), l.Attempts)
		c.env.Printf("  error      %s\n", safe(l.Error))
		c.env.Printf("  events     %d (%d bytes)", l.Events, l.Bytes)
		if len(l.Kinds) > 0 {
			c.env.Printf(", kinds %s", safe(strings.Join(l.Kinds, ", ")))
		}
		c.env.Printf("\n\nEvents:\n")
		for _, e := range d.Events {
			c.env.Printf("%s\n", safe(compactJSON(e)))
		}
		return 0
	})
}

// compactJSON prints an event on one line.
func compactJSON(b json.RawMessage) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return string(b)
	}
	return buf.String()
}
