package docker

import (
	"strings"
	"testing"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

func TestConfigDiagnostics(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"nothing selected", `heartbeat_interval = "10s"`, "no containers selected"},
		{"typo", `containres = ["a"]`, `Did you mean "containers"?`},
		{"bad pattern", `name_patterns = ["web-["]`, `1:17: Invalid name_patterns: invalid pattern "web-["`},
		{"bad stream", "all = true\nstreams = [\"stdot\"]", `2:11: Invalid streams: unknown stream "stdot": use "stdout" and/or "stderr". Did you mean "stdout"?`},
		{"no stream", "all = true\nstreams = []", `streams is empty`},
		{"bad duration", "all = true\nheartbeat_interval = \"often\"", `2:22: Invalid duration`},
		{"negative heartbeat", "all = true\nheartbeat_interval = \"-1s\"", `heartbeat_interval must not be negative`},
		{"backoff order", "all = true\nreconnect_initial = \"10s\"\nreconnect_max = \"1s\"", `3:17: Invalid reconnect_max: reconnect_max (1s) must not be shorter`},
		{"tiny lines", "all = true\nmax_line_bytes = 10", `max_line_bytes must be at least 1024`},
		{"bad exclude", "all = true\nexclude {\n  labels = { \"a\" = \"[\" }\n}", `invalid pattern "[" for label "a"`},
		{"labels type", `labels = ["tda.watch"]`, `Incorrect attribute value type`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := strings.Join(sdktest.Validate(t, Component(), tt.src), "\n")
			if !strings.Contains(diags, tt.want) {
				t.Fatalf("diagnostics %q do not contain %q", diags, tt.want)
			}
		})
	}
	for _, ok := range []string{
		`containers = ["flask_web_1", "spring-web-1"]`,
		`labels = { "tda.watch" = "true" }`,
		"all = true\nexclude {\n  name_patterns = [\"tda*\"]\n}",
		spec.Example,
	} {
		src := ok
		if strings.HasPrefix(src, "source ") {
			// The example is a whole block: validate its body.
			src = src[strings.Index(src, "{")+1 : strings.LastIndex(src, "}")]
		}
		if d := sdktest.Validate(t, Component(), src); len(d) != 0 {
			t.Errorf("valid config %q reported %v", ok, d)
		}
	}
}

func TestSelection(t *testing.T) {
	parse := func(t *testing.T, src string) settings {
		t.Helper()
		conf, diags := sdk.ParseConfig(spec, sdktest.Config(t, Component(), src))
		if diags.HasErrors() {
			t.Fatal(diags.Err())
		}
		s, err := parseSettings(conf)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	compose := map[string]string{"com.docker.compose.service": "web", "com.docker.compose.project": "shop"}
	watch := map[string]string{"tda.watch": "true"}
	tests := []struct {
		name   string
		src    string
		cname  string
		labels map[string]string
		want   bool
	}{
		{"exact name", `containers = ["flask_web_1"]`, "flask_web_1", nil, true},
		{"exact name, leading slash in config", `containers = ["/flask_web_1"]`, "flask_web_1", nil, true},
		{"other name", `containers = ["flask_web_1"]`, "flask_web_10", nil, false},
		{"pattern", `name_patterns = ["*-web-*"]`, "spring-web-1", nil, true},
		{"pattern is whole-name", `name_patterns = ["web"]`, "spring-web-1", nil, false},
		{"label", `labels = { "tda.watch" = "true" }`, "x", watch, true},
		{"label other value", `labels = { "tda.watch" = "false" }`, "x", watch, false},
		{"label any value", `labels = { "tda.watch" = "*" }`, "x", watch, true},
		{"label missing", `labels = { "tda.watch" = "*" }`, "x", nil, false},
		{"all labels required", `labels = { "com.docker.compose.service" = "web", "tda.watch" = "true" }`, "x", compose, false},
		{"compose service glob", `labels = { "com.docker.compose.service" = "w*" }`, "x", compose, true},
		{"all", `all = true`, "anything", nil, true},
		{"all minus excluded", "all = true\nexclude {\n  containers = [\"tda\"]\n}", "tda", nil, false},
		{"excluded by label", "name_patterns = [\"*\"]\nexclude {\n  labels = { \"tda.watch\" = \"false\" }\n}", "x",
			map[string]string{"tda.watch": "false"}, false},
		{"names or labels", "containers = [\"a\"]\nlabels = { \"tda.watch\" = \"true\" }", "b", watch, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := parse(t, tt.src)
			if got := s.sel.selected(tt.cname, tt.labels); got != tt.want {
				t.Fatalf("selected(%q, %v) = %v, want %v", tt.cname, tt.labels, got, tt.want)
			}
		})
	}
}

func TestSettingsDefaults(t *testing.T) {
	conf, _ := sdk.ParseConfig(spec, sdktest.Config(t, Component(), `all = true`))
	s, err := parseSettings(conf)
	if err != nil {
		t.Fatal(err)
	}
	if !s.stdout || !s.stderr || s.fromBeginning || s.heartbeat.String() != "1m0s" ||
		s.maxLineBytes != defaultMaxLineBytes || s.reconnectMax.String() != "30s" {
		t.Fatalf("defaults %+v", s)
	}
}
