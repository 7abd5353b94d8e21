// Package cli is tda's command line: HashiCorp-style subcommands with -flag value arguments and
// `tda help <command>`. Each command lives in its own file and only parses flags and prints;
// the work is done by the packages the agent itself uses.
package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hashicorp/cli"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/pluginhost"
	"github.com/tda-dev/tda/sdk"
)

// Main runs the command line with args (without the program name) and returns the exit code:
// 0 on success, 1 on any error, including an unknown command or flag. Only the plugins in
// the plugin directory serve components.
func Main(args []string, stdout, stderr io.Writer) int {
	return MainWith(args, stdout, stderr, Options{})
}

// Options are what the program running the command line brings to it.
type Options struct {
	// Builtin are the plugins compiled into the program (cmd/tda: `tda plugin-serve`).
	Builtin *pluginhost.Builtin
}

// MainWith is Main for a program that brings plugins of its own.
func MainWith(args []string, stdout, stderr io.Writer, opts Options) int {
	ui := &cli.BasicUi{Reader: os.Stdin, Writer: stdout, ErrorWriter: stderr}
	env := &Env{UI: ui, Stdout: stdout, Stderr: stderr, Builtin: opts.Builtin}
	if len(args) == 0 {
		fmt.Fprintln(stdout, rootHelp(env))
		return 0
	}
	switch args[0] {
	case "-h", "-help", "--help":
		fmt.Fprintln(stdout, rootHelp(env))
		return 0
	case "-v", "-version", "--version":
		return (&versionCommand{env: env}).Run(args[1:])
	case "help":
		return (&helpCommand{env: env}).Run(args[1:])
	}
	if strings.HasPrefix(args[0], "-") {
		env.Errorf("unknown flag %s before the command.\nRun `tda help` for the list of commands.", args[0])
		return 1
	}
	c, name, rest := lookup(args)
	if c == nil {
		env.Errorf("unknown command %q.%s\nRun `tda help` for the list of commands.", args[0],
			suggestCommand(args[0], topLevelNames()))
		return 1
	}
	if c.factory == nil {
		return runGroup(env, c, name, rest)
	}
	code := c.factory(env).Run(rest)
	if code == cli.RunResultHelp {
		fmt.Fprintln(stderr, c.factory(env).Help())
		return 1
	}
	return code
}

// lookup finds the longest command of the table that args start with.
func lookup(args []string) (c *command, name string, rest []string) {
	for n := len(args); n > 0; n-- {
		candidate := strings.Join(args[:n], " ")
		for i := range table {
			if table[i].name == candidate {
				return &table[i], candidate, args[n:]
			}
		}
	}
	return nil, "", nil
}

func topLevelNames() []string {
	var names []string
	for _, c := range table {
		if !strings.Contains(c.name, " ") {
			names = append(names, c.name)
		}
	}
	return append(names, "help")
}

// suggestCommand names the command the user probably meant: the only one that starts with
// what was typed, else the closest by edit distance.
func suggestCommand(given string, names []string) string {
	var prefixed []string
	for _, n := range names {
		if given != "" && strings.HasPrefix(n, given) {
			prefixed = append(prefixed, n)
		}
	}
	if len(prefixed) == 1 {
		return fmt.Sprintf(" Did you mean %q?", prefixed[0])
	}
	if s := sdk.Suggest(given, names); s != "" {
		return fmt.Sprintf(" Did you mean %q?", s)
	}
	return ""
}

// runGroup runs a group alone (its help and subcommands) or reports an unknown subcommand.
func runGroup(env *Env, c *command, name string, rest []string) int {
	if len(rest) == 0 || rest[0] == "-h" || rest[0] == "-help" || rest[0] == "--help" {
		fmt.Fprintln(env.Stdout, groupHelp(env, c))
		return 0
	}
	var subs []string
	for _, s := range subcommands(name) {
		subs = append(subs, strings.TrimPrefix(s.name, name+" "))
	}
	env.Errorf("unknown command \"%s %s\".%s\nRun `tda help %s` for its subcommands.", name, rest[0],
		suggestCommand(rest[0], subs), name)
	return 1
}

func subcommands(group string) []command {
	var out []command
	for _, c := range table {
		if strings.HasPrefix(c.name, group+" ") {
			out = append(out, c)
		}
	}
	return out
}

func synopsis(env *Env, c command) string {
	if c.factory == nil {
		return c.synopsis
	}
	return c.factory(env).Synopsis()
}

// Env is what every command gets: where to print.
type Env struct {
	UI     cli.Ui
	Stdout io.Writer
	Stderr io.Writer
	// Builtin are the plugins compiled into tda, or nil.
	Builtin *pluginhost.Builtin
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

// rootHelp lists every command of the table, subcommands under their group; `tda`, `tda -h`
// and `tda help` all print it.
func rootHelp(env *Env) string {
	var b strings.Builder
	b.WriteString("Usage: tda <command> [flags] [args]\n\n")
	b.WriteString("tda watches application logs for data-loss incidents, alerts the people on call,\n")
	b.WriteString("and takes and restores database snapshots.\n\nCommands:\n")
	width := 0
	for _, c := range table {
		if len(c.name) > width {
			width = len(c.name)
		}
	}
	for _, c := range table {
		name := c.name
		if i := strings.LastIndexByte(name, ' '); i >= 0 {
			name = "  " + name[i+1:]
		}
		fmt.Fprintf(&b, "    %-*s  %s\n", width, name, synopsis(env, c))
	}
	fmt.Fprintf(&b, "    %-*s  %s\n", width, "help", (&helpCommand{}).Synopsis())
	b.WriteString("\nRun `tda help <command>` for a command's flags; `tda <command> -h` does the same.")
	return b.String()
}

// groupHelp is a group's help followed by its subcommands.
func groupHelp(env *Env, c *command) string {
	var b strings.Builder
	b.WriteString(c.help)
	b.WriteString("\n\nSubcommands:\n")
	subs := subcommands(c.name)
	width := 0
	for _, s := range subs {
		if len(s.name) > width {
			width = len(s.name)
		}
	}
	for _, s := range subs {
		fmt.Fprintf(&b, "    %-*s  %s\n", width, s.name, synopsis(env, s))
	}
	fmt.Fprintf(&b, "\nRun `tda help %s <subcommand>` for its flags.", c.name)
	return b.String()
}

type helpCommand struct{ env *Env }

func (c *helpCommand) Synopsis() string { return "Show help for a command" }

func (c *helpCommand) Help() string {
	return "Usage: tda help [command]\n\n  Prints the help of a command, or the list of commands."
}

func (c *helpCommand) Run(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(c.env.Stdout, rootHelp(c.env))
		return 0
	}
	if len(args) == 1 && args[0] == "help" {
		fmt.Fprintln(c.env.Stdout, c.Help())
		return 0
	}
	cmd, name, rest := lookup(args)
	if cmd == nil || len(rest) > 0 {
		given := strings.Join(args, " ")
		hint := suggestCommand(args[0], topLevelNames())
		if cmd != nil {
			var subs []string
			for _, s := range subcommands(name) {
				subs = append(subs, s.name)
			}
			hint = suggestCommand(given, subs)
		}
		c.env.Errorf("unknown command %q.%s\nRun `tda help` for the list of commands.", given, hint)
		return 1
	}
	if cmd.factory == nil {
		fmt.Fprintln(c.env.Stdout, groupHelp(c.env, cmd))
		return 0
	}
	fmt.Fprintln(c.env.Stdout, cmd.factory(c.env).Help())
	return 0
}

// JSON prints v as indented JSON on standard output: the -json form of every listing command.
func (e *Env) JSON(v any) int {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		e.Errorf("cannot encode the output as JSON: %v", err)
		return 1
	}
	fmt.Fprintln(e.Stdout, string(b))
	return 0
}
