package mysql

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/snapshot/provider"
)

// TestIDsCannotLeaveTheDumpDirectory: a snapshot id that names a file outside the dump
// directory is refused by every operation before any file is opened, and nothing there is
// read or deleted (inotify is the witness).
func TestIDsCannotLeaveTheDumpDirectory(t *testing.T) {
	root := t.TempDir()
	dumps := filepath.Join(root, "a", "b", "c", "d")
	outside := filepath.Join(root, "x")
	for _, d := range []string{dumps, outside} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	meta := `{"id":"e","database":"orders","status":"available","time":"2026-11-29T22:57:05Z"}`
	for name, data := range map[string]string{"e.json": meta, "e.sql": "DROP TABLE users;"} {
		if err := os.WriteFile(filepath.Join(outside, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p, err := New(Config{Database: "orders", Dir: dumps, PollInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		t.Skipf("inotify: %v", err)
	}
	defer syscall.Close(fd)
	if _, err := syscall.InotifyAddWatch(fd, outside, syscall.IN_OPEN|syscall.IN_ACCESS|syscall.IN_DELETE); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, id := range []string{"../../../../x/e", "tda-x/../../../../../x/e", outside + "/e", "tda.x"} {
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
	if n, _ := syscall.Read(fd, make([]byte, 4096)); n > 0 {
		t.Fatalf("files outside the dump directory were opened or deleted (%d bytes of inotify events)", n)
	}
}
