package host_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
)

// plainConn serves components with gRPC's own protobuf codec and the generated handlers, as
// a plugin built with an SDK that reads and writes messages only through protobuf does: the
// host's hand-written messages must be the protocol's encoding.
func plainConn(t *testing.T, comps ...sdk.Component) *host.Conn {
	t.Helper()
	ps := sdk.PluginSets(sdk.PluginInfo{Name: "plain", Version: "0"}, nil, comps...)[sdk.ProtocolVersion]
	client, _ := plugin.TestPluginGRPCConn(t, false, ps)
	t.Cleanup(func() { _ = client.Close() })
	raw, err := client.Dispense(sdk.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	return host.NewConn(raw.(*grpc.ClientConn))
}

type lines struct{ batches, size int }

func (l lines) Run(ctx context.Context, out sdk.Output) error {
	for b := 0; b < l.batches; b++ {
		events := make([]sdk.Event, l.size)
		for i := range events {
			events[i] = sdk.Event{Line: []byte(fmt.Sprintf("batch %d line %d with some padding to make it longer", b, i))}
		}
		if err := out.Emit(ctx, events, sdk.Checkpoint{Key: "b", Value: []byte(fmt.Sprint(b))}); err != nil {
			return nil
		}
	}
	<-ctx.Done()
	return nil
}

type tag struct{}

func (tag) Process(_ context.Context, events []sdk.Event, _ sdk.Watermark) ([]sdk.Event, error) {
	for i := range events {
		events[i].SetField("n", fmt.Sprint(i))
	}
	return events, nil
}

func TestHostTalksToPlainProtobufPlugins(t *testing.T) {
	src := sdk.SourceComponent("lines", nil, func(*sdk.Config, sdk.Resources) (sdk.Source, error) {
		return lines{batches: 3, size: 3000}, nil // large batches: the host keeps them in pooled memory
	})
	proc := sdk.ProcessorComponent("tag", nil, func(*sdk.Config, sdk.Resources) (sdk.Processor, error) {
		return tag{}, nil
	})
	ctx := context.Background()
	s := plainConn(t, src).Source()
	if _, err := s.Configure(ctx, host.Configuration{Component: "lines", Instance: "source.lines.in", Config: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	p := plainConn(t, proc).Processor()
	if _, err := p.Configure(ctx, host.Configuration{Component: "tag", Instance: "processor.tag.t", Config: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Read(ctx, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	for b := 0; b < 3; b++ {
		m, err := r.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Checkpoints) != 1 || string(m.Checkpoints[0].Value) != fmt.Sprint(b) {
			t.Fatalf("checkpoints %+v", m.Checkpoints)
		}
		out, err := p.Process(ctx, m.Batch, sdk.Watermark{})
		if err != nil {
			t.Fatal(err)
		}
		m.Batch.Release()
		got := out.Events()
		if len(got) != 3000 {
			t.Fatalf("%d events out", len(got))
		}
		for i, e := range got {
			want := sdk.Event{Kind: sdk.KindLog, Source: "lines.in", Fields: map[string]string{"n": fmt.Sprint(i)},
				Line: []byte(fmt.Sprintf("batch %d line %d with some padding to make it longer", b, i))}
			if !reflect.DeepEqual(e, want) {
				t.Fatalf("event %d: %+v", i, e)
			}
		}
	}
}
