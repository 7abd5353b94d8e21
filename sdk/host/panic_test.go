package host_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
)

// panicky panics on every batch whose first line is "boom", and accepts the others.
type panicky struct{ written atomic.Int32 }

func (p *panicky) Write(_ context.Context, b sdk.Batch) error {
	if len(b.Events) > 0 && string(b.Events[0].Line) == "boom" {
		panic("index out of range [3] with length 3")
	}
	if len(b.Events) > 0 && string(b.Events[0].Line) == "refuse" {
		return sdk.Permanent(errors.New("webhook revoked (404 no_service)"))
	}
	p.written.Add(1)
	return nil
}

func (p *panicky) Process(_ context.Context, events []sdk.Event, _ sdk.Watermark) ([]sdk.Event, error) {
	if len(events) > 0 && string(events[0].Line) == "boom" {
		panic("nil map")
	}
	return events, nil
}

func panickyComponents(p *panicky) []sdk.Component {
	return []sdk.Component{
		sdk.SinkComponent("panicky", nil, func(*sdk.Config, sdk.Resources) (sdk.Sink, error) { return p, nil }),
		sdk.ProcessorComponent("panicky", nil, func(*sdk.Config, sdk.Resources) (sdk.Processor, error) { return p, nil }),
	}
}

func grpcConn(t *testing.T, comps ...sdk.Component) *host.Conn {
	t.Helper()
	ps := sdk.PluginSets(sdk.PluginInfo{Name: "panicky", Version: "0"}, nil, comps...)[sdk.ProtocolVersion]
	client, _ := plugin.TestPluginGRPCConn(t, false, ps)
	t.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(sdk.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	return host.NewConn(raw.(*grpc.ClientConn))
}

// A recovered panic reaches the host as a failed call marked as a panic, never as a transport
// error (which the agent takes for a dead plugin), and the plugin serves the next call.
func TestRecoveredPanicIsAFailedCallNotACrash(t *testing.T) {
	ctx := context.Background()
	p := &panicky{}
	comps := panickyComponents(p)
	batch := func(line string) *host.Batch { return host.NewBatch([]sdk.Event{{Line: []byte(line)}}) }
	sinks := map[string]host.Sink{"grpc": grpcConn(t, comps...).Sink(), "direct": host.DirectSink(comps[0], nil)}
	for name, sink := range sinks {
		t.Run(name, func(t *testing.T) {
			if _, err := sink.Configure(ctx, host.Configuration{Component: "panicky", Instance: "sink.panicky.x"}); err != nil {
				t.Fatal(err)
			}
			before := p.written.Load()
			tests := []struct {
				line      string
				panic     bool
				permanent bool
				ok        bool
			}{
				{line: "boom", panic: true},
				{line: "fine", ok: true},
				{line: "refuse", permanent: true},
				{line: "boom", panic: true},
				{line: "fine", ok: true},
			}
			for i, tc := range tests {
				err := sink.Write(ctx, uint64(i+1), batch(tc.line))
				if (err == nil) != tc.ok {
					t.Fatalf("write %d (%s): err = %v", i, tc.line, err)
				}
				if got := sdk.IsPanic(err); got != tc.panic {
					t.Fatalf("write %d (%s): IsPanic = %v (%v)", i, tc.line, got, err)
				}
				if got := sdk.IsPermanent(err); got != tc.permanent {
					t.Fatalf("write %d (%s): IsPermanent = %v (%v)", i, tc.line, got, err)
				}
				var te *host.TransportError
				if errors.As(err, &te) {
					t.Fatalf("write %d (%s): a transport error: %v", i, tc.line, err)
				}
			}
			if got := p.written.Load() - before; got != 2 {
				t.Fatalf("%d batches written after the panics, want 2", got)
			}
		})
	}
	proc := grpcConn(t, comps...).Processor()
	if _, err := proc.Configure(ctx, host.Configuration{Component: "panicky", Instance: "processor.panicky.x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := proc.Process(ctx, batch("boom"), sdk.Watermark{}); !sdk.IsPanic(err) {
		t.Fatalf("process: IsPanic false for %v", err)
	}
	if out, err := proc.Process(ctx, batch("fine"), sdk.Watermark{}); err != nil || out.Len() != 1 {
		t.Fatalf("process after a panic: %v", err)
	}
}

func TestIsPanicOnOtherErrors(t *testing.T) {
	for _, err := range []error{nil, errors.New("x"), sdk.Permanent(errors.New("x")), &host.TransportError{Err: errors.New("eof")}} {
		if sdk.IsPanic(err) {
			t.Fatalf("IsPanic(%v) = true", err)
		}
	}
	if !sdk.IsPanic(sdk.PanicStatus("write", "boom")) || !sdk.IsPanic(sdk.NewPanicError("write", 1)) {
		t.Fatal("IsPanic misses a panic")
	}
}
