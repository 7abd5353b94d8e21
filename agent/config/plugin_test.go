package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestPluginBlock(t *testing.T) {
	t.Setenv("TDA_TEST_AWS_KEY", "from-the-agent")
	cases := []struct {
		name    string
		src     string
		summary string // of the first error; "" for none
		line    int    // its line
		check   func(t *testing.T, p *Plugin)
	}{
		{name: "env and inherit_env", src: `plugin "snapshot" {
  env = {
    AWS_REGION        = "eu-west-1"
    AWS_ACCESS_KEY_ID = env("TDA_TEST_AWS_KEY")
  }
  inherit_env = ["AWS_*", "LANG"]
}`, check: func(t *testing.T, p *Plugin) {
			if want := []string{"AWS_ACCESS_KEY_ID=from-the-agent", "AWS_REGION=eu-west-1"}; !reflect.DeepEqual(p.Env, want) {
				t.Fatalf("env %q", p.Env)
			}
			if want := []string{"AWS_*", "LANG"}; !reflect.DeepEqual(p.InheritEnv, want) {
				t.Fatalf("inherit_env %q", p.InheritEnv)
			}
		}},
		{name: "pin ranges", src: `plugin "slack" {
  path   = "/opt/tda/tda-plugin-slack"
  sha256 = "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"
}`, check: func(t *testing.T, p *Plugin) {
			if !p.Pinned() || p.SHA256 != strings.ToLower(p.SHA256) || p.PathRange == nil || p.PathRange.Start.Line != 2 ||
				p.SHA256Range == nil || p.SHA256Range.Start.Line != 3 || p.SHA256Range.Start.Column != 12 {
				t.Fatalf("%+v", p)
			}
		}},
		{name: "a variable name that is none", src: `plugin "x" {
  env = { "AWS-KEY" = "1" }
}`, summary: "Invalid variable in env", line: 2},
		{name: "a protocol variable", src: `plugin "x" {
  env = {
    PLUGIN_CLIENT_CERT = "forged"
  }
}`, summary: "Invalid variable in env", line: 3},
		{name: "a NUL in a value", src: `plugin "x" {
  env = { A = "x\u0000y" }
}`, summary: "Invalid variable in env", line: 2},
		{name: "inherit everything", src: `plugin "x" {
  inherit_env = ["LANG",
    "*"]
}`, summary: "Invalid variable in inherit_env", line: 3},
		{name: "inherit the cookie", src: `plugin "x" { inherit_env = ["TDA_PLUGIN_MAGIC_COOKIE"] }`,
			summary: "Invalid variable in inherit_env", line: 1},
		{name: "memory_limit absurd", src: `plugin "x" { memory_limit = "99999999999TiB" }`, summary: "Invalid memory limit", line: 1},
		{name: "memory_limit too large", src: `plugin "x" { memory_limit = "2048GiB" }`, summary: "Memory limit out of bounds", line: 1},
		{name: "memory_limit too small", src: `plugin "x" { memory_limit = "1MiB" }`, summary: "Memory limit out of bounds", line: 1},
		{name: "memory_limit bytes", src: `plugin "x" { memory_limit = "33554432" }`, check: func(t *testing.T, p *Plugin) {
			if p.MemoryLimit != "33554432" {
				t.Fatal(p.MemoryLimit)
			}
		}},
		{name: "memory_limit at the top", src: `plugin "x" { memory_limit = "1TiB" }`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, diags := LoadBytes("t.hcl", []byte(c.src))
			d := firstError(diags)
			if c.summary == "" {
				if d != nil {
					t.Fatalf("%v", diags)
				}
			} else if d == nil || d.Summary != c.summary || d.Subject == nil || d.Subject.Start.Line != c.line ||
				!strings.Contains(d.Detail, "\"") {
				t.Fatalf("want %q at line %d: %v (%+v)", c.summary, c.line, diags, d)
			}
			if c.check != nil {
				for _, p := range cfg.Plugins {
					c.check(t, p)
				}
			}
		})
	}
}
