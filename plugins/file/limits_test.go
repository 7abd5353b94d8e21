package file_test

import (
	"strings"
	"testing"

	"github.com/tda-dev/tda/plugins/file"
	"github.com/tda-dev/tda/sdk/sdktest"
)

// The durations that drive the source's loops have a floor: "1ns" is a config error at the
// attribute, not a busy core.
func TestLoopDurationMinimums(t *testing.T) {
	cases := []struct {
		setting string
		value   string
		want    string // a substring of the only diagnostic; "" for none
	}{
		{"rescan_interval", "1ns", "3:19: Duration too short: rescan_interval must be at least 100ms, not 1ns"},
		{"rescan_interval", "99ms", "rescan_interval must be at least 100ms"},
		{"rescan_interval", "100ms", ""},
		{"poll_interval", "1ns", "3:17: Duration too short: poll_interval must be at least 10ms, not 1ns"},
		{"poll_interval", "10ms", ""},
		{"forget_after", "0s", "forget_after must be at least 100ms"},
		{"forget_after", "1h", ""},
	}
	for _, c := range cases {
		t.Run(c.setting+"="+c.value, func(t *testing.T) {
			src := "paths = [\"" + t.TempDir() + "/*.log\"]\nwatch = \"poll\"\n" + c.setting + " = \"" + c.value + "\"\n"
			diags := sdktest.Validate(t, file.Component(), src)
			if c.want == "" {
				if len(diags) != 0 {
					t.Fatalf("%q", diags)
				}
				return
			}
			if len(diags) != 1 || !strings.Contains(diags[0], c.want) {
				t.Fatalf("%q, want %q", diags, c.want)
			}
		})
	}
}
