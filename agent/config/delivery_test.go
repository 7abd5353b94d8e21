package config

import (
	"strings"
	"testing"
	"time"
)

func TestDeliverySettings(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		check func(t *testing.T, cfg *Config)
		err   string // a substring of the first error; "" for none
		warn  string
	}{
		{name: "defaults", src: `sink "slack" "a" {}`, check: func(t *testing.T, cfg *Config) {
			c := cfg.Components[0]
			if c.CallTimeout != 0 || c.MaxAttempts != 0 || c.Sink.Buffer != (BufferSettings{}) {
				t.Fatalf("unset settings are not zero (defaults are resolved by the runtime): %+v %+v", c, c.Sink.Buffer)
			}
		}},
		{name: "all set", src: `
sink "slack" "a" {
  call_timeout = "5s"
  max_attempts = 3
  buffer {
    max_size      = "16MiB"
    when_full     = "spill"
    max_disk_size = "1GiB"
  }
  webhook_url = "x"
}
processor "rules" "r" {
  call_timeout = "2s"
  max_attempts = 7
  rule "x" {}
}
source "file" "f" {
  call_timeout = "9s"
  paths = ["a"]
}`, check: func(t *testing.T, cfg *Config) {
			k, p, s := cfg.Components[0], cfg.Components[1], cfg.Components[2]
			if k.CallTimeout != 5*time.Second || k.MaxAttempts != 3 {
				t.Fatalf("sink: %v %d", k.CallTimeout, k.MaxAttempts)
			}
			if want := (BufferSettings{MaxSize: 16 << 20, WhenFull: "spill", MaxDiskSize: 1 << 30}); k.Sink.Buffer != want {
				t.Fatalf("buffer %+v", k.Sink.Buffer)
			}
			if p.CallTimeout != 2*time.Second || p.MaxAttempts != 7 || s.CallTimeout != 9*time.Second {
				t.Fatalf("processor %v %d, source %v", p.CallTimeout, p.MaxAttempts, s.CallTimeout)
			}
			// The plugin's body keeps its own attributes and loses the host's.
			for _, c := range cfg.Components {
				attrs, _ := c.Body.JustAttributes()
				for name := range attrs {
					if name == "call_timeout" || name == "max_attempts" {
						t.Fatalf("%s: %s left in the plugin's body", c.Address(), name)
					}
				}
			}
		}},
		{name: "bad when_full", src: `sink "x" "a" {
  buffer { when_full = "spil" }
}`, err: `test.hcl:2,24-30: Unsupported value; when_full must be "block"`},
		{name: "bad size", src: `sink "x" "a" {
  buffer { max_size = "16MB" }
}`, err: `test.hcl:2,23-29: Invalid size; max_size: "16MB" is not a size`},
		{name: "zero size", src: `sink "x" "a" {
  buffer { max_disk_size = "0" }
}`, err: "must be positive"},
		{name: "bad call_timeout", src: `source "x" "a" { call_timeout = "-1s" }`, err: "Invalid call_timeout"},
		{name: "bad max_attempts", src: `processor "x" "a" { max_attempts = 0 }`, err: "test.hcl:1,36-37: Invalid max_attempts"},
		{name: "max_attempts on a source is the plugin's", src: `source "x" "a" { max_attempts = 0 }`, check: func(t *testing.T, cfg *Config) {
			attrs, _ := cfg.Components[0].Body.JustAttributes()
			if _, ok := attrs["max_attempts"]; !ok {
				t.Fatal("max_attempts taken from a source block")
			}
		}},
		{name: "unused disk size", src: `sink "x" "a" {
  buffer {
    when_full     = "drop"
    max_disk_size = "1GiB"
  }
}`, warn: "Unused max_disk_size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, diags := LoadBytes("test.hcl", []byte(tc.src))
			var errs, warns []string
			for _, d := range diags {
				if d.Summary == "Unused block" {
					continue
				}
				msg := d.Summary + "; " + d.Detail
				if d.Subject != nil {
					msg = d.Subject.String() + ": " + msg
				}
				if d.Severity == 1 {
					errs = append(errs, msg)
				} else {
					warns = append(warns, msg)
				}
			}
			if tc.err == "" && len(errs) > 0 {
				t.Fatalf("errors: %v", errs)
			}
			if tc.err != "" && (len(errs) == 0 || !strings.Contains(errs[0], tc.err)) {
				t.Fatalf("errors %v, want one with %q", errs, tc.err)
			}
			if tc.warn != "" && (len(warns) == 0 || !strings.Contains(warns[0], tc.warn)) {
				t.Fatalf("warnings %v, want %q", warns, tc.warn)
			}
			if tc.check != nil {
				tc.check(t, cfg)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"16MiB", 16 << 20, false}, {"1GiB", 1 << 30, false}, {"512KiB", 512 << 10, false},
		{"4096", 4096, false}, {"4096B", 4096, false}, {" 2 TiB ", 2 << 40, false},
		{"16MB", 0, true}, {"", 0, true}, {"-1KiB", 0, true}, {"1.5GiB", 0, true},
		{"99999999999999TiB", 0, true},
	}
	for _, tc := range tests {
		got, err := ParseSize(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v", tc.in, got, err)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"16MiB", "1GiB", "0", "-5", "9223372036854775807", "1TiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err == nil && n < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
	})
}
