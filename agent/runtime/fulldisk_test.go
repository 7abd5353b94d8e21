package runtime_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/agent/runtime"
	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/sdk"
)

// tinyDisk mounts a tmpfs of size bytes on a new directory, or skips the test where it
// cannot (not root, no mount) unless TDA_REQUIRE_INTEGRATION=1.
func tinyDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := "cannot mount a tmpfs for a full disk (needs root): " + strings.TrimSpace(string(out))
		if os.Getenv("TDA_REQUIRE_INTEGRATION") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fill writes a file until the disk is full and returns its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := bytes.Repeat([]byte("x"), 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return path
			}
			t.Fatal(err)
		}
	}
}

// hoarder keeps every line it saw: its snapshot grows with its input, so each checkpoint
// needs new room in the store.
type hoarder struct {
	mu    sync.Mutex
	lines [][]byte
}

func (h *hoarder) Process(_ context.Context, events []sdk.Event, _ sdk.Watermark) ([]sdk.Event, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range events {
		h.lines = append(h.lines, append([]byte(nil), e.Line...))
	}
	return events, nil
}

func (h *hoarder) Snapshot() ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return bytes.Join(h.lines, []byte("\n")), nil
}

func (h *hoarder) Restore(b []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = bytes.Split(b, []byte("\n"))
	return nil
}

// The state store's disk fills up for real: commits fail with ENOSPC, the state says what to
// do, reading goes on, the checkpoint does not move; once space is freed, everything is
// committed and the state is normal again.
func TestFullDiskDegradesTheStateThenRecovers(t *testing.T) {
	disk := tinyDisk(t, "4m")
	out := &collector{}
	src := `
agent {
  data_dir            = "DATADIR"
  checkpoint_interval = "10ms"
}
source "gen" "numbers" {
  count = 20000
  batch = 100
  every = "2ms"
}
processor "hoard" "h" {}
sink "collect" "out" {}
pipeline "main" {
  from    = [source.gen.numbers]
  through = [processor.hoard.h]
  to      = [sink.collect.out]
}
`
	comps := map[string]sdk.Component{"source.gen": genComponent(), "sink.collect": collectorComponent("collect", out),
		"processor.hoard": sdk.ProcessorComponent("hoard", &sdk.Spec{}, func(*sdk.Config, sdk.Resources) (sdk.Processor, error) {
			return &hoarder{}, nil
		})}
	h := newHarness(t, src, comps)
	h.dir = filepath.Join(disk, "data")
	cfg := h.config()
	store, err := state.Open(cfg.Agent.DataDir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := runtime.New(runtime.Options{Config: cfg, Launcher: &runtime.InProcessLauncher{Components: comps}, Store: store,
		Live: true, Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Error, Output: testWriter{t}})})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a first commit", 10*time.Second, func() bool { return committedNext(t, store, "source.gen.numbers") > 0 })
	filler := fill(t, disk)
	var reason string
	waitFor(t, "the state to say the disk is full", 20*time.Second, func() bool {
		c := healthOf(rt, runtime.StoreAddress)
		reason = c.Reason
		return c.Address != "" && !c.Healthy
	})
	if !strings.Contains(reason, "no space left on device") || !strings.Contains(reason, "free space") {
		t.Fatalf("reason %q does not say the disk is full and what to do", reason)
	}
	t.Logf("state: %s: %s", runtime.StoreAddress, reason)
	frozen := committedNext(t, store, "source.gen.numbers")
	waitFor(t, "lines flowing on", 10*time.Second, func() bool { return len(out.lines(sdk.KindLog)) >= frozen+1000 })
	if got := committedNext(t, store, "source.gen.numbers"); got != frozen {
		t.Fatalf("the checkpoint moved from %d to %d on a full disk", frozen, got)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "everything committed once space is freed", 20*time.Second, func() bool {
		return committedNext(t, store, "source.gen.numbers") == 20000
	})
	waitFor(t, "the state back to normal", 10*time.Second, func() bool { return healthOf(rt, runtime.StoreAddress).Healthy })
	stop(t, rt, store)
	if got := len(out.lines(sdk.KindLog)); got != 20000 {
		t.Fatalf("%d lines delivered, want 20000", got)
	}
}
