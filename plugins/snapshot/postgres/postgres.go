// Package postgres is the snapshot provider for PostgreSQL: pg_dump in custom format into a
// directory, one metadata file per dump holding the same tags as an Aurora snapshot and the
// dump's SHA-256, and restores with pg_restore into a new database after the checksum is
// verified.
//
// A snapshot's recovery point is fixed before Create returns: Create opens a REPEATABLE READ
// transaction, exports its snapshot (pg_export_snapshot) and starts pg_dump with --snapshot, so
// the dump holds exactly the data committed at that moment however long it takes to write.
package postgres

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/plugins/snapshot/internal/dumpdir"
	"github.com/tda-dev/tda/plugins/snapshot/provider"
)

// Config configures the provider.
type Config struct {
	// Host is a host name, an IP address or a unix socket directory ("" = libpq's default).
	Host string
	// Port is the server port (0 = 5432).
	Port int
	// User is the role to connect as ("" = libpq's default, the OS user).
	User string
	// Password is passed to pg_dump and pg_restore through PGPASSWORD, never on a command line.
	Password string
	// Database is the database to snapshot.
	Database string
	// SSLMode is libpq's sslmode ("" = libpq's default).
	SSLMode string
	// MaintenanceDatabase is where CREATE DATABASE runs during a restore ("" = "postgres").
	MaintenanceDatabase string
	// Dir holds the dumps and their metadata files.
	Dir string
	// BinDir holds pg_dump and pg_restore ("" = found on PATH).
	BinDir string
	// PollInterval is how often Wait looks at a dump another process is writing (0 = 1s).
	PollInterval time.Duration
	// Logger receives progress messages (nil = none).
	Logger hclog.Logger
}

// Provider takes and restores pg_dump snapshots of one database.
type Provider struct {
	cfg Config
	log hclog.Logger

	// ctx bounds the background dumps; cancel stops them when Close gives up waiting.
	ctx    context.Context
	cancel context.CancelFunc

	// dir is the dump directory: metadata, locks, listing and waiting (internal/dumpdir).
	dir *dumpdir.Dir

	mu   sync.Mutex
	jobs map[string]*job // dumps this process is writing, by snapshot ID
	wg   sync.WaitGroup
}

var _ provider.Provider = (*Provider)(nil)

// New returns a provider; it does no I/O.
func New(cfg Config) (*Provider, error) {
	if cfg.Database == "" {
		return nil, fmt.Errorf("postgres: database is required")
	}
	if cfg.Dir == "" {
		return nil, fmt.Errorf("postgres: dump directory is required")
	}
	if cfg.MaintenanceDatabase == "" {
		cfg.MaintenanceDatabase = "postgres"
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Provider{cfg: cfg, log: log, ctx: ctx, cancel: cancel, dir: &dumpdir.Dir{Path: cfg.Dir, Ext: ".dump", Log: log,
		PollInterval: cfg.PollInterval, FailedAdvice: "the PostgreSQL log"}, jobs: map[string]*job{}}, nil
}

// Kind implements provider.Provider.
func (p *Provider) Kind() string { return "postgres" }

// Target implements provider.Provider: the database name.
func (p *Provider) Target() string { return p.cfg.Database }

// Dir returns the dump directory.
func (p *Provider) Dir() string { return p.cfg.Dir }

// Capabilities implements provider.Provider: no point in time; failed dumps can be deleted.
func (p *Provider) Capabilities() provider.Capabilities {
	return provider.Capabilities{PointInTime: false, DeletesFailed: true}
}

// RestorableRange implements provider.Provider.
func (p *Provider) RestorableRange(context.Context) (provider.TimeRange, error) {
	return provider.TimeRange{}, &provider.Error{Op: "point-in-time range of " + p.cfg.Database,
		Class:  provider.ErrNotSupported,
		Advice: "PostgreSQL dumps restore to the moment each was taken; pick one from `tda snapshot list`"}
}

// Quota implements provider.Provider: a dump directory has no quota.
func (p *Provider) Quota(context.Context) (*provider.Quota, error) { return nil, nil }

// Close waits for dumps in progress until ctx ends, then stops them.
func (p *Provider) Close(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		p.cancel()
		return nil
	case <-ctx.Done():
		p.cancel()
		<-done
		return fmt.Errorf("postgres: dumps still running were stopped: %w", ctx.Err())
	}
}

// connString returns a keyword/value connection string for database (password included).
func (p *Provider) connString(database string) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+quoteConnValue(v))
		}
	}
	add("host", p.cfg.Host)
	if p.cfg.Port != 0 {
		add("port", strconv.Itoa(p.cfg.Port))
	}
	add("user", p.cfg.User)
	add("password", p.cfg.Password)
	add("dbname", database)
	add("sslmode", p.cfg.SSLMode)
	return strings.Join(parts, " ")
}

// Endpoint returns a connection string for database without the password, for operators.
func (p *Provider) endpoint(database string) string {
	var parts []string
	for _, kv := range [][2]string{{"host", p.cfg.Host}, {"port", portString(p.cfg.Port)},
		{"user", p.cfg.User}, {"dbname", database}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+quoteConnValue(kv[1]))
		}
	}
	return strings.Join(parts, " ")
}

func portString(port int) string {
	if port == 0 {
		return ""
	}
	return strconv.Itoa(port)
}

// quoteConnValue quotes a libpq keyword/value value when needed.
func quoteConnValue(v string) string {
	if v != "" && !strings.ContainsAny(v, " '\\\t\n") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// toolEnv is the environment for pg_dump and pg_restore: the agent's, with the connection
// settings as PG* variables so that no secret appears on a command line.
func (p *Provider) toolEnv() []string {
	env := make([]string, 0, len(os.Environ())+6)
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGSSLMODE", "PGDATABASE", "PGSERVICE", "PGOPTIONS":
			continue
		}
		env = append(env, kv)
	}
	set := func(k, v string) {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	set("PGHOST", p.cfg.Host)
	set("PGPORT", portString(p.cfg.Port))
	set("PGUSER", p.cfg.User)
	set("PGPASSWORD", p.cfg.Password)
	set("PGSSLMODE", p.cfg.SSLMode)
	return env
}

// tool returns the path of pg_dump or pg_restore.
func (p *Provider) tool(name string) (string, error) {
	path := name
	if p.cfg.BinDir != "" {
		path = filepath.Join(p.cfg.BinDir, name)
	}
	found, err := exec.LookPath(path)
	if err != nil {
		return "", &provider.Error{Op: "find " + name, Class: provider.ErrNotSupported, Err: err,
			Advice: "install the PostgreSQL client tools of the server's major version " +
				"(Debian: postgresql-client) or set postgres.bin_dir"}
	}
	return found, nil
}
