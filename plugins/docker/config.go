package docker

import (
	"fmt"
	"path"
	"time"

	"github.com/tda-dev/tda/sdk"
)

// Defaults of the source's settings.
const (
	defaultHeartbeat        = "60s"
	defaultReconnectInitial = "500ms"
	defaultReconnectMax     = "30s"
	defaultMaxLineBytes     = 1 << 20
)

func selectionFields(what string) []sdk.Field {
	return []sdk.Field{
		{Name: "containers", Type: sdk.TypeStringList,
			Description: "Container names to " + what + ", exactly as `docker ps` shows them (e.g. \"flask_web_1\")."},
		{Name: "name_patterns", Type: sdk.TypeStringList,
			Description: "Glob patterns (`*`, `?`, `[a-z]`) matched against whole container names, e.g. \"*-web-*\"."},
		{Name: "labels", Type: sdk.TypeStringMap,
			Description: "Labels a container must all carry to be " + what + "ed; a value of \"*\" matches any value, " +
				"other values may be glob patterns. Example: { \"tda.watch\" = \"true\" } or " +
				"{ \"com.docker.compose.service\" = \"web\" }."},
	}
}

var spec = &sdk.Spec{
	Summary: "Streams the logs of Docker containers through the Engine API, across restarts of the containers, the daemon and tda.",
	Description: "Selects containers by name, name pattern, labels or all, follows the daemon's events to attach " +
		"when a container starts and re-attach when it restarts or is re-created under the same name, and " +
		"emits one `log` event per line with Docker's own timestamp. The position of every container " +
		"(the timestamp of the last line delivered) is checkpointed once the sinks have accepted it, so " +
		"lines written while tda was down are read on its next start, none twice. A `heartbeat` event " +
		"lists the watched containers and their state at every heartbeat_interval.",
	Fields: append(append([]sdk.Field{
		{Name: "host", Type: sdk.TypeString,
			Description: "Docker Engine endpoint, e.g. \"unix:///var/run/docker.sock\" or \"tcp://10.0.0.5:2376\". " +
				"Default: DOCKER_HOST, then the platform's default socket."},
		{Name: "api_version", Type: sdk.TypeString,
			Description: "Pin the Engine API version (e.g. \"1.41\"). Default: negotiated with the daemon."},
		{Name: "all", Type: sdk.TypeBool, Default: false,
			Description: "Watch every container (minus the excluded ones)."},
	}, selectionFields("watch")...),
		sdk.Field{Name: "streams", Type: sdk.TypeStringList, Default: []string{"stdout", "stderr"},
			Description: "Which output streams to read: \"stdout\", \"stderr\" or both. TTY containers have only stdout."},
		sdk.Field{Name: "from_beginning", Type: sdk.TypeBool, Default: false,
			Description: "For a container tda has never seen that already existed when this source first started: " +
				"read its whole log (true) or only what it writes from then on (false). Containers created later " +
				"are always read from their first line."},
		sdk.Field{Name: "heartbeat_interval", Type: sdk.TypeDuration, Default: defaultHeartbeat,
			Description: "How often to emit a heartbeat event listing the watched containers and their state; \"0s\" turns heartbeats off."},
		sdk.Field{Name: "reconnect_initial", Type: sdk.TypeDuration, Default: defaultReconnectInitial,
			Description: "First delay before reconnecting to a daemon that went away; doubles up to reconnect_max."},
		sdk.Field{Name: "reconnect_max", Type: sdk.TypeDuration, Default: defaultReconnectMax,
			Description: "Longest delay between reconnection attempts."},
		sdk.Field{Name: "max_line_bytes", Type: sdk.TypeInt, Default: defaultMaxLineBytes,
			Description: "Longest line emitted as one event. A longer line is emitted in pieces of this size, " +
				"each but the last with the field continued = \"true\"; nothing is dropped."},
	),
	Blocks: []sdk.Block{{
		Name:        "exclude",
		Description: "Containers never to watch, even when selected above: same attributes as the selection.",
		Spec:        &sdk.Spec{Fields: selectionFields("exclude")},
	}},
	Example: `source "docker" "apps" {
  containers    = ["flask_web_1", "spring-web-1"]
  labels        = { "tda.watch" = "true" }
  exclude {
    name_patterns = ["tda*"]
  }
  heartbeat_interval = "60s"
}`,
}

// matcher says whether a container is selected by names, patterns or labels.
type matcher struct {
	names    map[string]bool
	patterns []string
	labels   map[string]string
}

func (m matcher) empty() bool {
	return len(m.names) == 0 && len(m.patterns) == 0 && len(m.labels) == 0
}

// match reports whether the container matches any of the names or patterns, or carries all of
// the labels.
func (m matcher) match(name string, labels map[string]string) bool {
	if m.names[name] {
		return true
	}
	for _, p := range m.patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	if len(m.labels) == 0 {
		return false
	}
	for k, want := range m.labels {
		got, ok := labels[k]
		if !ok {
			return false
		}
		if want == "*" || want == got {
			continue
		}
		if ok, _ := path.Match(want, got); !ok {
			return false
		}
	}
	return true
}

func parseMatcher(c *sdk.Config) (matcher, error) {
	m := matcher{names: map[string]bool{}, patterns: c.StringList("name_patterns"), labels: c.StringMap("labels")}
	for _, n := range c.StringList("containers") {
		if n == "" {
			return m, c.Errorf("containers", "container names must not be empty")
		}
		if n[0] == '/' {
			n = n[1:]
		}
		m.names[n] = true
	}
	for _, p := range m.patterns {
		if _, err := path.Match(p, ""); err != nil {
			return m, c.Errorf("name_patterns", "invalid pattern %q: %v", p, err)
		}
	}
	for k, v := range m.labels {
		if k == "" {
			return m, c.Errorf("labels", "label names must not be empty")
		}
		if _, err := path.Match(v, ""); err != nil {
			return m, c.Errorf("labels", "invalid pattern %q for label %q: %v", v, k, err)
		}
	}
	return m, nil
}

// selector decides which containers the source watches.
type selector struct {
	all     bool
	include matcher
	exclude matcher
}

func (s selector) selected(name string, labels map[string]string) bool {
	if !s.all && !s.include.match(name, labels) {
		return false
	}
	return !s.exclude.match(name, labels)
}

// settings is the parsed configuration of one source instance.
type settings struct {
	host             string
	apiVersion       string
	sel              selector
	stdout, stderr   bool
	fromBeginning    bool
	heartbeat        time.Duration
	reconnectInitial time.Duration
	reconnectMax     time.Duration
	maxLineBytes     int
}

func parseSettings(c *sdk.Config) (settings, error) {
	s := settings{
		host:             c.String("host"),
		apiVersion:       c.String("api_version"),
		fromBeginning:    c.Bool("from_beginning"),
		heartbeat:        c.Duration("heartbeat_interval"),
		reconnectInitial: c.Duration("reconnect_initial"),
		reconnectMax:     c.Duration("reconnect_max"),
		maxLineBytes:     int(c.Int("max_line_bytes")),
	}
	var err error
	s.sel.all = c.Bool("all")
	if s.sel.include, err = parseMatcher(c); err != nil {
		return s, err
	}
	if ex := c.Block("exclude"); ex != nil {
		if s.sel.exclude, err = parseMatcher(ex); err != nil {
			return s, err
		}
	}
	if !s.sel.all && s.sel.include.empty() {
		return s, c.Errorf("", "no containers selected: set containers, name_patterns, labels, or all = true")
	}
	for _, st := range c.StringList("streams") {
		switch st {
		case "stdout":
			s.stdout = true
		case "stderr":
			s.stderr = true
		default:
			return s, c.Errorf("streams", "unknown stream %q: use \"stdout\" and/or \"stderr\"%s", st,
				suggestion(st, []string{"stdout", "stderr"}))
		}
	}
	if !s.stdout && !s.stderr {
		return s, c.Errorf("streams", "streams is empty: list \"stdout\", \"stderr\" or both")
	}
	if s.heartbeat < 0 {
		return s, c.Errorf("heartbeat_interval", "heartbeat_interval must not be negative")
	}
	if s.reconnectInitial <= 0 {
		return s, c.Errorf("reconnect_initial", "reconnect_initial must be positive")
	}
	if s.reconnectMax < s.reconnectInitial {
		return s, c.Errorf("reconnect_max", "reconnect_max (%s) must not be shorter than reconnect_initial (%s)",
			s.reconnectMax, s.reconnectInitial)
	}
	if s.maxLineBytes < 1024 {
		return s, c.Errorf("max_line_bytes", "max_line_bytes must be at least 1024, not %d", s.maxLineBytes)
	}
	return s, nil
}

func suggestion(given string, candidates []string) string {
	if s := sdk.Suggest(given, candidates); s != "" {
		return fmt.Sprintf(". Did you mean %q?", s)
	}
	return ""
}
