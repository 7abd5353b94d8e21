package repair

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/tda-dev/tda/plugins/snapshot/internal/mysqltest"
	"github.com/tda-dev/tda/plugins/snapshot/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	mysqltest.Stop()
	os.Exit(code)
}

// backend makes empty databases of one kind and knows its DDL.
type backend struct {
	name  string
	newDB func(t *testing.T) string // returns a DSN
	ddl   []string
}

func backends(t *testing.T) []backend {
	return []backend{
		{name: "postgres", newDB: func(t *testing.T) string {
			s := pgtest.Require(t)
			return s.ConnString(s.CreateDatabase(t, "tda_repair"))
		}, ddl: []string{
			`CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL UNIQUE, password_hash text NOT NULL, updated_at timestamp NOT NULL)`,
			`CREATE TABLE orders (id integer PRIMARY KEY, user_id integer NOT NULL REFERENCES users(id) ON DELETE CASCADE, total integer NOT NULL)`,
			`CREATE TABLE order_items (id integer PRIMARY KEY, order_id integer NOT NULL REFERENCES orders(id) ON DELETE CASCADE, sku text NOT NULL)`,
		}},
		{name: "mariadb", newDB: func(t *testing.T) string {
			s := mysqltest.Require(t)
			return s.URL(s.CreateDatabase(t, "tda_repair"))
		}, ddl: []string{
			"CREATE TABLE users (id INT PRIMARY KEY, email VARCHAR(100) NOT NULL UNIQUE, password_hash VARCHAR(100) NOT NULL, updated_at DATETIME(6) NOT NULL) ENGINE=InnoDB",
			"CREATE TABLE orders (id INT PRIMARY KEY, user_id INT NOT NULL, total INT NOT NULL, FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE) ENGINE=InnoDB",
			"CREATE TABLE order_items (id INT PRIMARY KEY, order_id INT NOT NULL, sku VARCHAR(20) NOT NULL, FOREIGN KEY (order_id) REFERENCES orders(id) ON DELETE CASCADE) ENGINE=InnoDB",
		}},
	}
}

// The incident's timeline (UTC): rows last changed at 20:00, the snapshot at 21:00, a
// legitimate change of user 6 at 22:00, user 11 signing up at 22:30, the attack from 22:57:00
// (users 1 to 5 reset, users 7 and 8 deleted with their orders) to 22:57:30, and user 3
// changing their own password again at 23:10.
var (
	incidentFrom  = time.Date(2026, 11, 29, 22, 57, 0, 0, time.UTC)
	incidentUntil = time.Date(2026, 11, 29, 22, 57, 30, 0, time.UTC)
)

const attackerHash = "$2b$04$attackerattackerattackeOJqCNb7z5m7hYV1jcF6LxZpFf5e7gNa"

// fixture is a restored database (as it was at the snapshot) and a live one after the incident.
type fixture struct {
	src, live       *DB
	hashes          map[int]string // each user's hash at the snapshot
	legitimate3     string         // user 3's own new hash, set after the incident
	legitimate6     string
	password        func(id int) string
	srcDSN, liveDSN string
}

func newFixture(t *testing.T, b backend) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{hashes: map[int]string{}, password: func(id int) string { return fmt.Sprintf("secret-%d", id) }}
	f.srcDSN, f.liveDSN = b.newDB(t), b.newDB(t)
	var seed []string
	for id := 1; id <= 10; id++ {
		h, err := bcrypt.GenerateFromPassword([]byte(f.password(id)), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		f.hashes[id] = string(h)
		seed = append(seed, fmt.Sprintf("INSERT INTO users VALUES (%d, 'u%d@example.com', '%s', '2026-11-29 20:00:00')", id, id, h))
		seed = append(seed, fmt.Sprintf("INSERT INTO orders VALUES (%d, %d, %d)", 100+id, id, 10*id))
		seed = append(seed, fmt.Sprintf("INSERT INTO order_items VALUES (%d, %d, 'sku-%d')", 1000+id, 100+id, id))
	}
	h3, _ := bcrypt.GenerateFromPassword([]byte("new-3"), bcrypt.MinCost)
	h6, _ := bcrypt.GenerateFromPassword([]byte("new-6"), bcrypt.MinCost)
	f.legitimate3, f.legitimate6 = string(h3), string(h6)
	incident := []string{
		fmt.Sprintf("UPDATE users SET password_hash = '%s', updated_at = '2026-11-29 22:00:00' WHERE id = 6", h6),
		"INSERT INTO users VALUES (11, 'u11@example.com', '" + f.hashes[1] + "', '2026-11-29 22:30:00')",
	}
	for id := 1; id <= 5; id++ {
		incident = append(incident, fmt.Sprintf("UPDATE users SET password_hash = '%s', updated_at = '2026-11-29 22:57:0%d' WHERE id = %d", attackerHash, id, id))
	}
	incident = append(incident,
		"DELETE FROM users WHERE id IN (7, 8)",
		fmt.Sprintf("UPDATE users SET password_hash = '%s', updated_at = '2026-11-29 23:10:00' WHERE id = 3", h3))
	var err error
	if f.src, err = Open(ctx, f.srcDSN, "restored"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.src.Close() })
	if f.live, err = Open(ctx, f.liveDSN, "live"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.live.Close() })
	exec(t, f.src, slicesConcat(b.ddl, seed)...)
	exec(t, f.live, append(slicesConcat(b.ddl, seed), incident...)...)
	return f
}

func slicesConcat(a, b []string) []string { return append(append([]string{}, a...), b...) }

func exec(t *testing.T, db *DB, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := db.SQL.Exec(q); err != nil {
			t.Fatalf("%s: %s: %v", db.Name, q, err)
		}
	}
}

// incidentScope names the rows the incident's events name, each at its event's time.
func incidentScope() Scope {
	s := Scope{Table: "users", Window: Window{From: incidentFrom, Until: incidentUntil}}
	for id := 1; id <= 5; id++ {
		s.Keys = append(s.Keys, Key{Value: fmt.Sprint(id), At: incidentFrom.Add(time.Duration(id) * time.Second)})
	}
	for _, id := range []string{"7", "8", "11", "99"} {
		s.Keys = append(s.Keys, Key{Value: id, At: incidentFrom.Add(20 * time.Second)})
	}
	return s
}

// digest is every row of the three tables, in order: equal digests, equal databases.
func digest(t *testing.T, db *DB) string {
	t.Helper()
	var b strings.Builder
	for _, q := range []string{
		"SELECT id, email, password_hash, updated_at FROM users ORDER BY id",
		"SELECT id, user_id, total, 0 FROM orders ORDER BY id",
		"SELECT id, order_id, sku, 0 FROM order_items ORDER BY id",
	} {
		rows, err := db.SQL.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			v := make([]any, 4)
			if err := rows.Scan(&v[0], &v[1], &v[2], &v[3]); err != nil {
				t.Fatal(err)
			}
			for _, x := range v {
				b.WriteString(valueOf(x).String() + "|")
			}
			b.WriteString("\n")
		}
		rows.Close()
	}
	return b.String()
}

func decisions(p *Plan) map[string]Decision {
	out := map[string]Decision{}
	for _, it := range p.Items {
		out[it.Table+" "+it.Key] = it.Decision
	}
	return out
}

func TestPlanDecisions(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			f := newFixture(t, b)
			ctx := context.Background()
			for _, tc := range []struct {
				name  string
				scope func() Scope
				want  map[string]Decision
			}{
				{name: "incident keys with updated_at", scope: incidentScope, want: map[string]Decision{
					"users 1": Repair, "users 2": Repair, "users 3": Skip, "users 4": Repair, "users 5": Repair,
					"users 7": Missing, "users 8": Missing, "users 11": Skip, "users 99": Skip,
					"orders 107": Missing, "orders 108": Missing, "order_items 1007": Missing, "order_items 1008": Missing,
				}},
				{name: "incident keys without updated_at", scope: func() Scope {
					s := incidentScope()
					s.UpdatedAt = "-"
					s.Columns = []string{"password_hash"}
					return s
				}, want: map[string]Decision{
					// Without updated_at, user 3's later change cannot be told apart.
					"users 1": Repair, "users 2": Repair, "users 3": Repair, "users 4": Repair, "users 5": Repair,
					"users 7": Missing, "users 8": Missing, "users 11": Skip, "users 99": Skip,
					"orders 107": Missing, "orders 108": Missing, "order_items 1007": Missing, "order_items 1008": Missing,
				}},
				{name: "whole table in the incident window", scope: func() Scope {
					return Scope{Table: "users", Window: Window{From: incidentFrom, Until: incidentUntil}}
				}, want: map[string]Decision{
					"users 1": Repair, "users 2": Repair, "users 3": Skip, "users 4": Repair, "users 5": Repair,
					"users 6": Skip, "users 7": Missing, "users 8": Missing,
					"orders 107": Missing, "orders 108": Missing, "order_items 1007": Missing, "order_items 1008": Missing,
				}},
				{name: "explicit keys and one column", scope: func() Scope {
					return Scope{Table: "users", Keys: []Key{{Value: "2"}, {Value: "6"}, {Value: "9"}},
						Columns: []string{"password_hash"}, Window: Window{From: incidentFrom, Until: incidentUntil}}
				}, want: map[string]Decision{"users 2": Repair, "users 6": Skip, "users 9": Same}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					p, err := MakePlan(ctx, f.src, f.live, tc.scope())
					if err != nil {
						t.Fatal(err)
					}
					got := decisions(p)
					for k, want := range tc.want {
						if got[k] != want {
							t.Errorf("%s: %q, want %q", k, got[k], want)
						}
					}
					for k, d := range got {
						if _, ok := tc.want[k]; !ok {
							t.Errorf("unexpected item %s: %s", k, d)
						}
					}
					// Parents come before children among the missing rows.
					rank := map[string]int{"users": 0, "orders": 1, "order_items": 2}
					last := -1
					for _, it := range p.Items {
						if it.Decision != Missing {
							if last >= 0 {
								t.Errorf("%s %s (%s) after missing rows", it.Table, it.Key, it.Decision)
							}
							continue
						}
						if rank[it.Table] < last {
							t.Errorf("%s %s comes after a child table", it.Table, it.Key)
						}
						last = rank[it.Table]
					}
				})
			}
		})
	}
}

func TestApplyRepairsAndSecondRunFindsNothing(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			f := newFixture(t, b)
			ctx := context.Background()
			plan, err := MakePlan(ctx, f.src, f.live, incidentScope())
			if err != nil {
				t.Fatal(err)
			}
			before := digest(t, f.live)
			snapshots := 0
			res, err := Apply(ctx, f.live, plan, ApplyOptions{BeforeWrite: func(context.Context) error {
				// The pre-repair snapshot sees the live database as the incident left it.
				if digest(t, f.live) != before {
					t.Error("something was written before the pre-repair snapshot")
				}
				snapshots++
				return nil
			}})
			if err != nil {
				t.Fatal(err)
			}
			if snapshots != 1 || res.Repaired != 4 || res.Inserted != 6 || res.Verified != 10 || len(res.Mismatches) > 0 {
				t.Fatalf("snapshots %d, result %+v", snapshots, res)
			}
			for id := 1; id <= 10; id++ {
				var hash string
				if err := f.live.SQL.QueryRow("SELECT password_hash FROM users WHERE id = " + fmt.Sprint(id)).Scan(&hash); err != nil {
					t.Fatalf("user %d: %v", id, err)
				}
				want, password := f.hashes[id], f.password(id)
				switch id {
				case 3:
					want, password = f.legitimate3, "new-3"
				case 6:
					want, password = f.legitimate6, "new-6"
				}
				if hash != want {
					t.Errorf("user %d: hash %q, want %q byte for byte", id, hash, want)
				}
				if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
					t.Errorf("user %d cannot log in with %q", id, password)
				}
			}
			var n int
			if err := f.live.SQL.QueryRow("SELECT COUNT(*) FROM order_items WHERE order_id IN (107, 108)").Scan(&n); err != nil || n != 2 {
				t.Errorf("order items of the re-inserted users: %d, %v", n, err)
			}
			if err := f.live.SQL.QueryRow("SELECT COUNT(*) FROM users WHERE id = 11").Scan(&n); err != nil || n != 1 {
				t.Errorf("user 11, created after the snapshot: %d, %v", n, err)
			}

			again, err := MakePlan(ctx, f.src, f.live, incidentScope())
			if err != nil {
				t.Fatal(err)
			}
			if again.Pending() != 0 || again.Counts[Same] != 6 {
				t.Fatalf("second plan: counts %v, want nothing pending and 6 rows already repaired", again.Counts)
			}
			after := digest(t, f.live)
			res, err = Apply(ctx, f.live, again, ApplyOptions{BeforeWrite: func(context.Context) error {
				t.Error("a plan with nothing to do takes a snapshot")
				return nil
			}})
			if err != nil || res.Repaired+res.Inserted != 0 || digest(t, f.live) != after {
				t.Fatalf("second apply: %+v, %v", res, err)
			}
		})
	}
}

func TestApplyLeavesNothingHalfApplied(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			for _, tc := range []struct {
				name string
				// during runs inside the transaction, after half the rows; it returns the
				// error Apply must report.
				during func(t *testing.T, f *fixture, cancel context.CancelFunc) error
				// rows changed outside the repair while it ran, not by it
				concurrent bool
			}{
				{name: "cancelled half-way", during: func(t *testing.T, f *fixture, cancel context.CancelFunc) error {
					cancel()
					return context.Canceled
				}},
				{name: "a row changed since the plan", concurrent: true, during: func(t *testing.T, f *fixture, cancel context.CancelFunc) error {
					return ErrChanged
				}},
				{name: "the connection is killed half-way", during: func(t *testing.T, f *fixture, cancel context.CancelFunc) error {
					// Another session kills the one holding the repair's transaction, as a
					// crash of tda or a failover would end it.
					q := `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'`
					if f.live.Dialect.Kind() == "mysql" {
						var id int64
						if err := f.live.SQL.QueryRow("SELECT trx_mysql_thread_id FROM information_schema.INNODB_TRX LIMIT 1").Scan(&id); err != nil {
							t.Fatalf("find the repair's transaction: %v", err)
						}
						q = fmt.Sprintf("KILL %d", id)
					}
					if _, err := f.live.SQL.Exec(q); err != nil {
						t.Fatalf("kill the repair's session: %v", err)
					}
					return errAny
				}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					f := newFixture(t, b)
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					plan, err := MakePlan(ctx, f.src, f.live, incidentScope())
					if err != nil {
						t.Fatal(err)
					}
					if tc.concurrent {
						// User 5 changes their password between the plan and the apply.
						exec(t, f.live, "UPDATE users SET password_hash = 'x', updated_at = '2026-11-29 23:30:00' WHERE id = 5")
					}
					before := digest(t, f.live)
					var want error
					_, err = Apply(ctx, f.live, plan, ApplyOptions{Progress: func(done, total int) {
						if done == total/2 && want == nil {
							want = tc.during(t, f, cancel)
						}
					}})
					if want == nil {
						want = ErrChanged
					}
					if err == nil || (want != errAny && !errors.Is(err, want)) || !strings.Contains(err.Error(), "nothing was written") {
						t.Fatalf("Apply: %v, want %v saying nothing was written", err, want)
					}
					if after := digest(t, f.live); after != before {
						t.Fatalf("the live database changed:\nbefore:\n%s\nafter:\n%s", before, after)
					}
					// Made again, the plan still has everything to do.
					again, err := MakePlan(context.Background(), f.src, f.live, incidentScope())
					if err != nil {
						t.Fatal(err)
					}
					if again.Counts[Missing] != 6 {
						t.Fatalf("after the failed apply: %v", again.Counts)
					}
				})
			}
		})
	}
}

// errAny stands for whatever error the driver reports.
var errAny = errors.New("any error")

func TestApplyStopsWhenThePreRepairSnapshotFails(t *testing.T) {
	b := backends(t)[0]
	f := newFixture(t, b)
	ctx := context.Background()
	plan, err := MakePlan(ctx, f.src, f.live, incidentScope())
	if err != nil {
		t.Fatal(err)
	}
	before := digest(t, f.live)
	_, err = Apply(ctx, f.live, plan, ApplyOptions{BeforeWrite: func(context.Context) error {
		return errors.New("disk full")
	}})
	if err == nil || !strings.Contains(err.Error(), "disk full") || digest(t, f.live) != before {
		t.Fatalf("Apply: %v", err)
	}
}

func TestPlanRefusesBadScopes(t *testing.T) {
	b := backends(t)[0]
	f := newFixture(t, b)
	for _, tc := range []struct {
		scope Scope
		want  string
	}{
		{Scope{}, "no table"},
		{Scope{Table: "users"}, "no rows in scope"},
		{Scope{Table: "nope", Keys: []Key{{Value: "1"}}}, `has no table "nope"`},
		{Scope{Table: "users", Keys: []Key{{Value: "1"}}, Columns: []string{"pasword_hash"}}, `column "pasword_hash" is not in table users`},
		{Scope{Table: "users", Keys: []Key{{Value: "1"}}, Columns: []string{"id"}}, "never changes keys"},
		{Scope{Table: "users", Keys: []Key{{Value: "1"}}, UpdatedAt: "modified"}, `column "modified" (updated_at)`},
		{Scope{Table: "users", Window: Window{From: incidentFrom}, MaxRows: 5}, "more than 5 rows"},
	} {
		_, err := MakePlan(context.Background(), f.src, f.live, tc.scope)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.scope, err, tc.want)
		}
	}
}
