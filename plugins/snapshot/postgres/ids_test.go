package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/snapshot/provider"
)

// watchOpens reports every open of a file in dir from now on (inotify IN_OPEN): the test's
// witness that nothing outside the dump directory was read.
func watchOpens(t *testing.T, dir string) func() int {
	t.Helper()
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		t.Skipf("inotify: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_OPEN|syscall.IN_ACCESS|syscall.IN_DELETE); err != nil {
		t.Fatal(err)
	}
	// The count is the bytes of pending events: zero means nothing was touched.
	return func() int {
		buf := make([]byte, 64<<10)
		n, err := syscall.Read(fd, buf)
		if err != nil || n <= 0 {
			return 0
		}
		return n
	}
}

// plantAttackerSnapshot writes a dump and metadata whose checksum matches, outside the dump
// directory, as an attacker with write access somewhere else on the host would.
func plantAttackerSnapshot(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	dump := []byte("PGDMP attacker's dump")
	sum := sha256.Sum256(dump)
	meta := `{"id":"e","database":"orders","status":"available","time":"2026-11-29T22:57:05Z","tags":{"created_by":"tda","trigger":"manual"},` +
		`"size_bytes":` + strconv.Itoa(len(dump)) + `,"sha256":"` + hex.EncodeToString(sum[:]) + `"}`
	for name, data := range map[string][]byte{"e.json": []byte(meta), "e.dump": dump} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestIDsCannotLeaveTheDumpDirectory: a snapshot id that names a file outside the dump
// directory is refused by every operation before any file is opened, and nothing there is
// read or deleted.
func TestIDsCannotLeaveTheDumpDirectory(t *testing.T) {
	root := t.TempDir()
	dumps := filepath.Join(root, "a", "b", "c", "d")
	outside := filepath.Join(root, "x")
	plantAttackerSnapshot(t, outside)
	if err := os.MkdirAll(dumps, 0o700); err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{Database: "orders", Dir: dumps, PollInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	opened := watchOpens(t, outside)
	ctx := context.Background()
	for _, id := range []string{"../../../../x/e", "tda-x/../../../../../x/e", root + "/x/e", "..", "tda.x"} {
		calls := map[string]error{}
		_, calls["Get"] = p.Get(ctx, id)
		calls["Verify"] = p.Verify(ctx, id)
		calls["Delete"] = p.Delete(ctx, id)
		_, calls["Wait"] = p.Wait(ctx, id)
		_, calls["Restore"] = p.Restore(ctx, provider.RestoreRequest{SnapshotID: id, NewName: "drill"})
		for op, err := range calls {
			if !errors.Is(err, provider.ErrInvalid) {
				t.Errorf("%s(%q) = %v, want an invalid-id error", op, id, err)
			}
		}
	}
	if n := opened(); n != 0 {
		t.Fatalf("files outside the dump directory were opened or deleted (%d bytes of inotify events)", n)
	}
	for _, name := range []string{"e.json", "e.dump"} {
		if _, err := os.Stat(filepath.Join(outside, name)); err != nil {
			t.Fatalf("the file outside the dump directory is gone: %v", err)
		}
	}
}

// TestListSkipsFilesNamedLikeNoSnapshot: a metadata file whose name is no valid id (dropped
// into the directory by hand) is skipped, never listed as a snapshot an operator could pick.
func TestListSkipsFilesNamedLikeNoSnapshot(t *testing.T) {
	dir := t.TempDir()
	good := `{"id":"x","database":"orders","status":"available","time":"2026-11-29T22:57:05Z"}`
	for _, name := range []string{"tda-orders-manual-20261129t225705z.json", "bad name.json", "1-starts-with-digit.json"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(good), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p, err := New(Config{Database: "orders", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	list, err := p.List(context.Background())
	if err != nil || len(list) != 1 || list[0].ID != "tda-orders-manual-20261129t225705z" {
		t.Fatalf("list = %+v, %v", list, err)
	}
}
