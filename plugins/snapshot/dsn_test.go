package snapshot

import (
	"strings"
	"testing"

	"github.com/tda-dev/tda/plugins/snapshot/aurora"
	"github.com/tda-dev/tda/plugins/snapshot/mysql"
	"github.com/tda-dev/tda/plugins/snapshot/postgres"
)

func TestSettingsDSN(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings Settings
		database string
		want     string
	}{
		{"postgres, protected", Settings{Postgres: &postgres.Config{Host: "127.0.0.1", Port: 5432, User: "tda", Password: "p w", Database: "app"}},
			"", "host=127.0.0.1 port=5432 user=tda password='p w' dbname=app"},
		{"postgres, restored", Settings{Postgres: &postgres.Config{Host: "/run/postgresql", Database: "app"}},
			"app_restored", "host=/run/postgresql dbname=app_restored"},
		{"mysql", Settings{MySQL: &mysql.Config{Host: "127.0.0.1", Port: 3306, User: "tda", Password: "s3cr@t", Database: "app"}},
			"app_restored", "mysql://tda:s3cr%40t@127.0.0.1:3306/app_restored"},
		{"aurora", Settings{Name: "guard", Aurora: &aurora.Config{Cluster: "prod"}}, "", "protects an Aurora cluster"},
	} {
		got, err := tc.settings.DSN(tc.database)
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
