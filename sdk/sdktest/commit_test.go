package sdktest_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

// committedCounter is the counter that records the commits it hears of.
type committedCounter struct {
	counter
	mu    sync.Mutex
	heard []map[string][]byte
	panic bool
}

func (c *committedCounter) Committed(_ context.Context, cps map[string][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.heard = append(c.heard, cps)
	if c.panic {
		c.panic = false
		panic("committed exploded")
	}
}

func (c *committedCounter) last() map[string][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.heard) == 0 {
		return nil
	}
	return c.heard[len(c.heard)-1]
}

// A CommitWatcher hears the checkpoints the host commits, over the protocol and in-process;
// a panic in Committed loses that notification only, and the stream goes on.
func TestCommitWatcherHearsCommits(t *testing.T) {
	for _, mode := range []sdktest.Mode{sdktest.GRPC, sdktest.Direct} {
		t.Run(map[sdktest.Mode]string{sdktest.GRPC: "grpc", sdktest.Direct: "direct"}[mode], func(t *testing.T) {
			c := &committedCounter{counter: counter{count: 30}, panic: mode == sdktest.GRPC}
			comp := sdk.SourceComponent("counter", counterSpec, func(*sdk.Config, sdk.Resources) (sdk.Source, error) { return c, nil })
			src := sdktest.NewSource(t, comp, `count = 30`, sdktest.WithMode(mode))
			src.Start(nil)
			if got := src.Collect(10, 5*time.Second); len(got) != 10 {
				t.Fatalf("read %d events", len(got))
			}
			src.Commit()
			if mode == sdktest.GRPC {
				// The first notification made Committed panic: the next one still arrives.
				src.Commit()
			}
			waitHeard(t, c, "10")
			if got := src.Collect(20, 5*time.Second); len(got) != 20 {
				t.Fatalf("read %d more events after the commit", len(got))
			}
			src.Commit()
			waitHeard(t, c, "30")
		})
	}
}

func waitHeard(t *testing.T, c *committedCounter, next string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for string(c.last()["next"]) != next {
		if time.Now().After(deadline) {
			t.Fatalf("the source heard %q committed, want %q", c.last()["next"], next)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
