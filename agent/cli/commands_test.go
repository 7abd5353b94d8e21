package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tda-dev/tda/sdk"
)

var updateCommands = flag.Bool("update-commands", false, "rewrite the command-line golden files")

// TestCommandLineGolden pins what the command table prints: the root help in every form, group
// help, unknown commands and flags, and the version.
func TestCommandLineGolden(t *testing.T) {
	cases := []struct {
		name string
		args []string
	}{
		{"no_args", nil},
		{"dash_h", []string{"-h"}},
		{"help", []string{"help"}},
		{"help_help", []string{"help", "help"}},
		{"help_snapshot", []string{"help", "snapshot"}},
		{"snapshot_alone", []string{"snapshot"}},
		{"help_snapshot_list", []string{"help", "snapshot", "list"}},
		{"unknown", []string{"bogus"}},
		{"unknown_close", []string{"valdate"}},
		{"unknown_prefix", []string{"help", "snap"}},
		{"unknown_sub", []string{"snapshot", "lst"}},
		{"help_unknown_sub", []string{"help", "snapshot", "bogus"}},
		{"unknown_flag", []string{"-x"}},
		{"version_extra_arg", []string{"version", "now"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCLI(c.args...)
			got := fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", code, out, errOut)
			golden := filepath.Join("testdata", "commands", c.name+".golden")
			if *updateCommands {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update-commands to create it)", err)
			}
			if got != string(want) {
				t.Errorf("tda %s:\n--- got\n%s\n--- want\n%s", strings.Join(c.args, " "), got, want)
			}
		})
	}
}

// TestEveryCommandIsReachable: each command of the table answers `tda help NAME` and `-h` with
// its own help, and has a synopsis for the root listing.
func TestEveryCommandIsReachable(t *testing.T) {
	env := &Env{}
	for _, c := range table {
		if synopsis(env, c) == "" {
			t.Errorf("%s has no synopsis", c.name)
		}
		code, out, errOut := runCLI(append([]string{"help"}, strings.Fields(c.name)...)...)
		if code != 0 || !strings.Contains(out, "Usage: tda "+c.name) {
			t.Errorf("tda help %s: %d\n%s%s", c.name, code, out, errOut)
		}
		code, out, errOut = runCLI(append(strings.Fields(c.name), "-h")...)
		if code != 0 || !strings.Contains(out, "Usage: tda "+c.name) {
			t.Errorf("tda %s -h: %d\n%s%s", c.name, code, out, errOut)
		}
	}
	_, root, _ := runCLI("-h")
	_, help, _ := runCLI("help")
	_, bare, _ := runCLI()
	if root != help || root != bare {
		t.Errorf("tda -h, tda help and tda differ:\n%s\n%s\n%s", root, help, bare)
	}
}

func TestVersionForms(t *testing.T) {
	_, long, _ := runCLI("version")
	_, flag, _ := runCLI("-version")
	if long != flag || !strings.Contains(long, "plugin protocol") {
		t.Fatalf("version and -version differ: %q %q", long, flag)
	}
	code, out, errOut := runCLI("version", "-json")
	var v versionInfo
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.Protocol != sdk.ProtocolVersion || v.Version == "" {
		t.Fatalf("version -json: %d %q %q", code, out, errOut)
	}
}
