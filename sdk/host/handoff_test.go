package host_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/test/bufconn"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
	"github.com/tda-dev/tda/sdk/protocol/tdav1"
	"github.com/tda-dev/tda/sdk/sdktest"
)

// lineSource emits batches of batch lines, numbered, one batch per credit. Over the protocol
// Emit encodes a batch before it returns (sdk.EmitCopies), so the lines of the next batch
// are written into the same memory, as the file source does.
type lineSource struct{ batch int }

func (s lineSource) Run(ctx context.Context, out sdk.Output) error {
	events := make([]sdk.Event, s.batch)
	lines := make([][]byte, s.batch)
	for i := range lines {
		lines[i] = []byte(fmt.Sprintf("batch 000000 line %06d %s", i, strings.Repeat("x", 80)))
	}
	for b := 0; ; b++ {
		num := fmt.Sprintf("%06d", b%1000000)
		for i := range events {
			copy(lines[i][len("batch "):], num)
			events[i] = sdk.Event{Line: lines[i]}
		}
		if err := out.Emit(ctx, events); err != nil {
			return nil
		}
		if !sdk.EmitCopies(out) {
			events, lines = make([]sdk.Event, s.batch), append([][]byte(nil), lines...)
			for i := range lines {
				lines[i] = append([]byte(nil), lines[i]...)
			}
		}
	}
}

var lineSourceComp = sdk.SourceComponent("lines", nil, func(*sdk.Config, sdk.Resources) (sdk.Source, error) {
	return lineSource{batch: 200}, nil
})

// processCall is the context key marking a Process call.
type processCall struct{}

// processSizes records the size of every ProcessRequest the host sends.
type processSizes struct {
	mu    sync.Mutex
	sizes []int
}

func (p *processSizes) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, processCall{}, info.FullMethodName == tdav1.Processor_Process_FullMethodName)
}

func (p *processSizes) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if out, ok := s.(*stats.OutPayload); ok && ctx.Value(processCall{}) == true {
		p.mu.Lock()
		p.sizes = append(p.sizes, out.Length)
		p.mu.Unlock()
	}
}

func (*processSizes) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (*processSizes) HandleConn(context.Context, stats.ConnStats)                       {}

func (p *processSizes) last() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sizes[len(p.sizes)-1]
}

// handoffProcess serves the line source and the counter processor from one process, as
// `tda plugin-serve` does, and returns the host's connection to it.
func handoffProcess(t *testing.T, sizes *processSizes) *host.Conn {
	t.Helper()
	srv := sdk.NewBundleServer(sdk.PluginInfo{Name: "bundle", Version: "1"}, nil,
		sdk.Bundled{Info: sdk.PluginInfo{Name: "lines", Version: "1"}, Components: []sdk.Component{lineSourceComp, counterComp}})
	lis := bufconn.Listen(4 << 20)
	go func() { _ = srv.Serve(lis) }()
	opts := append(sdk.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(sizes),
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

func startLines(t *testing.T, conn *host.Conn, instance string) host.Reader {
	t.Helper()
	src := conn.Source()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if _, err := src.Configure(ctx, host.Configuration{Component: "lines", Instance: instance,
		Config: sdktest.Config(t, lineSourceComp, "")}); err != nil {
		t.Fatal(err)
	}
	r, err := src.Read(ctx, nil, 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Stop() })
	return r
}

func recvBatch(t *testing.T, r host.Reader) *host.Batch {
	t.Helper()
	for {
		m, err := r.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if m.Batch != nil && m.Batch.Len() > 0 {
			return m.Batch
		}
	}
}

// processed runs b through p and checks that every line came back tagged in order.
func processed(t *testing.T, p host.Processor, b *host.Batch, firstTag int) {
	t.Helper()
	want := b.Events()
	out, err := p.Process(context.Background(), b, sdk.Watermark{})
	if err != nil {
		t.Fatal(err)
	}
	got := out.Events()
	if len(got) != len(want) {
		t.Fatalf("%d events out, %d in", len(got), len(want))
	}
	for i := range got {
		if string(got[i].Line) != string(want[i].Line) || got[i].Field("tag") != fmt.Sprintf("P-%d", firstTag+i) {
			t.Fatalf("event %d: %q tagged %q, want %q tagged P-%d", i, got[i].Line, got[i].Field("tag"), want[i].Line, firstTag+i)
		}
	}
}

func TestHandoffWithinOneProcess(t *testing.T) {
	sizes := &processSizes{}
	conn := handoffProcess(t, sizes)
	r := startLines(t, conn.ForInstance("source.lines.a"), "source.lines.a")
	p := conn.ForInstance("processor.counter.p").Processor()
	configureProcessor(t, p, "processor.counter.p", "P")

	// A batch the process's own source sent is named, not sent again.
	b := recvBatch(t, r)
	raw, _ := b.Raw()
	processed(t, p, b, 1)
	if n := sizes.last(); n > 32 {
		t.Fatalf("the ProcessRequest for a batch of the same process took %d bytes (the batch is %d)", n, len(raw))
	}
	// Processed again (a retry, a replay after a restart): the process no longer holds it,
	// says so, and the host sends the bytes; the result is the same.
	processed(t, p, b, 201)
	if n := sizes.last(); n < len(raw) {
		t.Fatalf("the second ProcessRequest took %d bytes, less than the batch's %d", n, len(raw))
	}
	// A share (a second pipeline of the same source) and a batch built by the host go as bytes.
	b2 := recvBatch(t, r)
	processed(t, p, b2.Share(), 401)
	if n := sizes.last(); n < len(raw) {
		t.Fatalf("a shared batch went as %d bytes", n)
	}
	processed(t, p, b2, 601)
	if n := sizes.last(); n > 32 {
		t.Fatalf("the original after its share took %d bytes", n)
	}
}

func TestNoHandoffAcrossProcesses(t *testing.T) {
	sizesA, sizesB := &processSizes{}, &processSizes{}
	a, b := handoffProcess(t, sizesA), handoffProcess(t, sizesB)
	r := startLines(t, a.ForInstance("source.lines.a"), "source.lines.a")
	p := b.ForInstance("processor.counter.p").Processor()
	configureProcessor(t, p, "processor.counter.p", "P")
	batch := recvBatch(t, r)
	raw, _ := batch.Raw()
	processed(t, p, batch, 1)
	if n := sizesB.last(); n < len(raw) {
		t.Fatalf("a batch of another process went as %d bytes, less than the batch's %d", n, len(raw))
	}
}

// passThrough is a processor that borrows its input and forwards nothing, so that a
// benchmark measures the crossing alone.
type passThrough struct{}

func (passThrough) Process(context.Context, []sdk.Event, sdk.Watermark) ([]sdk.Event, error) {
	return nil, nil
}

var passComp = sdk.ProcessorComponent("pass", nil, func(*sdk.Config, sdk.Resources) (sdk.Processor, error) {
	return passThrough{}, nil
}).WithBorrowedInput()

// BenchmarkSourceToProcessor moves batches of 2,000 lines of 100 bytes from a source to a
// processor served by the same process, as the agent does with the bundled plugins: the
// processor's batch named by handoff, and (no-handoff) sent back as bytes. It reports the
// CPU time of the whole test process (host and plugin sides) per line.
func BenchmarkSourceToProcessor(b *testing.B) {
	for _, mode := range []string{"handoff", "no-handoff"} {
		b.Run(mode, func(b *testing.B) {
			srv := sdk.NewBundleServer(sdk.PluginInfo{Name: "bundle", Version: "1"}, nil,
				sdk.Bundled{Info: sdk.PluginInfo{Name: "lines", Version: "1"}, Components: []sdk.Component{
					sdk.SourceComponent("lines", nil, func(*sdk.Config, sdk.Resources) (sdk.Source, error) {
						return lineSource{batch: 2000}, nil
					}), passComp}})
			lis := bufconn.Listen(4 << 20)
			go func() { _ = srv.Serve(lis) }()
			opts := append(sdk.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
			cc, err := grpc.NewClient("passthrough:///bundle", opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Stop()
			defer cc.Close()
			conn := host.NewConn(cc)
			srcConn := conn.ForInstance("source.lines.a")
			if mode == "no-handoff" {
				srcConn = conn // the unnamed instance: its source is not asked to keep batches
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			src := srcConn.Source()
			if _, err := src.Configure(ctx, host.Configuration{Component: "lines", Instance: "source.lines.a",
				Config: sdktest.Config(b, lineSourceComp, "")}); err != nil {
				b.Fatal(err)
			}
			p := conn.ForInstance("processor.pass.p").Processor()
			if _, err := p.Configure(ctx, host.Configuration{Component: "pass", Instance: "processor.pass.p",
				Config: sdktest.Config(b, passComp, "")}); err != nil {
				b.Fatal(err)
			}
			r, err := src.Read(ctx, nil, 4)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Stop()
			lines := 0
			cpu0 := cpuTime()
			for b.Loop() {
				m, err := r.Recv()
				if err != nil {
					b.Fatal(err)
				}
				if m.Batch == nil {
					continue
				}
				lines += m.Batch.Len()
				if _, err := p.Process(ctx, m.Batch, sdk.Watermark{}); err != nil {
					b.Fatal(err)
				}
				m.Batch.Release()
				if err := r.Grant(1); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(lines), "cpu-ns/line")
		})
	}
}

// cpuTime returns the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
