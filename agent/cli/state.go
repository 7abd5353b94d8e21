package cli

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/tda-dev/tda/agent/control"
)

type stateCommand struct{ env *Env }

func (c *stateCommand) Synopsis() string {
	return "Show the system state: normal, degraded, acknowledged, override or blocked"
}

func (c *stateCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda state [-json] [-config FILE]

  Prints the system state with its reasons: blocked (a HIGH incident nobody
  acknowledged, whether or not its burst has ended), override (who declared it,
  why, until when), acknowledged (a HIGH incident someone is on, not closed
  yet), degraded (a source detached, a plugin restarting, a sink failing, dead
  letters kept: how many per instance) or normal. Exits 0 when normal, 2
  otherwise, for scripts.

Flags:
  -json             Print JSON.
` + controlFlagsHelp)
}

func (c *stateCommand) Run(args []string) int {
	fs := c.env.FlagSet("state")
	cf := addControlFlags(fs)
	asJSON := fs.Bool("json", false, "")
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	return c.env.withControl(cf, time.Minute, func(ctx context.Context, conn *control.Conn) int {
		st, err := conn.State(ctx)
		if err != nil {
			c.env.Errorf("%v", err)
			return 1
		}
		if *asJSON {
			b, _ := json.MarshalIndent(st, "", "  ")
			c.env.Printf("%s\n", b)
		} else {
			c.env.Printf("%s\n", strings.ToUpper(st.Status))
			for _, r := range st.Reasons {
				c.env.Printf("  - %s\n", safe(r))
			}
			for _, in := range st.Blocking {
				c.env.Printf("\nAcknowledge incident %s (%s) once someone is on it:\n  tda incidents ack %s -by NAME -reason \"what you are doing\"\n",
					safe(in.ID), safe(in.Rule), safe(in.ID))
			}
			if st.PendingMigrations > 0 {
				c.env.Printf("%d migration request(s) await a decision (tda migrate list -status pending).\n", st.PendingMigrations)
			}
		}
		if st.Status != "normal" {
			return 2
		}
		return 0
	})
}
