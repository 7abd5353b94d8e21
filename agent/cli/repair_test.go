package cli

import (
	"strings"
	"testing"

	"github.com/tda-dev/tda/plugins/snapshot/aurora/rdstest"
)

// TestRepairRefusesBeforeTouchingADatabase: flag mistakes and an Aurora block without
// addresses are reported with what to do, before any connection. The whole repair on real
// databases is exercised by the repair package's tests and by `make drill`.
func TestRepairRefusesBeforeTouchingADatabase(t *testing.T) {
	srv := rdstest.NewServer(t)
	srv.AddCluster("prod-aurora", "aurora-postgresql")
	cfg := snapshotConfig(t, srv)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-config", cfg, "-keys", "1"}, "give the restored database: -restore NAME"},
		{[]string{"-config", cfg, "-restore", "a", "-source", "b"}, "give the restored database"},
		{[]string{"-config", cfg, "-restore", "a", "-via", "ftp"}, `-via "ftp": use sql (the default) or http`},
		{[]string{"-config", cfg, "-restore", "a", "-via", "http"}, "-via http needs -url-template"},
		{[]string{"-config", cfg, "-restore", "a", "-via", "http", "-url-template", "http://app/users/restore"}, "has no {key}"},
		{[]string{"-config", cfg, "-restore", "a", "-via", "http", "-url-template", "http://app/users/{key}", "-http-field", "password_hash"}, "use COLUMN=KEY"},
		{[]string{"-config", cfg, "-restore", "a", "-via", "http", "-url-template", "http://app/users/{key}", "-http-header", "nocolon"}, `use "Name: value"`},
		{[]string{"-restore", "a", "-keys", "1"}, "-config is required"},
		{[]string{"-config", cfg, "-restore", "a", "-keys", "1"}, "protects an Aurora cluster: give the live database with -live"},
		{[]string{"-config", cfg, "-restore", "a", "-incident", "nope"}, `no alert with fingerprint "nope"`},
		{[]string{"-config", cfg, "-source", "postgres://x@127.0.0.1:1/db", "-live", "postgres://x@127.0.0.1:1/db", "-keys", "1"}, "restored db: cannot connect"},
		{[]string{"-config", cfg, "-source", "app_restored", "-live", "x", "-keys", "1"}, "is not a database address"},
		{[]string{"-config", cfg, "-restore", "a", "-from", "yesterday"}, "not an RFC 3339 time"},
		{[]string{"-config", cfg, "-restore", "a", "-events", "/nonexistent/app.log"}, "which events wrote the rows"},
		{[]string{"-config", cfg, "-restore", "a", "-events", "/nonexistent/app.log", "-event", "password_changed"}, "no such file"},
	} {
		code, out, errOut := runCLI(append([]string{"repair"}, tt.args...)...)
		if code != 1 || !strings.Contains(errOut, tt.want) {
			t.Errorf("tda repair %s: exit %d, want 1 with %q\n%s%s", strings.Join(tt.args, " "), code, tt.want, out, errOut)
		}
	}
}
