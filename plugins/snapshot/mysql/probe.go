package mysql

import (
	"context"
	"fmt"
	"os"

	"github.com/tda-dev/tda/plugins/snapshot/provider"
)

var _ provider.Prober = (*Provider)(nil)

// Probe implements provider.Prober: mysqldump and mysql are installed, the database accepts
// the configured credentials, and the dump directory is writable. It changes nothing. (The
// grants mysqldump needs are not read: MySQL and MariaDB spell them differently; a missing one
// shows as the failed snapshot's error.)
func (p *Provider) Probe(ctx context.Context) error {
	op := "probe database " + p.cfg.Database
	if _, err := p.tool("mysqldump", "mariadb-dump"); err != nil {
		return err
	}
	if _, err := p.tool("mysql", "mariadb"); err != nil {
		return err
	}
	db, err := p.open(p.cfg.Database)
	if err != nil {
		return &provider.Error{Op: op, Err: err}
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return connectError(op, p.cfg.Database, err)
	}
	if err := os.MkdirAll(p.cfg.Dir, 0o700); err != nil {
		return &provider.Error{Op: op, Err: err, Advice: "check that the dump directory " + p.cfg.Dir + " is writable"}
	}
	f, err := os.CreateTemp(p.cfg.Dir, ".probe-*")
	if err != nil {
		return &provider.Error{Op: op, Err: fmt.Errorf("write in the dump directory: %w", err),
			Advice: "check that the dump directory " + p.cfg.Dir + " is writable by the agent's user"}
	}
	f.Close()
	return os.Remove(f.Name())
}
