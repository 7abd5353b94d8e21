package config

import (
	"strings"
	"testing"
)

func TestAgentByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"65536", 65536, true},
		{"32MiB", 32 << 20, true},
		{"1GiB", 1 << 30, true},
		{"512KiB", 512 << 10, true},
		{"100B", 100, true},
		{"", 0, false},
		{"MiB", 0, false},
		{"-1MiB", 0, false},
		{"1.5MiB", 0, false},
		{"32MB", 0, false},
		{"99999999999999999999GiB", 0, false},
		{"9000000000GiB", 0, false},
	}
	for _, tt := range tests {
		got, ok := agentByteSize(tt.in)
		if ok != tt.ok || got != tt.want {
			t.Errorf("agentByteSize(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestAgentBlockInflightBytes(t *testing.T) {
	tests := []struct {
		name, attr string
		want       int
		err        string
	}{
		{"default", "", DefaultMaxInflightBytes, ""},
		{"set", `max_inflight_bytes = "8MiB"`, 8 << 20, ""},
		{"too small", `max_inflight_bytes = "1KiB"`, 0, "test.hcl:3,24"},
		{"not a size", `max_inflight_bytes = "lots"`, 0, "test.hcl:3,24"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "agent {\n  data_dir = \"x\"\n  " + tt.attr + "\n}\n"
			cfg, diags := LoadBytes("test.hcl", []byte(src))
			if tt.err != "" {
				if !diags.HasErrors() || !strings.Contains(diags.Error(), tt.err) || !strings.Contains(diags.Error(), "max_inflight_bytes is a size") {
					t.Fatalf("want an error at %s with a hint, got %v", tt.err, diags)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			if cfg.Agent.MaxInflightBytes != tt.want {
				t.Fatalf("MaxInflightBytes = %d, want %d", cfg.Agent.MaxInflightBytes, tt.want)
			}
		})
	}
}

func FuzzAgentByteSize(f *testing.F) {
	for _, s := range []string{"1", "32MiB", "1GiB", "7KiB", "0B", "-3", "1e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := agentByteSize(s)
		if ok && n < 0 {
			t.Fatalf("%q parsed to a negative size %d", s, n)
		}
		if !ok && n != 0 {
			t.Fatalf("%q refused but returned %d", s, n)
		}
	})
}

func TestAgentBlockBundledPlugins(t *testing.T) {
	tests := []struct {
		name, attr string
		want       string
		err        string
	}{
		{"default", "", BundledInAgent, ""},
		{"in the agent", `bundled_plugins = "in_agent"`, BundledInAgent, ""},
		{"one process beside the agent", `bundled_plugins = "shared_process"`, BundledSharedProcess, ""},
		{"unknown", `bundled_plugins = "separate"`, "", "test.hcl:3,21"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "agent {\n  data_dir = \"x\"\n  " + tt.attr + "\n}\n"
			cfg, diags := LoadBytes("test.hcl", []byte(src))
			if tt.err != "" {
				if !diags.HasErrors() || !strings.Contains(diags.Error(), tt.err) || !strings.Contains(diags.Error(), `"shared_process"`) {
					t.Fatalf("want an error at %s naming the values, got %v", tt.err, diags)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			if cfg.Agent.BundledPlugins != tt.want {
				t.Fatalf("BundledPlugins = %q, want %q", cfg.Agent.BundledPlugins, tt.want)
			}
		})
	}
}
