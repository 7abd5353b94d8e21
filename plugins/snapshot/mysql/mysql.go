// Package mysql is the snapshot provider for MySQL and MariaDB (Aurora MySQL included, when
// reached as a server): mysqldump --single-transaction into a directory, one metadata file per
// dump holding the same tags as an Aurora snapshot and the dump's SHA-256, and restores with
// the mysql client into a new database after the checksum is verified.
//
// A snapshot's recovery point: mysqldump's first statement starts a transaction WITH CONSISTENT
// SNAPSHOT, so the dump holds the data committed when it started; Create records the server's
// clock just before starting it and returns once mysqldump's output shows the snapshot taken.
// Unlike PostgreSQL there is no exported snapshot, so the recorded time is a lower bound: the
// snapshot itself is taken the few milliseconds mysqldump needs to connect later.
package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	drv "github.com/go-sql-driver/mysql"
	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/plugins/snapshot/internal/dumpdir"
	"github.com/tda-dev/tda/plugins/snapshot/provider"
)

// Config configures the provider.
type Config struct {
	// Host is the server's host name or address (default 127.0.0.1).
	Host string
	// Port is the server port (0 = 3306).
	Port int
	// User is the account to connect as; it needs SELECT, SHOW VIEW, TRIGGER, EVENT and LOCK
	// TABLES on the database, and CREATE and DROP for restores.
	User string
	// Password reaches the tools through MYSQL_PWD, never a command line.
	Password string
	// Database is the database to snapshot.
	Database string
	// Dir holds the dumps and their metadata files.
	Dir string
	// BinDir holds mysqldump and mysql ("" = found on PATH; mariadb-dump and mariadb too).
	BinDir string
	// PollInterval is how often Wait looks at a dump another process is writing (0 = 1s).
	PollInterval time.Duration
	// Logger receives progress messages (nil = none).
	Logger hclog.Logger
}

// Provider takes and restores mysqldump snapshots of one database.
type Provider struct {
	cfg Config
	log hclog.Logger

	// ctx bounds the background dumps; cancel stops them when Close gives up waiting.
	ctx    context.Context
	cancel context.CancelFunc

	// dir is the dump directory: metadata, locks, listing and waiting (internal/dumpdir).
	dir *dumpdir.Dir

	mu   sync.Mutex
	jobs map[string]chan struct{} // dumps this process is writing, closed when done
	wg   sync.WaitGroup
}

var _ provider.Provider = (*Provider)(nil)

// New returns a provider; it does no I/O.
func New(cfg Config) (*Provider, error) {
	if cfg.Database == "" {
		return nil, fmt.Errorf("mysql: database is required")
	}
	if cfg.Dir == "" {
		return nil, fmt.Errorf("mysql: dump directory is required")
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Port == 0 {
		cfg.Port = 3306
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Provider{cfg: cfg, log: log, ctx: ctx, cancel: cancel, dir: &dumpdir.Dir{Path: cfg.Dir, Ext: ".sql", Log: log,
		PollInterval: cfg.PollInterval, FailedAdvice: "the server's error log"}, jobs: map[string]chan struct{}{}}, nil
}

// Kind implements provider.Provider.
func (p *Provider) Kind() string { return "mysql" }

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
		Advice: "mysqldump snapshots restore to the moment each was taken; pick one from `tda snapshot list`"}
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
		return fmt.Errorf("mysql: dumps still running were stopped: %w", ctx.Err())
	}
}

// open connects to database ("" for none) with the driver.
func (p *Provider) open(database string) (*sql.DB, error) {
	c := drv.NewConfig()
	c.User, c.Passwd, c.Net = p.cfg.User, p.cfg.Password, "tcp"
	c.Addr = net.JoinHostPort(p.cfg.Host, strconv.Itoa(p.cfg.Port))
	c.DBName = database
	c.ParseTime, c.Loc = true, time.UTC
	db, err := sql.Open("mysql", c.FormatDSN())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(2)
	return db, nil
}

// toolArgs are the connection flags of mysqldump and mysql; the password goes in toolEnv.
func (p *Provider) toolArgs() []string {
	args := []string{"--no-defaults", "--protocol=TCP", "--host=" + p.cfg.Host, "--port=" + strconv.Itoa(p.cfg.Port)}
	if p.cfg.User != "" {
		args = append(args, "--user="+p.cfg.User)
	}
	return args
}

// toolEnv is the agent's environment with MYSQL_PWD set to the password (and no other
// MYSQL_* or MARIADB_* variable that could redirect the tools).
func (p *Provider) toolEnv() []string {
	env := make([]string, 0, len(os.Environ())+1)
	for _, kv := range os.Environ() {
		k := strings.SplitN(kv, "=", 2)[0]
		if strings.HasPrefix(k, "MYSQL_") || strings.HasPrefix(k, "MARIADB_") {
			continue
		}
		env = append(env, kv)
	}
	if p.cfg.Password != "" {
		env = append(env, "MYSQL_PWD="+p.cfg.Password)
	}
	return env
}

// tool returns the path of a client tool, trying MariaDB's name after MySQL's.
func (p *Provider) tool(names ...string) (string, error) {
	var err error
	for _, name := range names {
		path := name
		if p.cfg.BinDir != "" {
			path = filepath.Join(p.cfg.BinDir, name)
		}
		var found string
		if found, err = exec.LookPath(path); err == nil {
			return found, nil
		}
	}
	return "", &provider.Error{Op: "find " + names[0], Class: provider.ErrNotSupported, Err: err,
		Advice: "install the MySQL or MariaDB client tools (Debian: mariadb-client) or set mysql.bin_dir"}
}

func connectError(op, database string, err error) error {
	return &provider.Error{Op: op, Class: provider.ErrBusy, Err: err,
		Advice: fmt.Sprintf("check that the server is running and that the mysql block (host, port, user, password) can reach database %q", database)}
}
