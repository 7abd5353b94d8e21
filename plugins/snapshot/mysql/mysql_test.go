package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/tda-dev/tda/plugins/snapshot/internal/mysqltest"
	"github.com/tda-dev/tda/plugins/snapshot/provider"
)

func TestMain(m *testing.M) {
	code := m.Run()
	mysqltest.Stop()
	os.Exit(code)
}

const users = 100

// setup creates an app database with users (bcrypt hashes of "password-<id>") and orders
// referencing them, and a provider over it.
func setup(t *testing.T) (*mysqltest.Server, string, *Provider, *sql.DB) {
	t.Helper()
	s := mysqltest.Require(t)
	name := s.CreateDatabase(t, "tda_app")
	stmts := []string{
		"CREATE TABLE users (id INT PRIMARY KEY, email VARCHAR(100) NOT NULL UNIQUE, password_hash VARCHAR(100) NOT NULL, avatar VARBINARY(16)) DEFAULT CHARSET=utf8mb4",
		"CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, user_id INT NOT NULL, note TEXT, FOREIGN KEY (user_id) REFERENCES users(id))",
	}
	for i := 1; i <= users; i++ {
		h, err := bcrypt.GenerateFromPassword([]byte(fmt.Sprintf("password-%d", i)), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts, fmt.Sprintf("INSERT INTO users VALUES (%d, 'user%d@example.com', '%s', X'00ff%02x')", i, i, h, i),
			fmt.Sprintf("INSERT INTO orders (user_id, note) VALUES (%d, 'order é\\t''quoted''')", i))
	}
	s.Exec(t, name, stmts...)
	p, err := New(Config{Host: s.Host, Port: s.Port, User: s.User, Database: name, Dir: t.TempDir(),
		PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	db, err := sql.Open("mysql", s.DSN(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return s, name, p, db
}

func hashes(t *testing.T, db *sql.DB) map[int]string {
	t.Helper()
	rows, err := db.Query("SELECT id, CONCAT(password_hash, HEX(avatar)) FROM users")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[int]string{}
	for rows.Next() {
		var id int
		var h string
		if err := rows.Scan(&id, &h); err != nil {
			t.Fatal(err)
		}
		out[id] = h
	}
	return out
}

func TestSnapshotAndRestore(t *testing.T) {
	s, name, p, db := setup(t)
	ctx := context.Background()
	before := hashes(t, db)
	tags := map[string]string{provider.TagTrigger: provider.TriggerManual, provider.TagCreatedBy: provider.CreatedByTDA}
	id := "tda-" + name + "-manual-20261129t225705z"
	id = strings.ReplaceAll(id, "_", "-")
	snap, err := p.Create(ctx, provider.CreateRequest{ID: id, Tags: tags})
	if err != nil {
		t.Fatal(err)
	}
	if snap.Status != provider.StatusCreating && snap.Status != provider.StatusAvailable {
		t.Fatalf("created snapshot is %s", snap.Status)
	}
	// Written after Create returned: not in the snapshot.
	s.Exec(t, name, "UPDATE users SET password_hash = 'attacker' WHERE id <= 50")
	snap, err = p.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !snap.Available() || snap.SizeBytes == 0 || snap.Tags[provider.TagTrigger] != provider.TriggerManual {
		t.Fatalf("snapshot %+v", snap)
	}
	if _, err := p.Create(ctx, provider.CreateRequest{ID: id, Tags: tags}); !errors.Is(err, provider.ErrAlreadyExists) {
		t.Fatalf("second Create with the same ID: %v", err)
	}
	list, err := p.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != id {
		t.Fatalf("List: %v %v", list, err)
	}

	newName := name + "_restored"
	t.Cleanup(func() { s.Exec(t, "", "DROP DATABASE IF EXISTS `"+newName+"`") })
	res, err := p.Restore(ctx, provider.RestoreRequest{SnapshotID: id, NewName: newName})
	if err != nil {
		t.Fatal(err)
	}
	if res.Name != newName || !res.RecoveryPoint.Equal(snap.Time) || !strings.Contains(res.Endpoint, newName) {
		t.Fatalf("restore result %+v", res)
	}
	restored, err := sql.Open("mysql", s.DSN(newName))
	if err != nil {
		t.Fatal(err)
	}
	defer restored.Close()
	got := hashes(t, restored)
	if len(got) != users {
		t.Fatalf("%d users restored, want %d", len(got), users)
	}
	for id, h := range before {
		if got[id] != h {
			t.Errorf("user %d: restored %q, want %q byte for byte", id, got[id], h)
		}
		if err := bcrypt.CompareHashAndPassword([]byte(got[id][:60]), []byte(fmt.Sprintf("password-%d", id))); err != nil {
			t.Errorf("user %d cannot log in with the restored hash: %v", id, err)
		}
	}
	var note string
	if err := restored.QueryRow("SELECT note FROM orders WHERE user_id = 7").Scan(&note); err != nil || note != "order é\t'quoted'" {
		t.Errorf("order note %q, %v", note, err)
	}

	for _, tc := range []struct {
		req  provider.RestoreRequest
		want error
	}{
		{provider.RestoreRequest{SnapshotID: id, NewName: newName}, provider.ErrAlreadyExists},
		{provider.RestoreRequest{SnapshotID: id, NewName: name}, provider.ErrInvalid},
		{provider.RestoreRequest{SnapshotID: id, NewName: "bad name"}, provider.ErrInvalid},
		{provider.RestoreRequest{SnapshotID: "nope", NewName: name + "_x"}, provider.ErrNotFound},
		{provider.RestoreRequest{Latest: true, NewName: name + "_x"}, provider.ErrNotSupported},
	} {
		if _, err := p.Restore(ctx, tc.req); !errors.Is(err, tc.want) {
			t.Errorf("Restore(%+v): %v, want %v", tc.req, err, tc.want)
		}
	}

	// A damaged dump is refused before anything is created.
	f, err := os.OpenFile(p.dir.DumpPath(id), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("DROP TABLE users;\n")
	f.Close()
	if _, err := p.Restore(ctx, provider.RestoreRequest{SnapshotID: id, NewName: name + "_bad"}); !errors.Is(err, provider.ErrCorrupt) {
		t.Fatalf("restore of a damaged dump: %v", err)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", name+"_bad").Scan(&n); err != nil || n != 0 {
		t.Fatalf("a database was created for a damaged dump: %d %v", n, err)
	}
	if err := p.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Get(ctx, id); !errors.Is(err, provider.ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
}

func TestSnapshotFailures(t *testing.T) {
	s, name, p, _ := setup(t)
	ctx := context.Background()
	if err := p.Probe(ctx); err != nil {
		t.Fatalf("probe of a reachable database: %v", err)
	}
	unreachable, _ := New(Config{Host: s.Host, Port: 1, User: s.User, Database: name, Dir: t.TempDir()})
	if err := unreachable.Probe(ctx); err == nil || !strings.Contains(err.Error(), "check that the server is running") {
		t.Fatalf("probe of an unreachable server: %v", err)
	}
	// A wrong password fails before anything is recorded... with grant tables skipped any
	// password passes, so a wrong port stands for an unreachable server.
	bad, err := New(Config{Host: s.Host, Port: 1, User: s.User, Database: name, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Create(ctx, provider.CreateRequest{ID: "tda-x-manual-20261129t225705z"}); !provider.Transient(err) || !strings.Contains(err.Error(), "check that the server is running") {
		t.Fatalf("unreachable server: %v", err)
	}
	// A dump whose tool fails is recorded as failed, with the tool's message.
	p.cfg.BinDir = t.TempDir()
	script := "#!/bin/sh\necho 'mysqldump: Got error: 1044: Access denied' >&2\nexit 2\n"
	if err := os.WriteFile(p.cfg.BinDir+"/mysqldump", []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	id := "tda-x-manual-20261129t225706z"
	if _, err := p.Create(ctx, provider.CreateRequest{ID: id}); err != nil {
		t.Fatal(err)
	}
	snap, err := p.Wait(ctx, id)
	if err == nil || snap.Status != provider.StatusFailed || !strings.Contains(snap.Detail, "Access denied") {
		t.Fatalf("failed dump: %+v %v", snap, err)
	}
	if _, err := os.Stat(p.dir.DumpPath(id)); !os.IsNotExist(err) {
		t.Fatalf("the failed dump's file is left: %v", err)
	}
	// A dump cut short (exit 0 without its last line) is not available either.
	if err := os.WriteFile(p.cfg.BinDir+"/mysqldump", []byte("#!/bin/sh\necho 'CREATE TABLE t (id int);'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	id = "tda-x-manual-20261129t225707z"
	if _, err := p.Create(ctx, provider.CreateRequest{ID: id}); err != nil {
		t.Fatal(err)
	}
	if snap, err := p.Wait(ctx, id); err == nil || !strings.Contains(snap.Detail, "incomplete") {
		t.Fatalf("truncated dump: %+v %v", snap, err)
	}
}
