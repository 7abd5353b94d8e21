// Package cli is tda's command line: HashiCorp-style subcommands with -flag value arguments and
// `tda help <command>`. Each command lives in its own file and only parses flags and prints;
// the work is done by the packages the agent itself uses.
package cli

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/hashicorp/cli"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/version"
)

// Main runs the command line with args (without the program name) and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	ui := &cli.BasicUi{Reader: os.Stdin, Writer: stdout, ErrorWriter: stderr}
	env := &Env{UI: ui, Stdout: stdout, Stderr: stderr}
	commands := Commands(env)
	commands["help"] = func() (cli.Command, error) { return &helpCommand{env: env, commands: commands}, nil }
	c := &cli.CLI{
		Name:        "tda",
		Version:     version.String(),
		Args:        args,
		Commands:    commands,
		HelpFunc:    helpFunc,
		HelpWriter:  stdout,
		ErrorWriter: stderr,
	}
	code, err := c.Run()
	if err != nil {
		fmt.Fprintf(stderr, "tda: %v\n", err)
		return 1
	}
	return code
}

// Env is what every command gets: where to print.
type Env struct {
	UI     cli.Ui
	Stdout io.Writer
	Stderr io.Writer
}

// Errorf prints an error line.
func (e *Env) Errorf(format string, args ...any) {
	fmt.Fprintf(e.Stderr, "Error: "+format+"\n", args...)
}

// Printf prints to standard output.
func (e *Env) Printf(format string, args ...any) {
	fmt.Fprintf(e.Stdout, format, args...)
}

// Diagnostics prints config diagnostics and reports whether any is an error.
func (e *Env) Diagnostics(cfg *config.Config, diags hcl.Diagnostics) bool {
	if len(diags) == 0 {
		return false
	}
	files := map[string]*hcl.File{}
	if cfg != nil {
		files = cfg.Files
	}
	config.WriteDiagnostics(e.Stderr, files, diags)
	fmt.Fprintln(e.Stderr)
	return diags.HasErrors()
}

// FlagSet returns a flag set for Parse, which prints the command's help on -h and errors.
func (e *Env) FlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	// Parse prints the help once, after the error; the flag package's own call prints nothing.
	fs.Usage = func() {}
	return fs
}

// Parse parses args and prints a helpful error; ok false means exit with the returned code.
func (e *Env) Parse(fs *flag.FlagSet, args []string, help func() string) (ok bool, code int) {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			fmt.Fprintln(e.Stdout, help())
			return false, 0
		}
		e.Errorf("%v", err)
		fmt.Fprintln(e.Stderr)
		fmt.Fprintln(e.Stderr, help())
		return false, 1
	}
	return true, 0
}

// Logger builds the agent's logger.
func (e *Env) Logger(level, format string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "tda",
		Level:      hclog.LevelFromString(level),
		JSONFormat: format == "json",
		Output:     e.Stderr,
		Color:      hclog.AutoColor,
	})
}

func helpFunc(commands map[string]cli.CommandFactory) string {
	var b strings.Builder
	b.WriteString("Usage: tda <command> [flags] [args]\n\n")
	b.WriteString("tda watches application logs for data-loss incidents, alerts the people on call,\n")
	b.WriteString("and takes and restores database snapshots.\n\nCommands:\n")
	names := make([]string, 0, len(commands))
	width := 0
	for n := range commands {
		names = append(names, n)
		if len(n) > width {
			width = len(n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		c, err := commands[n]()
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "    %-*s  %s\n", width, n, c.Synopsis())
	}
	b.WriteString("\nRun `tda help <command>` for a command's flags.")
	return b.String()
}

type helpCommand struct {
	env      *Env
	commands map[string]cli.CommandFactory
}

func (c *helpCommand) Synopsis() string { return "Show help for a command" }

func (c *helpCommand) Help() string {
	return "Usage: tda help [command]\n\n  Prints the help of a command, or the list of commands."
}

func (c *helpCommand) Run(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(c.env.Stdout, helpFunc(c.commands))
		return 0
	}
	name := strings.Join(args, " ")
	f, ok := c.commands[name]
	if !ok {
		c.env.Errorf("unknown command %q", name)
		fmt.Fprintln(c.env.Stderr, helpFunc(c.commands))
		return 1
	}
	cmd, err := f()
	if err != nil {
		c.env.Errorf("%v", err)
		return 1
	}
	fmt.Fprintln(c.env.Stdout, cmd.Help())
	return 0
}
