package dumpdir

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/plugins/snapshot/provider"
)

func newDir(t *testing.T) *Dir {
	t.Helper()
	return &Dir{Path: filepath.Join(t.TempDir(), "dumps"), Ext: ".dump", Log: hclog.NewNullLogger(),
		PollInterval: 5 * time.Millisecond, FailedAdvice: "the server's log"}
}

// A dump goes creating -> available; its writer's lock tells a live writer from a dead one;
// the checksum catches a changed dump; Delete refuses a dump being written.
func TestLifecycle(t *testing.T) {
	d := newDir(t)
	ctx := context.Background()
	id := "tda-app-manual-20261205t230000z"
	m := &Meta{ID: id, Database: "app", Status: provider.StatusCreating, Time: time.Now().UTC(), PID: os.Getpid()}
	lock, err := d.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Reserve(m); err != nil {
		t.Fatal(err)
	}
	if err := d.Reserve(m); err == nil {
		t.Fatal("an id reserved twice")
	}
	if s, _ := d.Get(ctx, id); s.Status != provider.StatusCreating {
		t.Fatalf("while written: %+v", s)
	}
	if err := d.Delete(ctx, id); !errors.Is(err, provider.ErrBusy) {
		t.Fatalf("delete while written: %v", err)
	}
	content := []byte("dump bytes")
	if err := os.WriteFile(d.DumpPath(id), content, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	d.Complete(m, int64(len(content)), sum[:], time.Millisecond)
	d.Unlock(lock)
	s, err := d.Wait(ctx, id, nil)
	if err != nil || s.Status != provider.StatusAvailable || s.SizeBytes != int64(len(content)) {
		t.Fatalf("wait: %+v %v", s, err)
	}
	if err := d.Verify(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.DumpPath(id), []byte("changed!!!"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Verify(ctx, id); err == nil || !strings.Contains(err.Error(), "were recorded") {
		t.Fatalf("a changed dump verified: %v", err)
	}
	if err := d.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Get(ctx, id); !errors.Is(err, provider.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

// A dump left creating by a writer that died (no lock held) reads as failed, and Wait says
// what to check.
func TestDeadWriterIsFailed(t *testing.T) {
	d := newDir(t)
	id := "tda-app-scheduled-20260101t000000z"
	if err := d.Reserve(&Meta{ID: id, Database: "app", Status: provider.StatusCreating, PID: 999999}); err != nil {
		t.Fatal(err)
	}
	s, err := d.Wait(context.Background(), id, nil)
	if s.Status != provider.StatusFailed || !strings.Contains(s.Detail, "pid 999999") ||
		err == nil || !strings.Contains(err.Error(), "the server's log") {
		t.Fatalf("%+v %v", s, err)
	}
}

// Wait gives up when its context ends, whether it waits for this process's writer or polls.
func TestWaitCancelled(t *testing.T) {
	d := newDir(t)
	id := "tda-app-manual-20261205t230001z"
	lock, err := d.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Unlock(lock)
	if err := d.Reserve(&Meta{ID: id, Database: "app", Status: provider.StatusCreating}); err != nil {
		t.Fatal(err)
	}
	for _, done := range []chan struct{}{make(chan struct{}), nil} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := d.Wait(ctx, id, done)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("done %v: %v", done != nil, err)
		}
	}
}

// Ids that could name a file outside the directory are refused before any path is built;
// files that are no snapshot's metadata are skipped by List, never fail it.
func TestIdsAndStrayFiles(t *testing.T) {
	d := newDir(t)
	for _, id := range []string{"../x", "a/b", "", ".hidden", "x y"} {
		if _, err := d.ReadMeta(id); !errors.Is(err, provider.ErrInvalid) {
			t.Errorf("ReadMeta(%q): %v", id, err)
		}
	}
	if err := os.MkdirAll(d.Path, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"not-json.json": "{", "9starts-with-digit.json": "{}",
		".tda-x.lock": "", "notes.txt": "x", "tda-ok-manual-20261205t230002z.json": `{"status":"available"}`} {
		if err := os.WriteFile(filepath.Join(d.Path, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	list, err := d.List(context.Background())
	if err != nil || len(list) != 1 || list[0].ID != "tda-ok-manual-20261205t230002z" {
		t.Fatalf("%+v %v", list, err)
	}
	if l, err := (&Dir{Path: filepath.Join(d.Path, "missing"), Log: hclog.NewNullLogger()}).List(context.Background()); err != nil || l != nil {
		t.Fatalf("a missing directory: %v %v", l, err)
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	tb := &TailBuffer{Max: 8}
	for _, s := range []string{"0123", "456789", "ab"} {
		_, _ = tb.Write([]byte(s))
	}
	if got := tb.String(); got != "456789ab" {
		t.Fatalf("%q", got)
	}
}

// Begin hands the caller the lock and the dump file of a new snapshot; a second writer of the
// same id, or an id that exists, is refused as already existing with nothing held; a dump
// file that cannot be created leaves the snapshot recorded as failed.
func TestBegin(t *testing.T) {
	d := newDir(t)
	id := "tda-app-manual-20261206t000000z"
	newMeta := func() *Meta {
		return &Meta{ID: id, Database: "app", Status: provider.StatusCreating, Time: time.Now().UTC(), PID: os.Getpid()}
	}
	lock, out, err := d.Begin("create snapshot", newMeta())
	if err != nil {
		t.Fatal(err)
	}
	if out.Name() != d.DumpPath(id) {
		t.Fatalf("dump file %s, want %s", out.Name(), d.DumpPath(id))
	}
	if _, _, err := d.Begin("create snapshot", newMeta()); !errors.Is(err, provider.ErrAlreadyExists) {
		t.Fatalf("a second writer of the same id: %v, want already exists", err)
	}
	out.Close()
	d.Unlock(lock)
	if _, _, err := d.Begin("create snapshot", newMeta()); !errors.Is(err, provider.ErrAlreadyExists) {
		t.Fatalf("an id that exists: %v, want already exists", err)
	}
	if _, err := os.Stat(d.LockPath(id)); !os.IsNotExist(err) {
		t.Fatalf("a refused Begin left its lock: %v", err)
	}

	// The dump path is taken by a directory: the file cannot be created.
	other := "tda-app-manual-20261206t000001z"
	if err := os.Mkdir(d.DumpPath(other), 0o700); err != nil {
		t.Fatal(err)
	}
	m := newMeta()
	m.ID = other
	if _, _, err := d.Begin("create snapshot", m); err == nil {
		t.Fatal("Begin succeeded although the dump file cannot be created")
	}
	got, err := d.ReadMeta(other)
	if err != nil || got.Status != provider.StatusFailed {
		t.Fatalf("after a failed Begin the snapshot is %+v (%v), want failed", got, err)
	}
	if _, err := os.Stat(d.LockPath(other)); !os.IsNotExist(err) {
		t.Fatalf("a failed Begin left its lock: %v", err)
	}
}
