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
	return "Show the system state: normal, degraded, blocked or override"
}

func (c *stateCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda state [-json] [-config FILE]

  Prints the system state with its reasons: blocked (a HIGH alert firing and not
  acknowledged), override (who declared it, why, until when), degraded (a source
  detached, a plugin restarting, a sink failing, dead letters kept: how many per
  instance) or normal. Exits 0 when normal, 2 otherwise, for scripts.

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
				c.env.Printf("  - %s\n", r)
			}
			for _, r := range st.Reports {
				c.env.Printf("  * %s\n", r)
			}
			for _, in := range st.Blocking {
				c.env.Printf("\nAcknowledge %s once someone is on it (tda panel, or the API):\n  fingerprint %s\n", in.Rule, in.Fingerprint)
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
