package control

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tda-dev/tda/agent/api"
	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/agent/state"
)

// TestRestoreRefusesIDsOutsideTheDumpDirectory: POST /api/restores with a snapshot id that
// climbs out of the dump directory is answered 400 before anything starts (never 202), no
// restore is recorded, and no file outside the dump directory is opened, even after the
// service's background work has ended.
func TestRestoreRefusesIDsOutsideTheDumpDirectory(t *testing.T) {
	root := t.TempDir()
	dumps := filepath.Join(root, "a", "b", "c", "d")
	cfg, _ := loadWithPlugins(t, `
agent { data_dir = "DATA" }
sink "snapshot" "guard" {
  postgres {
    database = "orders"
    dir      = "`+dumps+`"
  }
}
`)
	outside := filepath.Join(root, "x")
	if err := os.MkdirAll(outside, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dumps, 0o700); err != nil {
		t.Fatal(err)
	}
	dump := []byte("PGDMP attacker's dump")
	sum := sha256.Sum256(dump)
	meta := `{"database":"orders","status":"available","time":"2026-11-29T22:57:05Z","size_bytes":` +
		strconv.Itoa(len(dump)) + `,"sha256":"` + hex.EncodeToString(sum[:]) + `"}`
	for name, data := range map[string][]byte{"e.json": []byte(meta), "e.dump": dump} {
		if err := os.WriteFile(filepath.Join(outside, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	setup, diags := Prepare(cfg, nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	defer setup.Close(context.Background())
	store, err := state.Open(cfg.Agent.DataDir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc, err := NewService(setup, store, noPipelines{}, nil, "token", nil)
	if err != nil {
		t.Fatal(err)
	}
	const token = "operator-0123456789abcdef"
	srv := httptest.NewServer(api.New(api.Options{Ops: svc,
		Tokens: []api.Token{{Name: "alice", Role: api.RoleOperator, Secret: token}}}).Handler())
	defer srv.Close()

	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		t.Skipf("inotify: %v", err)
	}
	defer syscall.Close(fd)
	if _, err := syscall.InotifyAddWatch(fd, outside, syscall.IN_OPEN|syscall.IN_ACCESS|syscall.IN_DELETE); err != nil {
		t.Fatal(err)
	}

	for _, id := range []string{"../../../../x/e", "tda/../../../../../x/e", outside + "/e"} {
		body := `{"snapshot":` + strconv.Quote(id) + `,"new_name":"drill","confirm":"orders","reason":"drill"}`
		req, _ := http.NewRequest("POST", srv.URL+"/api/restores", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "snapshot id") {
			t.Errorf("restore of %q: %d %s, want 400 naming the snapshot id", id, resp.StatusCode, b)
		}
	}
	// Close waits for every restore the service started in the background.
	if err := svc.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if list, err := svc.Restores(context.Background()); err != nil || len(list) != 0 {
		t.Fatalf("restores recorded: %+v %v", list, err)
	}
	buf := make([]byte, 4096)
	if n, _ := syscall.Read(fd, buf); n > 0 {
		t.Fatalf("files outside the dump directory were opened (%d bytes of inotify events)", n)
	}
	entries, err := svc.Audit(context.Background(), ops.AuditFilter{Action: ops.ActionRestoreStart})
	if err != nil || len(entries) != 3 || entries[0].Outcome != "refused" {
		t.Fatalf("audit: %+v %v", entries, err)
	}
}
