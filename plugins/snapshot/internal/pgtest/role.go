package pgtest

import (
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
)

// CreateRole creates a login role named prefix_<random> with password and the given role
// attributes (e.g. "NOCREATEDB"), as the postgres superuser; it is dropped, with what it owns
// and its grants, when the test ends. Grants are given with s's own connections.
func (s Server) CreateRole(t testing.TB, prefix, password, attributes string) string {
	t.Helper()
	name := prefix + "_" + Random(6)
	sql := fmt.Sprintf(`CREATE ROLE %s LOGIN %s PASSWORD '%s'`, pgx.Identifier{name}.Sanitize(), attributes, password)
	if out, err := superuser(s.Port, sql); err != nil {
		t.Fatalf("create role %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		// Privileges granted on databases the test drops go with them; DROP OWNED clears the rest.
		drop := fmt.Sprintf(`DROP ROLE IF EXISTS %s`, pgx.Identifier{name}.Sanitize())
		if out, err := superuser(s.Port, drop); err != nil {
			t.Logf("drop role %s: %v: %s", name, err, out)
		}
	})
	return name
}
