package cli

import "github.com/hashicorp/cli"

// command is one line of the command table. A group ("snapshot", "migrate") names a family of
// subcommands and has no factory of its own: run alone, or with `tda help GROUP`, it prints its
// help and the list of its subcommands.
type command struct {
	name     string
	synopsis string // groups only; a command's synopsis is its own Synopsis()
	help     string // groups only
	factory  func(env *Env) cli.Command
}

// table is every command, in the order `tda help` lists them. It is the one place a command is
// added: the root help, `tda -h`, `tda help NAME`, the unknown-command suggestions and the
// dispatch all read it.
var table = []command{
	{name: "run", factory: func(env *Env) cli.Command { return &runCommand{env: env} }},
	{name: "validate", factory: func(env *Env) cli.Command { return &validateCommand{env: env} }},
	{name: "plugins", factory: func(env *Env) cli.Command { return &pluginsCommand{env: env} }},
	{name: "plugin", synopsis: "Start a new plugin",
		help: "Usage: tda plugin new NAME [flags]\n\n  Plugins are Go programs in their own module that import only the tda SDK\n  (github.com/tda-dev/tda/sdk); tda plugin new writes one, ready to build and test."},
	{name: "plugin new", factory: func(env *Env) cli.Command { return &pluginNewCommand{env: env} }},
	{name: "replay", factory: func(env *Env) cli.Command { return &replayCommand{env: env} }},
	{name: "tune", factory: func(env *Env) cli.Command { return &tuneCommand{env: env} }},
	{name: "explain", factory: func(env *Env) cli.Command { return &explainCommand{env: env} }},

	{name: "state", factory: func(env *Env) cli.Command { return &stateCommand{env: env} }},
	{name: "incidents", factory: func(env *Env) cli.Command { return &incidentsCommand{env: env} }},
	{name: "incidents show", factory: func(env *Env) cli.Command { return &incidentShowCommand{env: env} }},
	{name: "incidents ack", factory: func(env *Env) cli.Command { return &incidentActCommand{env: env} }},
	{name: "incidents close", factory: func(env *Env) cli.Command { return &incidentActCommand{env: env, close: true} }},
	{name: "incidents export", factory: func(env *Env) cli.Command { return &incidentEntitiesCommand{env: env} }},
	{name: "alerts", factory: func(env *Env) cli.Command { return &alertsCommand{env: env} }},
	{name: "alerts ack", factory: func(env *Env) cli.Command { return &alertsAckCommand{env: env} }},
	{name: "audit", factory: func(env *Env) cli.Command { return &auditCommand{env: env} }},
	{name: "override", synopsis: "Declare or end override mode",
		help: "Usage: tda override <on|off|status> [flags]\n\n  Override mode marks declared bulk work: alerts of overridable rules are recorded\n  as suppressed, and actions refused while blocked become possible."},
	{name: "override on", factory: func(env *Env) cli.Command { return &overrideCommand{env: env, action: "on"} }},
	{name: "override off", factory: func(env *Env) cli.Command { return &overrideCommand{env: env, action: "off"} }},
	{name: "override status", factory: func(env *Env) cli.Command { return &overrideCommand{env: env, action: "status"} }},

	{name: "deadletter", synopsis: "List, show, replay and drop the batches tda gave up on", help: deadletterGroupHelp},
	{name: "deadletter list", factory: func(env *Env) cli.Command { return &deadletterListCommand{env: env} }},
	{name: "deadletter show", factory: func(env *Env) cli.Command { return &deadletterShowCommand{env: env} }},
	{name: "deadletter replay", factory: func(env *Env) cli.Command { return &deadletterActCommand{env: env} }},
	{name: "deadletter drop", factory: func(env *Env) cli.Command { return &deadletterActCommand{env: env, drop: true} }},

	{name: "snapshot", synopsis: "Take, list and prune database snapshots",
		help: "Usage: tda snapshot <create|list|prune> [flags]\n\n  Snapshots are taken by the snapshot sink's provider (PostgreSQL or Aurora) on a\n  schedule, before migrations, on a HIGH alert, or by hand; retention keeps daily,\n  weekly and monthly tiers and only ever deletes snapshots tda created."},
	{name: "snapshot create", factory: func(env *Env) cli.Command { return &snapshotCreateCommand{env: env} }},
	{name: "snapshot list", factory: func(env *Env) cli.Command { return &snapshotListCommand{env: env} }},
	{name: "snapshot prune", factory: func(env *Env) cli.Command { return &snapshotPruneCommand{env: env} }},
	{name: "restore", factory: func(env *Env) cli.Command { return &restoreCommand{env: env} }},
	{name: "repair", factory: func(env *Env) cli.Command { return &repairCommand{env: env} }},

	{name: "migrate", synopsis: "Request, approve and run database migrations",
		help: "Usage: tda migrate <request|approve|reject|list|run> [flags]\n\n  Migrations need an approved request from someone other than the requester;\n  tda migrate run takes the pre-migration snapshot and runs one."},
	{name: "migrate request", factory: func(env *Env) cli.Command { return &migrateRequestCommand{env: env} }},
	{name: "migrate approve", factory: func(env *Env) cli.Command { return &migrateDecideCommand{env: env, approve: true} }},
	{name: "migrate reject", factory: func(env *Env) cli.Command { return &migrateDecideCommand{env: env} }},
	{name: "migrate list", factory: func(env *Env) cli.Command { return &migrateListCommand{env: env} }},
	{name: "migrate run", factory: func(env *Env) cli.Command { return &migrateRunCommand{env: env} }},

	{name: "panel", factory: func(env *Env) cli.Command { return &panelCommand{env: env} }},
	{name: "panel export", factory: func(env *Env) cli.Command { return &panelExportCommand{env: env} }},
	{name: "panel publish", factory: func(env *Env) cli.Command { return &panelPublishCommand{env: env} }},

	{name: "version", factory: func(env *Env) cli.Command { return &versionCommand{env: env} }},
}

// newCommand returns the command named name, or nil for a group or an unknown name.
func newCommand(env *Env, name string) cli.Command {
	for _, c := range table {
		if c.name == name && c.factory != nil {
			return c.factory(env)
		}
	}
	return nil
}
