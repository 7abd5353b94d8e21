// Package snapshot is tda's snapshot sink and the logic behind `tda snapshot`, `tda restore`
// and `tda migrate run`: it takes tagged snapshots of an Aurora cluster or a PostgreSQL
// database on schedule ticks, within seconds of a dangerous alert, before migrations and on
// demand; prunes them by a retention policy; lists them with the RPO of each tier; and
// restores them into a new cluster or database, never in place.
//
// The sink and the CLI build the same Settings from the same `sink "snapshot" "NAME"` block,
// so both see the same snapshots (see DumpDir).
package snapshot

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/plugins/snapshot/aurora"
	"github.com/tda-dev/tda/plugins/snapshot/mysql"
	"github.com/tda-dev/tda/plugins/snapshot/postgres"
	"github.com/tda-dev/tda/plugins/snapshot/provider"
	"github.com/tda-dev/tda/plugins/snapshot/retention"
	"github.com/tda-dev/tda/sdk"
)

// AppVersionEnv is the environment variable read for the app_version tag when the block does
// not set app_version.
const AppVersionEnv = "TDA_APP_VERSION"

// Spec is the snapshot sink's config schema.
var Spec = &sdk.Spec{
	Summary: "Takes database snapshots (Aurora or PostgreSQL) on schedule ticks and dangerous alerts, and prunes them.",
	Description: "A tick from a schedule source takes a `scheduled` snapshot and then prunes by the retention " +
		"policy; a firing alert of a chosen severity takes an `anomaly` snapshot tagged with the alert's " +
		"fingerprint, at most one per anomaly_interval. Write returns once the snapshot's recovery point is " +
		"fixed; waiting for it to become available happens in the background. The same block configures " +
		"`tda snapshot`, `tda restore`, `tda repair` and `tda migrate run`. Exactly one of the aurora, postgres and mysql blocks is required.",
	Fields: []sdk.Field{
		{Name: "app_version", Type: sdk.TypeString,
			Description: "The application version tagged on every snapshot (default: $TDA_APP_VERSION, then the agent block's app_version for the CLI, else \"unknown\")."},
		{Name: "when_severity", Type: sdk.TypeStringList, Default: []string{sdk.SeverityHigh},
			Description: "Alert severities that trigger an anomaly snapshot."},
		{Name: "anomaly_interval", Type: sdk.TypeDuration, Default: "15m",
			Description: "At most one anomaly snapshot per this interval (per cluster or database)."},
		{Name: "wait_timeout", Type: sdk.TypeDuration, Default: "60m",
			Description: "How long to wait for a snapshot to become available."},
		{Name: "poll_interval", Type: sdk.TypeDuration, Default: "30s",
			Description: "First delay between status polls while waiting (Aurora waiters grow it up to 4x)."},
		{Name: "probe_interval", Type: sdk.TypeDuration, Default: "1m",
			Description: "How often the agent checks that the target is reachable, the credentials valid and the permissions enough for snapshots and restores (at least 10s); a failure makes the system state degraded with the reason."},
	},
	Blocks: []sdk.Block{
		{Name: "aurora", Description: "Snapshot an Amazon Aurora cluster (credentials from the default AWS chain).",
			Spec: &sdk.Spec{Fields: []sdk.Field{
				{Name: "cluster", Type: sdk.TypeString, Required: true, Description: "The DB cluster identifier."},
				{Name: "region", Type: sdk.TypeString, Description: "AWS region (default: AWS_REGION / the shared config)."},
				{Name: "endpoint", Type: sdk.TypeString, Description: "RDS endpoint URL override (LocalStack)."},
				{Name: "instance_class", Type: sdk.TypeString,
					Description: "Class of the instance created in a restored cluster (default: the source writer's)."},
				{Name: "subnet_group", Type: sdk.TypeString, Description: "DB subnet group of restored clusters (default: the source's)."},
				{Name: "security_group_ids", Type: sdk.TypeStringList, Description: "VPC security groups of restored clusters (default: the source's)."},
				{Name: "restore_timeout", Type: sdk.TypeDuration, Default: "2h",
					Description: "How long a restore waits for the cluster and its instance."},
			}}},
		{Name: "postgres", Description: "Snapshot a PostgreSQL database with pg_dump (custom format).",
			Spec: &sdk.Spec{Fields: []sdk.Field{
				{Name: "database", Type: sdk.TypeString, Required: true, Description: "The database to snapshot."},
				{Name: "host", Type: sdk.TypeString, Description: "Host name, IP address or unix socket directory (default: libpq's)."},
				{Name: "port", Type: sdk.TypeInt, Default: 5432, Description: "Server port."},
				{Name: "user", Type: sdk.TypeString, Description: "Role to connect as (needs CREATEDB for restores)."},
				{Name: "password", Type: sdk.TypeString, Sensitive: true,
					Description: "Password, passed to pg_dump/pg_restore through PGPASSWORD; use env(\"...\")."},
				{Name: "sslmode", Type: sdk.TypeString, Description: "libpq sslmode."},
				{Name: "maintenance_database", Type: sdk.TypeString, Default: "postgres",
					Description: "Database to connect to for CREATE DATABASE during restores."},
				{Name: "dir", Type: sdk.TypeString,
					Description: "Directory of the dumps (default: <agent data_dir>/snapshots/<sink name>)."},
				{Name: "bin_dir", Type: sdk.TypeString, Description: "Directory of pg_dump and pg_restore (default: PATH)."},
			}}},
		{Name: "mysql", Description: "Snapshot a MySQL or MariaDB database with mysqldump --single-transaction.",
			Spec: &sdk.Spec{Fields: []sdk.Field{
				{Name: "database", Type: sdk.TypeString, Required: true, Description: "The database to snapshot."},
				{Name: "host", Type: sdk.TypeString, Default: "127.0.0.1", Description: "Host name or IP address (TCP)."},
				{Name: "port", Type: sdk.TypeInt, Default: 3306, Description: "Server port."},
				{Name: "user", Type: sdk.TypeString, Description: "User to connect as (SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES; CREATE and DROP for restores)."},
				{Name: "password", Type: sdk.TypeString, Sensitive: true,
					Description: "Password, passed to mysqldump/mysql through MYSQL_PWD; use env(\"...\")."},
				{Name: "dir", Type: sdk.TypeString,
					Description: "Directory of the dumps (default: <agent data_dir>/snapshots/<sink name>)."},
				{Name: "bin_dir", Type: sdk.TypeString, Description: "Directory of mysqldump and mysql (default: PATH; mariadb-dump and mariadb also work)."},
			}}},
		{Name: "retention", Description: "Which snapshots `tda snapshot prune` and the sink keep.",
			Spec: &sdk.Spec{Fields: []sdk.Field{
				{Name: "keep_daily", Type: sdk.TypeInt, Default: 7, Description: "Scheduled: newest per UTC day, this many days."},
				{Name: "keep_weekly", Type: sdk.TypeInt, Default: 4, Description: "Scheduled: newest per ISO week, this many weeks."},
				{Name: "keep_monthly", Type: sdk.TypeInt, Default: 3, Description: "Scheduled: newest per month, this many months."},
				{Name: "keep_anomaly_for", Type: sdk.TypeDuration, Default: "30d", Description: "Keep anomaly snapshots this long (0s: forever)."},
				{Name: "keep_pre_migration_for", Type: sdk.TypeDuration, Default: "30d", Description: "Keep pre-migration snapshots this long (0s: forever)."},
				{Name: "keep_manual_for", Type: sdk.TypeDuration, Default: "0s", Description: "Keep manual snapshots this long (0s: forever)."},
			}}},
	},
	Example: `sink "snapshot" "guard" {
  when_severity    = ["HIGH"]
  anomaly_interval = "15m"

  postgres {
    host     = "127.0.0.1"
    user     = "tda"
    password = env("TDA_PG_PASSWORD")
    database = "app"
  }

  retention {
    keep_daily   = 7
    keep_weekly  = 4
    keep_monthly = 3
  }
}`,
}

// MinProbeInterval is the shortest probe_interval: each probe opens a connection (PostgreSQL)
// or calls DescribeDBClusters (Aurora).
const MinProbeInterval = 10 * time.Second

// Settings is a decoded snapshot block.
type Settings struct {
	// Name is the block's name (the CLI's -target).
	Name string
	// DataDir is the instance's private directory (<agent data_dir>/sink.snapshot.<name>).
	DataDir         string
	AppVersion      string
	WhenSeverity    []string
	AnomalyInterval time.Duration
	WaitTimeout     time.Duration
	PollInterval    time.Duration
	// ProbeInterval is how often the agent probes the target (at least MinProbeInterval).
	ProbeInterval time.Duration
	Retention     retention.Policy
	// Exactly one of Aurora, Postgres and MySQL is set.
	Aurora   *aurora.Config
	Postgres *postgres.Config
	MySQL    *mysql.Config
}

// InstanceName returns the block name from an instance address ("sink.snapshot.guard" ->
// "guard").
func InstanceName(instance string) string {
	if i := strings.LastIndexByte(instance, '.'); i >= 0 {
		return instance[i+1:]
	}
	return instance
}

// DumpDir is where the postgres provider keeps its dumps unless the block sets dir:
// <agent data_dir>/snapshots/<sink name>, found from the instance's private directory
// <agent data_dir>/sink.snapshot.<name>. The sink and the CLI both call it, so they always
// agree.
func DumpDir(instanceDataDir, name string) string {
	return filepath.Join(filepath.Dir(filepath.Clean(instanceDataDir)), "snapshots", name)
}

// ParseSettings reads a decoded block. It does no I/O (tda validate runs it).
func ParseSettings(conf *sdk.Config, res sdk.Resources) (Settings, error) {
	s := Settings{
		Name:            InstanceName(res.Instance),
		DataDir:         res.DataDir,
		AppVersion:      conf.String("app_version"),
		WhenSeverity:    conf.StringList("when_severity"),
		AnomalyInterval: conf.Duration("anomaly_interval"),
		WaitTimeout:     conf.Duration("wait_timeout"),
		PollInterval:    conf.Duration("poll_interval"),
		ProbeInterval:   conf.Duration("probe_interval"),
		Retention:       retention.Default(),
	}
	if s.AppVersion == "" {
		s.AppVersion = res.Env(AppVersionEnv)
	}
	for _, sev := range s.WhenSeverity {
		switch sev {
		case sdk.SeverityHigh, sdk.SeverityMedium, sdk.SeverityLow:
		default:
			return s, conf.Errorf("when_severity", "unknown severity %q: use %q, %q or %q", sev,
				sdk.SeverityHigh, sdk.SeverityMedium, sdk.SeverityLow)
		}
	}
	if s.WaitTimeout <= 0 {
		return s, conf.Errorf("wait_timeout", "wait_timeout must be positive")
	}
	if s.PollInterval <= 0 {
		return s, conf.Errorf("poll_interval", "poll_interval must be positive")
	}
	if s.ProbeInterval < MinProbeInterval {
		return s, conf.Errorf("probe_interval", "probe_interval must be at least %s: each probe connects to the target", MinProbeInterval)
	}
	a, p, my := conf.Block("aurora"), conf.Block("postgres"), conf.Block("mysql")
	switch {
	case a != nil && p != nil:
		return s, conf.Errorf("postgres", "a snapshot block protects one target: keep either the aurora or the postgres block")
	case my != nil && (a != nil || p != nil):
		return s, conf.Errorf("mysql", "a snapshot block protects one target: keep one of the aurora, postgres and mysql blocks")
	case my != nil:
		port := my.Int("port")
		if port <= 0 || port > 65535 {
			return s, my.Errorf("port", "port must be between 1 and 65535")
		}
		dir := my.String("dir")
		if dir == "" {
			dir = DumpDir(res.DataDir, s.Name)
		}
		s.MySQL = &mysql.Config{Host: my.String("host"), Port: int(port), User: my.String("user"),
			Password: my.String("password"), Database: my.String("database"), Dir: dir,
			BinDir: my.String("bin_dir"), PollInterval: s.PollInterval}
		if s.MySQL.Database == "" {
			return s, my.Errorf("database", "database must not be empty")
		}
	case a == nil && p == nil:
		return s, conf.Errorf("", "add an aurora { cluster = \"...\" }, a postgres { database = \"...\" } or a mysql { database = \"...\" } block")
	case a != nil:
		s.Aurora = &aurora.Config{Cluster: a.String("cluster"), Region: a.String("region"),
			Endpoint: a.String("endpoint"), InstanceClass: a.String("instance_class"),
			SubnetGroup: a.String("subnet_group"), SecurityGroupIDs: a.StringList("security_group_ids"),
			PollInterval: s.PollInterval, SnapshotTimeout: s.WaitTimeout, RestoreTimeout: a.Duration("restore_timeout")}
		if err := provider.ValidIdentifier(s.Aurora.Cluster); err != nil {
			return s, a.Errorf("cluster", "%v", err)
		}
	default:
		port := p.Int("port")
		if port <= 0 || port > 65535 {
			return s, p.Errorf("port", "port must be between 1 and 65535")
		}
		dir := p.String("dir")
		if dir == "" {
			dir = DumpDir(res.DataDir, s.Name)
		}
		s.Postgres = &postgres.Config{Host: p.String("host"), Port: int(port), User: p.String("user"),
			Password: p.String("password"), Database: p.String("database"), SSLMode: p.String("sslmode"),
			MaintenanceDatabase: p.String("maintenance_database"), Dir: dir, BinDir: p.String("bin_dir"),
			PollInterval: s.PollInterval}
		if s.Postgres.Database == "" {
			return s, p.Errorf("database", "database must not be empty")
		}
	}
	if r := conf.Block("retention"); r != nil {
		s.Retention = retention.Policy{Daily: int(r.Int("keep_daily")), Weekly: int(r.Int("keep_weekly")),
			Monthly: int(r.Int("keep_monthly")), KeepFor: map[string]time.Duration{
				provider.TriggerAnomaly:      r.Duration("keep_anomaly_for"),
				provider.TriggerPreMigration: r.Duration("keep_pre_migration_for"),
				provider.TriggerManual:       r.Duration("keep_manual_for"),
			}}
		for _, f := range []string{"keep_daily", "keep_weekly", "keep_monthly"} {
			if r.Int(f) < 0 {
				return s, r.Errorf(f, "%s must not be negative", f)
			}
		}
	}
	return s, nil
}

// Open connects the configured provider (no network traffic yet for Aurora: credentials and
// endpoints are resolved on first use).
func (s Settings) Open(ctx context.Context, log hclog.Logger) (provider.Provider, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	switch {
	case s.Aurora != nil:
		cfg := *s.Aurora
		cfg.Logger = log
		return aurora.New(ctx, cfg)
	case s.Postgres != nil:
		cfg := *s.Postgres
		cfg.Logger = log
		return postgres.New(cfg)
	case s.MySQL != nil:
		cfg := *s.MySQL
		cfg.Logger = log
		return mysql.New(cfg)
	}
	return nil, fmt.Errorf("snapshot %s: no provider configured", s.Name)
}
