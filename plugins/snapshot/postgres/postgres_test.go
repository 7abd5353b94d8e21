package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/tda-dev/tda/plugins/snapshot/internal/dumpdir"
	"github.com/tda-dev/tda/plugins/snapshot/internal/pgtest"
	"github.com/tda-dev/tda/plugins/snapshot/provider"
)

const users = 200

// seed creates an application schema: users with bcrypt hashes (the passwords are
// "password-<id>") and orders referencing them.
func seed(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	_, err := conn.Exec(ctx, `
CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL UNIQUE, hashed_password text NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE orders (id serial PRIMARY KEY, user_id integer NOT NULL REFERENCES users(id),
                     total numeric(10,2) NOT NULL, note text);`)
	if err != nil {
		t.Fatal(err)
	}
	rows := make([][]any, 0, users)
	for i := 1; i <= users; i++ {
		h, err := bcrypt.GenerateFromPassword([]byte(fmt.Sprintf("password-%d", i)), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, []any{i, fmt.Sprintf("user%d@example.com", i), string(h)})
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"users"}, []string{"id", "email", "hashed_password"},
		pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO orders (user_id, total, note)
		SELECT 1 + (g % 200), g * 1.25, 'order ' || g || E' \u00e9\u00e8 \t quote'' ' FROM generate_series(1, 5000) g`); err != nil {
		t.Fatal(err)
	}
}

// hashes returns every user's password hash as raw bytes, by id.
func hashes(t *testing.T, conn *pgx.Conn) map[int][]byte {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT id, convert_to(hashed_password, 'UTF8') FROM users`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int][]byte{}
	for rows.Next() {
		var id int
		var h []byte
		if err := rows.Scan(&id, &h); err != nil {
			t.Fatal(err)
		}
		out[id] = h
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	return out
}

// tableDigest returns the row count and an md5 over every row, in key order.
func tableDigest(t *testing.T, conn *pgx.Conn, table string) string {
	t.Helper()
	var n int64
	var sum string
	err := conn.QueryRow(context.Background(), fmt.Sprintf(
		`SELECT count(*), coalesce(md5(string_agg(t::text, E'\n' ORDER BY t.id)), '') FROM %s t`, table)).Scan(&n, &sum)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d rows, md5 %s", n, sum)
}

func newProvider(t *testing.T, srv pgtest.Server, db string) *Provider {
	t.Helper()
	p, err := New(Config{Host: srv.Host, Port: srv.Port, User: srv.User, Password: srv.Password,
		Database: db, SSLMode: "disable", Dir: t.TempDir(), PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

func tags(trigger string) map[string]string {
	return map[string]string{provider.TagCreatedAt: time.Now().UTC().Format(time.RFC3339),
		provider.TagTrigger: trigger, provider.TagCreatedBy: provider.CreatedByTDA, provider.TagAppVersion: "1.4.2"}
}

// TestMassPasswordResetRestore is the recovery drill: snapshot, attack (every password reset),
// restore into a new database, and every hash comes back byte for byte.
func TestMassPasswordResetRestore(t *testing.T) {
	srv := pgtest.Require(t)
	ctx := context.Background()
	db := srv.CreateDatabase(t, "tda_app")
	conn := srv.Connect(t, db)
	seed(t, conn)
	before := hashes(t, conn)
	beforeUsers, beforeOrders := tableDigest(t, conn, "users"), tableDigest(t, conn, "orders")

	p := newProvider(t, srv, db)
	id := provider.NewID(db, provider.TriggerAnomaly, time.Now(), "3f9a0c1d")
	start := time.Now()
	snap, err := p.Create(ctx, provider.CreateRequest{ID: id, Tags: tags(provider.TriggerAnomaly)})
	if err != nil {
		t.Fatal(err)
	}
	created := time.Since(start)
	// Written after Create returned: must not be in the snapshot, however late pg_dump reads.
	if _, err := conn.Exec(ctx, `INSERT INTO orders (user_id, total, note) VALUES (1, 1, 'after the snapshot')`); err != nil {
		t.Fatal(err)
	}
	if snap.Status != provider.StatusCreating || snap.Time.IsZero() {
		t.Fatalf("Create returned %+v, want a creating snapshot with its recovery point", snap)
	}
	snap, err = p.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("snapshot of %d users and 5000 orders: recovery point fixed in %v, available after %v, %d bytes",
		users, created.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), snap.SizeBytes)
	if snap.Status != provider.StatusAvailable || snap.SizeBytes == 0 || snap.Trigger() != provider.TriggerAnomaly {
		t.Fatalf("after Wait: %+v", snap)
	}

	// The attack: every password replaced.
	reset, _ := bcrypt.GenerateFromPassword([]byte("owned"), bcrypt.MinCost)
	if _, err := conn.Exec(ctx, `UPDATE users SET hashed_password = $1`, string(reset)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `DELETE FROM orders WHERE id % 3 = 0`); err != nil {
		t.Fatal(err)
	}

	restored := db + "_restored"
	srv.DropOnCleanup(t, restored)
	start = time.Now()
	res, err := p.Restore(ctx, provider.RestoreRequest{SnapshotID: id, NewName: restored})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("restore into a new database took %v", time.Since(start).Round(time.Millisecond))
	if res.Name != restored || !res.RecoveryPoint.Equal(snap.Time) || !strings.Contains(res.Endpoint, "dbname="+restored) ||
		strings.Contains(res.Endpoint, srv.Password) {
		t.Fatalf("restore result %+v", res)
	}

	rconn := srv.Connect(t, restored)
	after := hashes(t, rconn)
	if len(after) != users {
		t.Fatalf("restored %d users, want %d", len(after), users)
	}
	for id, h := range before {
		if string(after[id]) != string(h) {
			t.Fatalf("user %d: hash %q restored as %q", id, h, after[id])
		}
	}
	if err := bcrypt.CompareHashAndPassword(after[42], []byte("password-42")); err != nil {
		t.Fatalf("restored hash does not verify the original password: %v", err)
	}
	if got := tableDigest(t, rconn, "users"); got != beforeUsers {
		t.Fatalf("users: %s, want %s", got, beforeUsers)
	}
	if got := tableDigest(t, rconn, "orders"); got != beforeOrders {
		t.Fatalf("orders: %s, want %s (a row written after Create returned must not be restored)", got, beforeOrders)
	}
	// The source database still holds the attacked data: nothing was restored in place.
	if got := hashes(t, conn)[42]; string(got) != string(reset) {
		t.Fatalf("source database changed by the restore")
	}

	// Restores never overwrite.
	_, err = p.Restore(ctx, provider.RestoreRequest{SnapshotID: id, NewName: restored})
	if !errors.Is(err, provider.ErrAlreadyExists) || !strings.Contains(err.Error(), "choose another name") {
		t.Fatalf("restore onto an existing database: %v", err)
	}
	_, err = p.Restore(ctx, provider.RestoreRequest{SnapshotID: id, NewName: db})
	if !errors.Is(err, provider.ErrInvalid) || !strings.Contains(err.Error(), "never overwrite") {
		t.Fatalf("restore in place: %v", err)
	}
	_, err = p.Restore(ctx, provider.RestoreRequest{ToTime: time.Now(), NewName: "x"})
	if !errors.Is(err, provider.ErrNotSupported) {
		t.Fatalf("point in time: %v", err)
	}
}

func TestMetadataAndFiles(t *testing.T) {
	srv := pgtest.Require(t)
	ctx := context.Background()
	db := srv.CreateDatabase(t, "tda_meta")
	seed(t, srv.Connect(t, db))
	p := newProvider(t, srv, db)
	id := provider.NewID(db, provider.TriggerManual, time.Now(), "")
	if _, err := p.Create(ctx, provider.CreateRequest{ID: id, Tags: tags(provider.TriggerManual)}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(ctx, id); err != nil {
		t.Fatal(err)
	}
	dump, err := os.ReadFile(filepath.Join(p.Dir(), id+".dump"))
	if err != nil || !strings.HasPrefix(string(dump), "PGDMP") {
		t.Fatalf("dump is not in pg_dump's custom format: %v %q", err, dump[:min(len(dump), 5)])
	}
	var m map[string]any
	data, _ := os.ReadFile(filepath.Join(p.Dir(), id+".json"))
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	tagsGot := m["tags"].(map[string]any)
	for _, k := range []string{"created_at", "trigger", "app_version", "created_by"} {
		if tagsGot[k] == "" || tagsGot[k] == nil {
			t.Errorf("metadata has no tag %s: %s", k, data)
		}
	}
	if m["status"] != "available" || len(m["sha256"].(string)) != 64 || m["format"] != "custom" {
		t.Fatalf("metadata %s", data)
	}
	if err := p.Verify(ctx, id); err != nil {
		t.Fatal(err)
	}

	// Same identifier again: refused, first snapshot intact.
	if _, err := p.Create(ctx, provider.CreateRequest{ID: id, Tags: tags(provider.TriggerManual)}); !errors.Is(err, provider.ErrAlreadyExists) {
		t.Fatalf("second create with the same id: %v", err)
	}

	// A damaged dump is refused before anything is created.
	dump[len(dump)/2] ^= 0xff
	if err := os.WriteFile(filepath.Join(p.Dir(), id+".dump"), dump, 0o600); err != nil {
		t.Fatal(err)
	}
	target := db + "_x"
	srv.DropOnCleanup(t, target)
	_, err = p.Restore(ctx, provider.RestoreRequest{SnapshotID: id, NewName: target})
	if !errors.Is(err, provider.ErrCorrupt) || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("restore of a damaged dump: %v", err)
	}
	var exists bool
	if err := srv.Connect(t, "postgres").QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, target).Scan(&exists); err != nil || exists {
		t.Fatalf("a database was created for a refused restore (%v)", err)
	}

	// An interrupted dump (its writer died) lists as failed and can be deleted.
	dead := &dumpdir.Meta{ID: "tda-x-scheduled-20260101t000000z", Database: db, Status: provider.StatusCreating,
		Time: time.Now().Add(-time.Hour), Tags: tags(provider.TriggerScheduled), PID: deadPID(t)}
	if err := p.dir.Reserve(dead); err != nil {
		t.Fatal(err)
	}
	list, err := p.List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %v %+v", err, list)
	}
	if list[0].ID != id || list[1].Status != provider.StatusFailed || !strings.Contains(list[1].Detail, "interrupted") {
		t.Fatalf("list %+v", list)
	}
	for _, s := range list {
		if err := p.Delete(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
	}
	if list, _ := p.List(ctx); len(list) != 0 {
		t.Fatalf("after delete: %+v", list)
	}
	if entries, _ := os.ReadDir(p.Dir()); len(entries) != 0 {
		t.Fatalf("files left: %v", entries)
	}
}

func TestConnectionAndDumpFailures(t *testing.T) {
	srv := pgtest.Require(t)
	ctx := context.Background()
	db := srv.CreateDatabase(t, "tda_fail")

	p, err := New(Config{Host: srv.Host, Port: srv.Port, User: srv.User, Password: "wrong-password",
		Database: db, SSLMode: "disable", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	_, err = p.Create(ctx, provider.CreateRequest{ID: "tda-x-manual-20260101t000000z", Tags: tags(provider.TriggerManual)})
	if err == nil || !strings.Contains(err.Error(), "check that PostgreSQL is running") || !provider.Transient(err) {
		t.Fatalf("create with a wrong password: %v", err)
	}
	if list, _ := p.List(ctx); len(list) != 0 {
		t.Fatalf("a failed connection left a snapshot: %+v", list)
	}

	// pg_dump dies half way: the snapshot is recorded as failed with pg_dump's message and
	// its partial dump is removed.
	bin := t.TempDir()
	script := "#!/bin/sh\nprintf 'PGDMP partial' \necho 'pg_dump: error: connection to server was lost' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, "pg_dump"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	p2, err := New(Config{Host: srv.Host, Port: srv.Port, User: srv.User, Password: srv.Password,
		Database: db, SSLMode: "disable", Dir: t.TempDir(), BinDir: bin})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close(ctx)
	id := "tda-x-manual-20260101t000001z"
	if _, err := p2.Create(ctx, provider.CreateRequest{ID: id, Tags: tags(provider.TriggerManual)}); err != nil {
		t.Fatal(err)
	}
	s, err := p2.Wait(ctx, id)
	if err == nil || !strings.Contains(err.Error(), "connection to server was lost") || s.Status != provider.StatusFailed {
		t.Fatalf("wait for a failing dump: %v %+v", err, s)
	}
	if _, err := os.Stat(filepath.Join(p2.Dir(), id+".dump")); !os.IsNotExist(err) {
		t.Fatalf("partial dump left behind: %v", err)
	}
	if err := p2.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
}

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}
