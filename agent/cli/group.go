package cli

import "github.com/hashicorp/cli"

// groupCommand names a family of subcommands ("tda migrate", "tda override") and prints
// them when run alone.
type groupCommand struct {
	synopsis string
	help     string
}

func (c *groupCommand) Synopsis() string { return c.synopsis }
func (c *groupCommand) Help() string     { return c.help }
func (c *groupCommand) Run([]string) int { return cli.RunResultHelp }

func group(synopsis, help string) cli.CommandFactory {
	return func() (cli.Command, error) { return &groupCommand{synopsis: synopsis, help: help}, nil }
}
