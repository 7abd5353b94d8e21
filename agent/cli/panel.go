package cli

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tda-dev/tda/agent/control"
	"github.com/tda-dev/tda/agent/panel"
)

type panelCommand struct{ env *Env }

func (c *panelCommand) Synopsis() string { return "Serve the web control panel" }

func (c *panelCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda panel -config FILE [-listen ADDR]

  Serves the control panel and its API with the tokens of the config's http block
  (127.0.0.1:8470 unless http.listen or -listen say otherwise). Every request goes
  to the running agent through its socket; while no agent runs, it reads and
  writes the state store directly (restores and overrides then need the agent).
  tda run serves the same panel itself when the config has an http block.

  Subcommands: tda panel export (the static GitHub Pages build), tda panel
  publish (the JSON files that build reads).

Flags:
  -listen ADDR      Listen address (overrides http.listen).
` + controlFlagsHelp)
}

func (c *panelCommand) Run(args []string) int {
	fs := c.env.FlagSet("panel")
	cf := addControlFlags(fs)
	listen := fs.String("listen", "", "")
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	conn, setup := c.env.connect(cf)
	if conn == nil {
		return 1
	}
	defer release(conn)
	if setup.HTTP == nil {
		c.env.Errorf("the config has no http block: add one with an operator token (see docs/panel.md)")
		return 1
	}
	log := c.env.Logger("info", "text")
	srv, err := control.Serve(control.ServeOptions{Ops: conn, HTTP: setup.HTTP, Listen: *listen,
		UI: panel.Handler(), Logger: log})
	if err != nil {
		c.env.Errorf("%v", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("serving", "panel", "http://"+srv.Addr+"/", "backend", conn.Where(ctx))
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shutdown)
	return 0
}

type panelExportCommand struct{ env *Env }

func (c *panelExportCommand) Synopsis() string {
	return "Write the panel as a static site for GitHub Pages"
}

func (c *panelExportCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda panel export -out DIR -repo OWNER/NAME [-ref production] [-api URL]

  Writes the control panel as a static site (index.html, app.js, app.css,
  config.json, data/) that works from GitHub Pages. There it acts by dispatching
  the repository's workflows (snapshot, restore, approve-migration, prune) on the
  -ref branch with a fine-grained token the operator pastes (Actions: write; kept
  in the tab's sessionStorage only), and it reads the JSON files the workflows
  publish into data/ with tda panel publish. See docs/panel.md.

Flags:
  -out DIR                 Output directory (required).
  -repo OWNER/NAME         The repository holding the workflows (required).
  -ref BRANCH              Branch the workflows are dispatched on (default production).
  -api URL                 REST API base URL (default https://api.github.com).
  -snapshot-workflow FILE  Default snapshot.yml; likewise -restore-workflow
                           (restore.yml), -migration-workflow
                           (approve-migration.yml), -prune-workflow (prune.yml).
`)
}

func (c *panelExportCommand) Run(args []string) int {
	fs := c.env.FlagSet("panel export")
	out := fs.String("out", "", "")
	repo := fs.String("repo", "", "")
	ref := fs.String("ref", "production", "")
	apiURL := fs.String("api", "https://api.github.com", "")
	wf := map[string]*string{}
	for k, v := range panel.DefaultWorkflows {
		wf[k] = fs.String(k+"-workflow", v, "")
	}
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	if *out == "" {
		c.env.Errorf("-out DIR is required")
		return 1
	}
	owner, name, _ := strings.Cut(*repo, "/")
	workflows := map[string]string{}
	for k, v := range wf {
		workflows[k] = *v
	}
	cfg := panel.GitHubConfig{API: *apiURL, Owner: owner, Repo: name, Ref: *ref, Workflows: workflows}
	if err := panel.Export(*out, cfg); err != nil {
		c.env.Errorf("%v", err)
		return 1
	}
	c.env.Printf("Wrote the GitHub Pages panel to %s (workflows dispatched on %s of %s).\n", *out, *ref, *repo)
	return 0
}

type panelPublishCommand struct{ env *Env }

func (c *panelPublishCommand) Synopsis() string { return "Write the JSON files the static panel reads" }

func (c *panelPublishCommand) Help() string {
	return strings.TrimSpace(`
Usage: tda panel publish -out DIR [-config FILE | -addr URL -token TOKEN]

  Writes state.json, alerts.json, snapshots.json and migrations.json for the
  static panel (tda panel export) into DIR, usually the site's data/ directory.
  Pages sites are public: log excerpts, alert keys (IP addresses, user names),
  origins, reasons and snapshot tags are left out.

Flags:
  -out DIR          Output directory (required).
` + controlFlagsHelp)
}

func (c *panelPublishCommand) Run(args []string) int {
	fs := c.env.FlagSet("panel publish")
	cf := addControlFlags(fs)
	out := fs.String("out", "", "")
	if ok, code := c.env.Parse(fs, args, c.Help); !ok {
		return code
	}
	if *out == "" {
		c.env.Errorf("-out DIR is required")
		return 1
	}
	return c.env.withControl(cf, 2*time.Minute, func(ctx context.Context, conn *control.Conn) int {
		if err := panel.Publish(ctx, conn, *out); err != nil {
			c.env.Errorf("%v", err)
			return 1
		}
		c.env.Printf("Published the panel data to %s.\n", *out)
		return 0
	})
}
