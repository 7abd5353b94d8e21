package sdktest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

// keeper holds on to the previous batch's events and checks them on the next call: a
// processor that does not declare BorrowsInput may keep its input.
type keeper struct{ prev []sdk.Event }

func (k *keeper) Process(_ context.Context, events []sdk.Event, _ sdk.Watermark) ([]sdk.Event, error) {
	for i, e := range k.prev {
		if want := fmt.Sprintf("batch %d line %d", batchOf(k.prev), i); string(e.Line) != want {
			return nil, fmt.Errorf("a kept line changed to %q, want %q", e.Line, want)
		}
	}
	k.prev = events
	return nil, nil
}

func batchOf(events []sdk.Event) int {
	var b int
	fmt.Sscanf(string(events[0].Line), "batch %d", &b)
	return b
}

// echo returns its input with a field set, and keeps nothing.
type echo struct{}

func (echo) Process(_ context.Context, events []sdk.Event, _ sdk.Watermark) ([]sdk.Event, error) {
	for i := range events {
		events[i].SetField("seen", "yes")
	}
	return events, nil
}

func batch(n, size int) []sdk.Event {
	out := make([]sdk.Event, size)
	for i := range out {
		out[i] = sdk.Event{Kind: sdk.KindLog, Line: []byte(fmt.Sprintf("batch %d line %d", n, i))}
	}
	return out
}

func TestProcessorInputMemory(t *testing.T) {
	keep := sdk.ProcessorComponent("keeper", nil, func(*sdk.Config, sdk.Resources) (sdk.Processor, error) {
		return &keeper{}, nil
	})
	p := sdktest.NewProcessor(t, keep, ``)
	for n := 0; n < 5; n++ {
		p.Process(batch(n, 200-n*10))
	}

	borrower := sdk.ProcessorComponent("echo", nil, func(*sdk.Config, sdk.Resources) (sdk.Processor, error) {
		return echo{}, nil
	}).WithBorrowedInput()
	e := sdktest.NewProcessor(t, borrower, ``)
	// Batches shrink and grow: every output is this batch's input, nothing of the previous
	// one shows through the reused memory.
	for n, size := range []int{300, 20, 500, 1, 300} {
		out := e.Process(batch(n, size))
		if len(out) != size {
			t.Fatalf("batch %d: %d events out, want %d", n, len(out), size)
		}
		for i, ev := range out {
			if want := fmt.Sprintf("batch %d line %d", n, i); string(ev.Line) != want || ev.Field("seen") != "yes" || len(ev.Fields) != 1 {
				t.Fatalf("batch %d event %d: %q %v", n, i, ev.Line, ev.Fields)
			}
		}
	}
}
