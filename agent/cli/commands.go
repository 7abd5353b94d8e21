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
	}
}
