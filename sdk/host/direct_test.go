package host_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
)

// stuckProcessor blocks in Process until release is closed, ignoring its context, and
// records its Close.
type stuckProcessor struct {
	entered chan struct{}
	release chan struct{}
	closed  atomic.Bool
}

func (p *stuckProcessor) Process(_ context.Context, events []sdk.Event, _ sdk.Watermark) ([]sdk.Event, error) {
	close(p.entered)
	<-p.release
	return events, nil
}

func (p *stuckProcessor) Close(context.Context) error {
	p.closed.Store(true)
	return nil
}

// A processor inside the host that ignores its context does not hold the host past the
// call's deadline; the host's Kill closes the instance once the stuck call returns, not
// before (the call still uses it).
func TestDirectCallPastItsDeadlineIsAbandoned(t *testing.T) {
	p := &stuckProcessor{entered: make(chan struct{}), release: make(chan struct{})}
	comp := sdk.ProcessorComponent("stuck", nil, func(*sdk.Config, sdk.Resources) (sdk.Processor, error) { return p, nil })
	proc := host.DirectProcessor(comp, nil)
	if _, err := proc.Configure(context.Background(), host.Configuration{Instance: "processor.stuck.x"}); err != nil {
		t.Fatal(err)
	}
	in := host.NewRecycledBatch([]sdk.Event{{Line: []byte("x")}}, nil, func() { t.Error("an abandoned call's input was handed back") })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := proc.Process(ctx, in, sdk.Watermark{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Process = %v, want the deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Process returned after %s", d)
	}
	<-p.entered
	if !in.Recycled() {
		// Keep has been called: fine, and required.
	} else {
		t.Fatal("the input of an abandoned call may still be handed back to its source")
	}
	in.Release() // the pipeline's release must not hand it back
	proc.(host.Killer).Kill()
	if p.closed.Load() {
		t.Fatal("the instance was closed while its call still ran")
	}
	close(p.release)
	deadline := time.Now().Add(5 * time.Second)
	for !p.closed.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the killed instance was not closed once its call returned")
		}
		time.Sleep(time.Millisecond)
	}
}

// A panic in a source's Run ends the reader with a panic error; the host lives on.
func TestDirectSourcePanicEndsTheReader(t *testing.T) {
	comp := sdk.SourceComponent("boom", nil, func(*sdk.Config, sdk.Resources) (sdk.Source, error) {
		return sourceFunc(func(context.Context, sdk.Output) error { panic("bad line") }), nil
	})
	src := host.DirectSource(comp, nil)
	if _, err := src.Configure(context.Background(), host.Configuration{Instance: "source.boom.x"}); err != nil {
		t.Fatal(err)
	}
	r, err := src.Read(context.Background(), nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Recv()
	if !sdk.IsPanic(err) || !strings.Contains(err.Error(), "bad line") {
		t.Fatalf("Recv = %v, want the recovered panic", err)
	}
}

type sourceFunc func(context.Context, sdk.Output) error

func (f sourceFunc) Run(ctx context.Context, out sdk.Output) error { return f(ctx, out) }

// A source inside the host emits through sdk.Recycler; its batch's memory goes back once
// every holder released it, and never when a holder keeps it.
func TestDirectSourceBatchesAreHandedBack(t *testing.T) {
	returned := make(chan []byte, 8)
	comp := sdk.SourceComponent("arena", nil, func(*sdk.Config, sdk.Resources) (sdk.Source, error) {
		return sourceFunc(func(ctx context.Context, out sdk.Output) error {
			rec, ok := sdk.Recycles(out)
			if !ok {
				return errors.New("the host's output does not recycle")
			}
			for i := 0; i < 2; i++ {
				arena := []byte("line-a\nline-b\n")
				events := []sdk.Event{{Line: arena[0:6]}, {Line: arena[7:13]}}
				if err := rec.EmitRecycled(ctx, events, arena, func() { returned <- arena }); err != nil {
					return err
				}
			}
			<-ctx.Done()
			return nil
		}), nil
	})
	src := host.DirectSource(comp, nil)
	if _, err := src.Configure(context.Background(), host.Configuration{Instance: "source.arena.x"}); err != nil {
		t.Fatal(err)
	}
	r, err := src.Read(context.Background(), nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	first, err := r.Recv()
	if err != nil || first.Batch == nil || !first.Batch.Recycled() {
		t.Fatalf("first message %+v, %v: want a recycled batch", first, err)
	}
	second, err := r.Recv()
	if err != nil || second.Batch == nil {
		t.Fatal(second, err)
	}
	// Two holders: handed back after the second release only.
	first.Batch.Retain()
	first.Batch.Release()
	select {
	case <-returned:
		t.Fatal("handed back while a holder keeps it")
	default:
	}
	first.Batch.Release()
	select {
	case a := <-returned:
		if string(a) != "line-a\nline-b\n" {
			t.Fatalf("handed back %q", a)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not handed back after its last release")
	}
	// Kept: never handed back, and its events stay readable.
	second.Batch.Unpooled()
	second.Batch.Release()
	select {
	case <-returned:
		t.Fatal("a kept batch was handed back")
	case <-time.After(20 * time.Millisecond):
	}
	if got := string(second.Batch.Events()[1].Line); got != "line-b" {
		t.Fatalf("kept batch reads %q", got)
	}
}

// A processor that passes its input on makes the output lie in the input's memory: the
// input is then kept, so the source does not overwrite lines a sink still holds.
func TestDirectProcessorKeepsAnInputItsOutputSharesMemoryWith(t *testing.T) {
	tests := []struct {
		name string
		proc func(events []sdk.Event) []sdk.Event
		kept bool
	}{
		{"same slice", func(ev []sdk.Event) []sdk.Event { return ev }, true},
		{"copied events, same lines", func(ev []sdk.Event) []sdk.Event { return append([]sdk.Event(nil), ev...) }, true},
		{"new events", func(ev []sdk.Event) []sdk.Event {
			return []sdk.Event{{Kind: sdk.KindAlert, Line: bytes.Clone(ev[0].Line)}}
		}, false},
		{"nothing", func([]sdk.Event) []sdk.Event { return nil }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			comp := sdk.ProcessorComponent("p", nil, func(*sdk.Config, sdk.Resources) (sdk.Processor, error) {
				return processorFunc(tc.proc), nil
			})
			proc := host.DirectProcessor(comp, nil)
			if _, err := proc.Configure(context.Background(), host.Configuration{Instance: "processor.p.x"}); err != nil {
				t.Fatal(err)
			}
			arena := []byte("one\ntwo\n")
			var handedBack atomic.Bool
			in := host.NewRecycledBatch([]sdk.Event{{Line: arena[:3]}, {Line: arena[4:7]}}, arena, func() { handedBack.Store(true) })
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := proc.Process(ctx, in, sdk.Watermark{}); err != nil {
				t.Fatal(err)
			}
			in.Release()
			if handedBack.Load() == tc.kept {
				t.Fatalf("handed back = %v, want %v", handedBack.Load(), !tc.kept)
			}
		})
	}
}

type processorFunc func([]sdk.Event) []sdk.Event

func (f processorFunc) Process(_ context.Context, events []sdk.Event, _ sdk.Watermark) ([]sdk.Event, error) {
	return f(events), nil
}

// An instance inside the host prints to the standard output and reads the environment the
// host gives it, as a plugin process would.
func TestDirectInstanceGetsItsOutputAndEnvironment(t *testing.T) {
	var got sdk.Resources
	var mu sync.Mutex
	comp := sdk.SinkComponent("env", nil, func(_ *sdk.Config, res sdk.Resources) (sdk.Sink, error) {
		mu.Lock()
		got = res
		mu.Unlock()
		return sinkFunc(func(sdk.Batch) error { return nil }), nil
	})
	var out bytes.Buffer
	sink := host.DirectSinkWith(comp, nil, host.DirectEnv{Stdout: &out, Getenv: func(k string) string {
		if k == sdk.StdoutTerminalEnv {
			return "1"
		}
		return ""
	}})
	if _, err := sink.Configure(context.Background(), host.Configuration{Instance: "sink.env.x"}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !got.StdoutIsTerminal() {
		t.Fatal("the environment given was not read")
	}
	_, _ = io.WriteString(got.Output(), "hello")
	if out.String() != "hello" {
		t.Fatalf("printed %q to the host's writer", out.String())
	}
}

type sinkFunc func(sdk.Batch) error

func (f sinkFunc) Write(_ context.Context, b sdk.Batch) error { return f(b) }
