package snapshot

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// DSN returns the address `tda repair` connects to for database, with the block's connection
// settings: database is the protected one ("" ) or one a restore created. Aurora blocks name
// a cluster, not credentials, so repairs of Aurora take their addresses from the command line.
func (s Settings) DSN(database string) (string, error) {
	switch {
	case s.Postgres != nil:
		p := s.Postgres
		if database == "" {
			database = p.Database
		}
		var parts []string
		add := func(k, v string) {
			if v != "" {
				parts = append(parts, k+"="+quoteConn(v))
			}
		}
		add("host", p.Host)
		if p.Port != 0 {
			add("port", strconv.Itoa(p.Port))
		}
		add("user", p.User)
		add("password", p.Password)
		add("dbname", database)
		add("sslmode", p.SSLMode)
		return strings.Join(parts, " "), nil
	case s.MySQL != nil:
		m := s.MySQL
		if database == "" {
			database = m.Database
		}
		u := url.URL{Scheme: "mysql", Host: net.JoinHostPort(m.Host, strconv.Itoa(m.Port)), Path: "/" + database}
		if m.Password != "" {
			u.User = url.UserPassword(m.User, m.Password)
		} else {
			u.User = url.User(m.User)
		}
		return u.String(), nil
	}
	return "", fmt.Errorf("snapshot %s protects an Aurora cluster: give the live database with -live and the restored one with -source (their endpoints, user and password)", s.Name)
}

func quoteConn(v string) string {
	if !strings.ContainsAny(v, " '\\\t\n") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}
