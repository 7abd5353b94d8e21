package snapshot

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

func TestMySQLBlock(t *testing.T) {
	for _, tt := range []struct{ name, src, want string }{
		{"with postgres", "postgres {\n database = \"a\"\n}\nmysql {\n database = \"b\"\n}", "keep one of the aurora, postgres and mysql blocks"},
		{"with aurora", "aurora {\n cluster = \"a\"\n}\nmysql {\n database = \"b\"\n}", "keep one of the aurora, postgres and mysql blocks"},
		{"port", "mysql {\n database = \"b\"\n port = 70000\n}", "port must be between 1 and 65535"},
		{"empty database", "mysql {\n database = \"\"\n}", "database must not be empty"},
		{"typo", "mysql {\n  databse = \"b\"\n}", `Did you mean "database"?`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(sdktest.Validate(t, Component(), tt.src), "\n")
			if !strings.Contains(got, tt.want) {
				t.Fatalf("diagnostics %q do not contain %q", got, tt.want)
			}
		})
	}
	data := t.TempDir()
	conf, diags := sdk.ParseConfig(Spec, sdktest.Config(t, Component(), "mysql {\n database = \"app\"\n user = \"tda\"\n}"))
	if diags.HasErrors() {
		t.Fatal(diags.Err())
	}
	s, err := ParseSettings(conf, sdk.Resources{Instance: "sink.snapshot.guard", DataDir: filepath.Join(data, "sink.snapshot.guard")})
	if err != nil {
		t.Fatal(err)
	}
	if s.MySQL == nil || s.MySQL.Host != "127.0.0.1" || s.MySQL.Port != 3306 || s.MySQL.Dir != filepath.Join(data, "snapshots", "guard") {
		t.Fatalf("mysql settings %+v", s.MySQL)
	}
	if dsn, err := s.DSN("app_restored"); err != nil || dsn != "mysql://tda@127.0.0.1:3306/app_restored" {
		t.Fatalf("DSN %q %v", dsn, err)
	}
}
