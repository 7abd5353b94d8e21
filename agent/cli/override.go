package cli

import (
	"context"
	"strings"
	"time"

	"github.com/tda-dev/tda/agent/control"
	"github.com/tda-dev/tda/agent/ops"
)

type overrideCommand struct {
	env *Env
	// action is on, off or status.
	action string
}

func (c *overrideCommand) Synopsis() string {
	switch c.action {
	case "on":
		return "Declare override mode in the running agent"
	case "off":
		return "End override mode"
	}
	return "Show the override in force"
}

func (c *overrideCommand) Help() string {
	switch c.action {
	case "on":
		return strings.TrimSpace(`
Usage: tda override on -by NAME -reason TEXT -ttl DURATION [-config FILE]

  Declares override mode in every pipeline that has an override processor, as the
  app's own override_enabled line would: until it is turned off or the TTL ends,
  alerts of the rules marked overridable are recorded as suppressed (not paged),
  and actions refused while the system is blocked (restores, migrations) become
  possible. Needs the running agent. Recorded in the audit log.

Flags:
  -by NAME          Who declares it (or $TDA_ACTOR).
  -reason TEXT      What work the override covers (required).
  -ttl DURATION     How long it lasts, e.g. 30m (required; capped by max_ttl).
` + controlFlagsHelp)
	case "off":
		return strings.TrimSpace(`
Usage: tda override off -by NAME [-reason TEXT] [-config FILE]

  Ends override mode in every pipeline. Needs the running agent. Recorded in the
  audit log.

Flags:
  -by NAME          Who ends it (or $TDA_ACTOR).
  -reason TEXT      Why (optional).
` + controlFlagsHelp)
	}
	return strings.TrimSpace(`
Usage: tda override status [-config FILE]

  Prints the override in force: who declared it, why, until when, and whether it
  came from an operator or from the application's own log line.

Flags:
` + controlFlagsHelp)
}

func (c *overrideCommand) Run(args []string) int {
	fs := c.env.FlagSet("override " + c.action)
	cf := addControlFlags(fs)
	by := actorFlag(fs)
	reason := fs.String("reason", "", "")
	ttl := fs.String("ttl", "", "")
	asJSON := fs.Bool("json", false, "")
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	return c.env.withControl(cf, time.Minute, func(ctx context.Context, conn *control.Conn) int {
		var st ops.OverrideStatus
		var err error
		switch c.action {
		case "on":
			st, err = conn.OverrideOn(ctx, actorOf(*by), ops.OverrideRequest{Reason: *reason, TTL: *ttl})
		case "off":
			st, err = conn.OverrideOff(ctx, actorOf(*by), ops.OverrideRequest{Reason: *reason})
		default:
			st, err = conn.Override(ctx)
		}
		if err != nil {
			c.env.Errorf("%v", err)
			return 1
		}
		if *asJSON {
			return c.env.JSON(st)
		}
		if a := st.Active; a != nil {
			c.env.Printf("Override in force until %s (%s left)\n", stamp(a.Until), time.Until(a.Until).Round(time.Second))
			c.env.Printf("  declared by  %s (%s)\n", safe(a.Actor), safe(a.Origin))
			c.env.Printf("  since        %s\n", stamp(a.Since))
			c.env.Printf("  reason       %s\n", safe(a.Reason))
			return 0
		}
		switch c.action {
		case "on":
			c.env.Errorf("the agent took the declaration but reports no override in force: check its log")
			return 1
		case "off":
			c.env.Printf("Override ended.\n")
		default:
			c.env.Printf("No override is in force.\n")
		}
		return 0
	})
}
