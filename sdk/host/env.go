package host

import (
	"fmt"
	"sort"
	"strings"
)

// BaseEnvNames are the variables of the host's environment every plugin process gets: where
// programs, the home and temporary directories are, the time zone and locale, the TLS roots,
// where the Docker daemon is, the colour preference, the application version, and the Go
// runtime's diagnostic settings. Nothing here is a secret: a
// plugin that needs a credential gets it through its configuration (env("NAME") in the
// block, resolved by the agent), or through the variables its plugin block names.
var BaseEnvNames = []string{
	"PATH", "HOME", "TMPDIR", "TZ", "LANG", "LC_*", "LANGUAGE",
	"SSL_CERT_FILE", "SSL_CERT_DIR",
	"DOCKER_HOST", "DOCKER_API_VERSION", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY",
	"NO_COLOR",
	// The application version the snapshot sink tags snapshots with by default.
	"TDA_APP_VERSION",
	// The Go runtime's diagnostics (the race detector's log path, coverage of integration
	// tests, tracebacks); GOMEMLIMIT is not passed: a plugin's comes from its memory_limit.
	"GODEBUG", "GOTRACEBACK", "GOMAXPROCS", "GORACE", "GOCOVERDIR",
}

// ReservedEnv reports whether a variable belongs to the plugin protocol (go-plugin's own
// variables and tda's handshake cookie): the host sets them for every launch, and
// configuration may neither set nor pass them.
func ReservedEnv(name string) bool {
	return strings.HasPrefix(name, "PLUGIN_") || name == "TDA_PLUGIN_MAGIC_COOKIE"
}

// ValidEnvPattern checks a name or a prefix pattern ("AWS_*") of a variable to pass to a
// plugin: letters, digits and underscores, not starting with a digit, and at most one '*',
// at the end.
func ValidEnvPattern(p string) error {
	name := strings.TrimSuffix(p, "*")
	if name == "" {
		return fmt.Errorf("%q would pass every variable; name them, or a prefix such as \"AWS_*\"", p)
	}
	if err := ValidEnvName(name); err != nil {
		return err
	}
	return nil
}

// ValidEnvName checks the name of an environment variable: letters, digits and underscores,
// not starting with a digit.
func ValidEnvName(name string) error {
	if name == "" {
		return fmt.Errorf("an empty variable name")
	}
	for i, r := range name {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return fmt.Errorf("%q is not a variable name: use letters, digits and underscores, not starting with a digit", name)
		}
	}
	return nil
}

// matchEnv reports whether name matches a pattern: the same name, or a prefix when the
// pattern ends in '*'.
func matchEnv(pattern, name string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(name, p)
	}
	return pattern == name
}

// PluginEnv returns the environment of a plugin process: the entries of environ (NAME=value,
// as os.Environ returns them) whose names match BaseEnvNames or inherit, then set (which wins
// over an inherited value of the same name). Variables of the plugin protocol are never
// passed on: go-plugin sets its own for every launch. The result is sorted by name, so the
// same inputs give the same environment.
func PluginEnv(environ, inherit, set []string) []string {
	out := map[string]string{}
	for _, kv := range environ {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || ReservedEnv(name) {
			continue
		}
		for _, p := range BaseEnvNames {
			if matchEnv(p, name) {
				out[name] = kv
			}
		}
		for _, p := range inherit {
			if matchEnv(p, name) {
				out[name] = kv
			}
		}
	}
	for _, kv := range set {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || ReservedEnv(name) {
			continue
		}
		out[name] = kv
	}
	names := make([]string, 0, len(out))
	for n := range out {
		names = append(names, n)
	}
	sort.Strings(names)
	env := make([]string, len(names))
	for i, n := range names {
		env[i] = out[n]
	}
	return env
}
