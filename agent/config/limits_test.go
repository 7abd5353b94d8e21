package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// firstError returns the first error diagnostic, or nil.
func firstError(diags hcl.Diagnostics) *hcl.Diagnostic {
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			return d
		}
	}
	return nil
}

// Inputs past the limits are refused with a diagnostic at the place where they passed it,
// before the parser, which would overflow its stack on the deep ones and take seconds on
// the long ones.
func TestInputLimits(t *testing.T) {
	n := 100_000
	cases := []struct {
		name    string
		src     string
		summary string
		line    int // the line of the diagnostic's subject; 0 for none expected
		col     int
	}{
		{"100,000 brackets", "x = " + strings.Repeat("[", n) + strings.Repeat("]", n), "Config nested too deeply", 1, 4 + MaxConfigNesting + 1},
		{"100,000 braces", "x = " + strings.Repeat("{a=", n) + "1" + strings.Repeat("}", n), "Config nested too deeply", 1, 0},
		{"100,000 parentheses", "x = " + strings.Repeat("(", n) + "1" + strings.Repeat(")", n), "Config nested too deeply", 1, 0},
		{"nested blocks", strings.Repeat("agent {\n", n) + strings.Repeat("}\n", n), "Config nested too deeply", MaxConfigNesting + 1, 7},
		{"nested templates", "x = " + strings.Repeat("\"${", n) + "1" + strings.Repeat("}\"", n), "Config nested too deeply", 1, 0},
		{"nested for", "x = " + strings.Repeat("[for a in ", 1000) + "[]" + strings.Repeat(": a]", 1000), "Config nested too deeply", 1, 0},
		{"100,000 negations", "x = " + strings.Repeat("!", n) + "true", "Too many operators", 1, 4 + MaxConfigOperators + 1},
		{"a long sum", "x = 1" + strings.Repeat("+1", n), "Too many operators", 1, 0},
		{"a conditional chain", "x = " + strings.Repeat("true ? 1 : ", n/10) + "1", "Too many operators", 1, 0},
		{"a long traversal", "x = y" + strings.Repeat(".a", n), "Config file too complex", 1, 0},
		{"too large", "# " + strings.Repeat("x", MaxConfigFileSize) + "\n", "Config file too large", 1, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, diags := LoadBytes("big.hcl", []byte(c.src))
			d := firstError(diags)
			if d == nil || d.Summary != c.summary || !cfg.ParseFailed {
				t.Fatalf("diagnostics %v", diags)
			}
			if d.Subject == nil || d.Subject.Filename != "big.hcl" || d.Subject.Start.Line != c.line ||
				(c.col != 0 && d.Subject.Start.Column != c.col) {
				t.Fatalf("%s: subject %v", d.Summary, d.Subject)
			}
			if !strings.Contains(d.Detail, "at most") && !strings.Contains(d.Detail, "more than") {
				t.Fatalf("the detail gives no limit: %s", d.Detail)
			}
		})
	}
}

// What real configs use stays well inside the limits: every shipped config loads, and a
// config at the nesting limit is parsed.
func TestInputWithinLimits(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "configs", "*.hcl"))
	if len(files) == 0 {
		t.Fatal("no shipped configs found")
	}
	for _, f := range files {
		if _, diags := Load(f); firstError(diags) != nil {
			t.Errorf("%s: %v", f, diags)
		}
	}
	deep := "x = " + strings.Repeat("[", MaxConfigNesting) + strings.Repeat("]", MaxConfigNesting) + "\n"
	if _, diags := LoadBytes("deep.hcl", []byte(deep)); firstError(diags) != nil &&
		strings.Contains(firstError(diags).Summary, "nested") {
		t.Fatalf("a config at the limit: %v", diags)
	}
}

func TestConfigFileThatNeverEnds(t *testing.T) {
	for _, path := range []string{"/dev/zero", "/dev/null"} {
		if _, err := os.Stat(path); err != nil {
			continue
		}
		done := make(chan hcl.Diagnostics, 1)
		go func() { _, d := Load(path); done <- d }()
		select {
		case diags := <-done:
			if d := firstError(diags); d == nil || !strings.Contains(d.Detail, "not a regular file") {
				t.Fatalf("%s: %v", path, diags)
			}
		case <-time.After(time.Minute):
			t.Fatalf("%s: Load did not return", path)
		}
	}
}

func TestConfigDirectoryTotalSize(t *testing.T) {
	dir := t.TempDir()
	part := "# " + strings.Repeat("x", MaxConfigFileSize-10) + "\n"
	for i := 0; i < MaxConfigTotalSize/MaxConfigFileSize+1; i++ {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.hcl", i)), []byte(part), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, diags := Load(dir)
	if d := firstError(diags); d == nil || d.Summary != "Config too large" {
		t.Fatalf("%v", diags)
	}
}

func TestLoopDurationMinimums(t *testing.T) {
	cases := []struct {
		name, src, summary string
	}{
		{"checkpoint_interval", `agent { checkpoint_interval = "1ns" }`, "Invalid duration"},
		{"checkpoint_interval zero", `agent { checkpoint_interval = "0s" }`, "Invalid duration"},
		{"retry initial", `sink "x" "y" {
  retry {
    initial = "1ns"
  }
}`, "Invalid retry interval"},
		{"retry max below initial", `sink "x" "y" {
  retry {
    initial = "2s"
    max     = "1s"
  }
}`, "Invalid retry interval"},
		{"call_timeout", `source "x" "y" { call_timeout = "1us" }`, "Invalid call_timeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, diags := LoadBytes("t.hcl", []byte(c.src))
			d := firstError(diags)
			if d == nil || d.Summary != c.summary || d.Subject == nil || d.Subject.Start.Line < 1 {
				t.Fatalf("%v", diags)
			}
		})
	}
	ok := `agent { checkpoint_interval = "1ms" }
sink "x" "y" {
  call_timeout = "10ms"
  retry {
    initial = "1ms"
    max     = "1ms"
  }
}`
	if _, diags := LoadBytes("t.hcl", []byte(ok)); firstError(diags) != nil {
		t.Fatalf("the minimums themselves: %v", diags)
	}
}
