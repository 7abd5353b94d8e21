package sdk

import "os"

// StdoutTerminalEnv is set to "1" in every plugin's environment when the agent's standard
// output is a terminal. A plugin's standard output reaches the agent's (the console sink
// prints there), so this is how a plugin knows whether what it prints lands on a screen.
const StdoutTerminalEnv = "TDA_STDOUT_TERMINAL"

// StdoutIsTerminal reports whether the agent said its standard output is a terminal: a plugin
// may then colour what it prints (unless NO_COLOR is set, which the plugin checks).
func StdoutIsTerminal() bool { return os.Getenv(StdoutTerminalEnv) == "1" }

// StdoutIsTerminal reports whether the agent said its standard output is a terminal, read
// from the instance's environment (see Resources.Env).
func (r Resources) StdoutIsTerminal() bool { return r.Env(StdoutTerminalEnv) == "1" }
