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

		"snapshot create": func() (cli.Command, error) { return &snapshotCreateCommand{env: env}, nil },
		"snapshot list":   func() (cli.Command, error) { return &snapshotListCommand{env: env}, nil },
		"snapshot prune":  func() (cli.Command, error) { return &snapshotPruneCommand{env: env}, nil },
		"restore":         func() (cli.Command, error) { return &restoreCommand{env: env}, nil },
		"migrate run":     func() (cli.Command, error) { return &migrateRunCommand{env: env}, nil },
	}
}
