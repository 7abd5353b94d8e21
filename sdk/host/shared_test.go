package host_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
	"github.com/tda-dev/tda/sdk/sdktest"
)

// counter tags every event with its instance's prefix and a running count, and snapshots the
// count: two instances in one process must keep apart both their config and their state.
type counter struct {
	prefix string
	n      int
}

func (c *counter) Process(_ context.Context, events []sdk.Event, _ sdk.Watermark) ([]sdk.Event, error) {
	for i := range events {
		c.n++
		events[i].SetField("tag", fmt.Sprintf("%s-%d", c.prefix, c.n))
	}
	return events, nil
}

func (c *counter) Snapshot() ([]byte, error) { return []byte(strconv.Itoa(c.n)), nil }

func (c *counter) Restore(b []byte) error {
	n, err := strconv.Atoi(string(b))
	c.n = n
	return err
}

var counterComp = sdk.ProcessorComponent("counter",
	&sdk.Spec{Fields: []sdk.Field{{Name: "prefix", Type: sdk.TypeString, Required: true}}},
	func(cfg *sdk.Config, _ sdk.Resources) (sdk.Processor, error) {
		return &counter{prefix: cfg.String("prefix")}, nil
	})

// recorder keeps what each sink instance was given, by instance.
type recorder struct {
	mu  sync.Mutex
	got map[string][]string
}

type recordingSink struct {
	r        *recorder
	instance string
}

func (s recordingSink) Write(_ context.Context, b sdk.Batch) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	for _, e := range b.Events {
		s.r.got[s.instance] = append(s.r.got[s.instance], string(e.Line))
	}
	return nil
}

func (r *recorder) component() sdk.Component {
	return sdk.SinkComponent("rec", nil, func(_ *sdk.Config, res sdk.Resources) (sdk.Sink, error) {
		return recordingSink{r: r, instance: res.Instance}, nil
	})
}

func (r *recorder) lines(instance string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got[instance]...)
}

// bundleConn serves two plugins from one process-like server, as `tda plugin-serve` does,
// over an in-memory connection with the agent's client options.
func bundleConn(t *testing.T, rec *recorder) *host.Conn {
	t.Helper()
	srv := sdk.NewBundleServer(sdk.PluginInfo{Name: "bundle", Version: "1"}, nil,
		sdk.Bundled{Info: sdk.PluginInfo{Name: "count", Version: "2"}, Components: []sdk.Component{counterComp}},
		sdk.Bundled{Info: sdk.PluginInfo{Name: "record", Version: "3"}, Components: []sdk.Component{rec.component()}})
	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(lis) }()
	opts := append(sdk.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	cc, err := grpc.NewClient("passthrough:///bundle", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cc.Close()
		srv.Stop()
	})
	return host.NewConn(cc)
}

func configureProcessor(t *testing.T, p host.Processor, instance, prefix string) {
	t.Helper()
	res, err := p.Configure(context.Background(), host.Configuration{Component: "counter", Instance: instance,
		Config: sdktest.Config(t, counterComp, fmt.Sprintf("prefix = %q", prefix))})
	if err != nil || res.Diagnostics.HasErrors() {
		t.Fatalf("configure %s: %v %v", instance, err, res.Diagnostics.Err())
	}
	if !res.Stateful {
		t.Fatalf("configure %s: not stateful", instance)
	}
}

func tags(t *testing.T, p host.Processor, n int) []string {
	t.Helper()
	events := make([]sdk.Event, n)
	for i := range events {
		events[i] = sdk.Event{Line: []byte("x")}
	}
	out, err := p.Process(context.Background(), host.NewBatch(events), sdk.Watermark{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range out.Events() {
		got = append(got, e.Field("tag"))
	}
	return got
}

func TestOneProcessServesSeveralInstances(t *testing.T) {
	rec := &recorder{got: map[string][]string{}}
	conn := bundleConn(t, rec)
	ctx := context.Background()

	d, err := conn.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !d.SharedInstances {
		t.Fatal("a bundle's description does not ask for shared processes")
	}
	for _, c := range d.Components {
		if want := map[string]string{"counter": "count", "rec": "record"}[c.Name]; c.Plugin != want {
			t.Errorf("component %s comes from plugin %q, want %q", c.Name, c.Plugin, want)
		}
	}

	a := conn.ForInstance("processor.counter.a").Processor()
	b := conn.ForInstance("processor.counter.b").Processor()
	configureProcessor(t, a, "processor.counter.a", "A")
	configureProcessor(t, b, "processor.counter.b", "B")
	if got := tags(t, a, 2); fmt.Sprint(got) != "[A-1 A-2]" {
		t.Fatalf("instance a tagged %v", got)
	}
	if got := tags(t, b, 1); fmt.Sprint(got) != "[B-1]" {
		t.Fatalf("instance b tagged %v: it shares a's config or state", got)
	}
	for _, c := range []struct {
		p    host.Processor
		want string
	}{{a, "2"}, {b, "1"}} {
		st, err := c.p.Snapshot(ctx)
		if err != nil || string(st) != c.want {
			t.Fatalf("snapshot %q %v, want %q", st, err, c.want)
		}
	}

	// Sinks of one component, two instances: each Write reaches its own.
	s1 := conn.ForInstance("sink.rec.one").Sink()
	s2 := conn.ForInstance("sink.rec.two").Sink()
	for _, s := range []struct {
		sink host.Sink
		name string
	}{{s1, "sink.rec.one"}, {s2, "sink.rec.two"}} {
		if _, err := s.sink.Configure(ctx, host.Configuration{Component: "rec", Instance: s.name, Config: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
		if err := s.sink.Write(ctx, 1, host.NewBatch([]sdk.Event{{Line: []byte("to " + s.name)}})); err != nil {
			t.Fatal(err)
		}
	}
	if got := rec.lines("sink.rec.one"); fmt.Sprint(got) != "[to sink.rec.one]" {
		t.Fatalf("sink one got %v", got)
	}
	if got := rec.lines("sink.rec.two"); fmt.Sprint(got) != "[to sink.rec.two]" {
		t.Fatalf("sink two got %v", got)
	}

	// Closing one instance leaves the others serving; the closed one is gone.
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := tags(t, b, 1); fmt.Sprint(got) != "[B-2]" {
		t.Fatalf("after a's Close, b tagged %v", got)
	}
	_, err = a.Process(ctx, host.NewBatch([]sdk.Event{{Line: []byte("x")}}), sdk.Watermark{})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("a call to a closed instance: %v, want FailedPrecondition", err)
	}
	// An instance never configured is refused the same way, not served by another.
	_, err = conn.ForInstance("processor.counter.ghost").Processor().Snapshot(ctx)
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("a call to an unknown instance: %v, want FailedPrecondition", err)
	}
}

// A host that names no instance (every tda before shared processes) gets one instance per
// process, as it always did: Configure twice replaces it.
func TestUnnamedInstanceIsTheProcessOwn(t *testing.T) {
	conn := bundleConn(t, &recorder{got: map[string][]string{}})
	p := conn.Processor()
	if _, err := p.Snapshot(context.Background()); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("before Configure: %v, want FailedPrecondition", err)
	}
	configureProcessor(t, p, "processor.counter.x", "X")
	if got := tags(t, p, 1); fmt.Sprint(got) != "[X-1]" {
		t.Fatalf("tagged %v", got)
	}
	configureProcessor(t, p, "processor.counter.x", "Y")
	if got := tags(t, p, 1); fmt.Sprint(got) != "[Y-1]" {
		t.Fatalf("after a second Configure: %v", got)
	}
}

// The instances of one process are bounded: past the bound Configure is refused with a
// reason the host can show, and closing one makes room again.
func TestInstancesPerProcessAreBounded(t *testing.T) {
	conn := bundleConn(t, &recorder{got: map[string][]string{}})
	ctx := context.Background()
	for i := 0; i < sdk.MaxInstancesPerProcess; i++ {
		name := fmt.Sprintf("sink.rec.n%d", i)
		if _, err := conn.ForInstance(name).Sink().Configure(ctx, host.Configuration{Component: "rec", Instance: name, Config: []byte("{}")}); err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
	}
	over := conn.ForInstance("sink.rec.over").Sink()
	_, err := over.Configure(ctx, host.Configuration{Component: "rec", Instance: "sink.rec.over", Config: []byte("{}")})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("instance past the bound: %v, want ResourceExhausted", err)
	}
	if err := conn.ForInstance("sink.rec.n0").Sink().Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := over.Configure(ctx, host.Configuration{Component: "rec", Instance: "sink.rec.over", Config: []byte("{}")}); err != nil {
		t.Fatalf("after a Close made room: %v", err)
	}
}
