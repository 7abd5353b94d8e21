package file_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"github.com/tda-dev/tda/plugins/file"
	"github.com/tda-dev/tda/sdk/host"
	"github.com/tda-dev/tda/sdk/sdktest"
)

// Inside the agent the source reads into the memory of batches the agent handed back
// (sdk.Recycler) instead of allocating new memory for every batch, and a batch still held
// is never overwritten.
func TestReadsIntoHandedBackMemory(t *testing.T) {
	for _, release := range []bool{true, false} {
		t.Run(fmt.Sprintf("released=%v", release), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.log")
			const n = 200000
			appendFile(t, path, numbered("line", 0, n))
			src := host.DirectSource(file.Component(), nil)
			conf := sdktest.Config(t, file.Component(), config([]string{path}, "follow = false"))
			if _, err := src.Configure(context.Background(), host.Configuration{Instance: "source.file.x", Config: conf,
				DataDir: t.TempDir()}); err != nil {
				t.Fatal(err)
			}
			r, err := src.Read(context.Background(), nil, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Stop()
			seen := map[uintptr]bool{}
			var held []*host.Batch
			reused, next := 0, 0
			deadline := time.Now().Add(20 * time.Second)
			for next < n && time.Now().Before(deadline) {
				m, err := r.Recv()
				if err != nil {
					t.Fatalf("after %d lines: %v", next, err)
				}
				_ = r.Grant(1)
				if m.Batch == nil || m.Batch.Len() == 0 {
					continue
				}
				if !m.Batch.Recycled() {
					t.Fatal("a batch of the source inside the agent is not recycled")
				}
				events := m.Batch.Events()
				p := uintptr(unsafe.Pointer(unsafe.SliceData(events[0].Line)))
				if seen[p] {
					reused++
				}
				seen[p] = true
				for i := range events {
					if want := fmt.Sprintf("line %06d", next); string(events[i].Line) != want {
						t.Fatalf("line %d reads %q", next, events[i].Line)
					}
					next++
				}
				if release {
					m.Batch.Release()
				} else {
					held = append(held, m.Batch)
				}
			}
			if next != n {
				t.Fatalf("read %d of %d lines", next, n)
			}
			// Every held batch still reads what it read.
			line := 0
			for _, b := range held {
				for _, e := range b.Events() {
					if want := fmt.Sprintf("line %06d", line); string(e.Line) != want {
						t.Fatalf("held line %d now reads %q", line, e.Line)
					}
					line++
				}
			}
			switch {
			case release && reused == 0:
				t.Fatal("no batch reused the memory of a batch handed back")
			case !release && reused > 0:
				t.Fatalf("%d batches reused memory still held", reused)
			}
		})
	}
}
