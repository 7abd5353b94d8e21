package cli

import "github.com/hashicorp/cli"

// Commands returns every subcommand by name. Add a command by adding its line here.
func Commands(env *Env) map[string]cli.CommandFactory {
	return map[string]cli.CommandFactory{
		"run":      func() (cli.Command, error) { return &runCommand{env: env}, nil },
		"validate": func() (cli.Command, error) { return &validateCommand{env: env}, nil },
		"replay":   func() (cli.Command, error) { return &replayCommand{env: env}, nil },
		"plugins":  func() (cli.Command, error) { return &pluginsCommand{env: env}, nil },
		"version":  func() (cli.Command, error) { return &versionCommand{env: env}, nil },
		"tune":     func() (cli.Command, error) { return &tuneCommand{env: env}, nil },

		"state":      func() (cli.Command, error) { return &stateCommand{env: env}, nil },
		"alerts":     func() (cli.Command, error) { return &alertsCommand{env: env}, nil },
		"alerts ack": func() (cli.Command, error) { return &alertsAckCommand{env: env}, nil },
		"audit":      func() (cli.Command, error) { return &auditCommand{env: env}, nil },
		"override": group("Declare or end override mode",
			"Usage: tda override <on|off|status> [flags]\n\n  Override mode marks declared bulk work: alerts of overridable rules are recorded\n  as suppressed, and actions refused while blocked become possible."),
		"migrate": group("Request, approve and run database migrations",
			"Usage: tda migrate <request|approve|reject|list|run> [flags]\n\n  Migrations need an approved request from someone other than the requester;\n  tda migrate run takes the pre-migration snapshot and runs one."),
		"override on":     func() (cli.Command, error) { return &overrideCommand{env: env, action: "on"}, nil },
		"override off":    func() (cli.Command, error) { return &overrideCommand{env: env, action: "off"}, nil },
		"override status": func() (cli.Command, error) { return &overrideCommand{env: env, action: "status"}, nil },
		"migrate request": func() (cli.Command, error) { return &migrateRequestCommand{env: env}, nil },
		"migrate approve": func() (cli.Command, error) { return &migrateDecideCommand{env: env, approve: true}, nil },
		"migrate reject":  func() (cli.Command, error) { return &migrateDecideCommand{env: env}, nil },
		"migrate list":    func() (cli.Command, error) { return &migrateListCommand{env: env}, nil },
		"panel":           func() (cli.Command, error) { return &panelCommand{env: env}, nil },
		"panel export":    func() (cli.Command, error) { return &panelExportCommand{env: env}, nil },
		"panel publish":   func() (cli.Command, error) { return &panelPublishCommand{env: env}, nil },

		"deadletter":        group("List, show, replay and drop the batches tda gave up on", deadletterGroupHelp),
		"deadletter list":   func() (cli.Command, error) { return &deadletterListCommand{env: env}, nil },
		"deadletter show":   func() (cli.Command, error) { return &deadletterShowCommand{env: env}, nil },
		"deadletter replay": func() (cli.Command, error) { return &deadletterActCommand{env: env}, nil },
		"deadletter drop":   func() (cli.Command, error) { return &deadletterActCommand{env: env, drop: true}, nil },

		"snapshot create": func() (cli.Command, error) { return &snapshotCreateCommand{env: env}, nil },
		"snapshot list":   func() (cli.Command, error) { return &snapshotListCommand{env: env}, nil },
		"snapshot prune":  func() (cli.Command, error) { return &snapshotPruneCommand{env: env}, nil },
		"restore":         func() (cli.Command, error) { return &restoreCommand{env: env}, nil },
		"migrate run":     func() (cli.Command, error) { return &migrateRunCommand{env: env}, nil },
	}
}
