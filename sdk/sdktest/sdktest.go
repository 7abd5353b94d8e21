// Package sdktest runs a plugin component inside a Go test, configured with the same HCL a
// user writes, either through the real protocol (the default: the gRPC server a plugin
// binary runs and the client the agent uses, over an in-memory connection) or directly (no
// RPC). A plugin author needs nothing else to test a plugin alone.
//
//	func TestUpper(t *testing.T) {
//		p := sdktest.NewProcessor(t, upper.Component(), `suffix = "!"`)
//		out := p.Process([]sdk.Event{{Kind: sdk.KindLog, Line: []byte("hi")}})
//		// out[0].Line == "HI!"
//	}
package sdktest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/hclspec"
	"github.com/tda-dev/tda/sdk/host"
)

// Mode selects how the harness talks to the component.
type Mode int

const (
	// GRPC runs the component behind the real protocol, in-process.
	GRPC Mode = iota
	// Direct calls the component without RPC.
	Direct
)

// Option changes a harness.
type Option func(*options)

type options struct {
	mode     Mode
	instance string
	dataDir  string
	logger   hclog.Logger
	// server is the logger handed to the plugin's server in GRPC mode: the server names it
	// after the instance itself, as in a plugin process, so it must not carry the name yet.
	server hclog.Logger
}

// WithMode selects GRPC (default) or Direct.
func WithMode(m Mode) Option { return func(o *options) { o.mode = m } }

// WithInstance sets the instance address (default "<kind>.<name>.test").
func WithInstance(name string) Option { return func(o *options) { o.instance = name } }

// WithDataDir sets the instance's data directory (default: a fresh t.TempDir()).
func WithDataDir(dir string) Option { return func(o *options) { o.dataDir = dir } }

// WithLogger sends the component's log to logger (default: the test log).
func WithLogger(l hclog.Logger) Option { return func(o *options) { o.logger = l } }

func collect(t testing.TB, comp sdk.Component, opts []Option) options {
	o := options{mode: GRPC}
	for _, fn := range opts {
		fn(&o)
	}
	if o.instance == "" {
		o.instance = fmt.Sprintf("%s.%s.test", comp.Kind, comp.Name)
	}
	if o.dataDir == "" {
		o.dataDir = t.TempDir()
	}
	if o.logger == nil {
		o.server = hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: testWriter{t}})
		o.logger = o.server.Named(o.instance)
	} else {
		o.server = o.logger
	}
	return o
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Decode decodes an HCL block body with the component's spec, exactly as the agent does,
// and returns the config JSON and the diagnostics as "line:col: summary: detail" strings.
func Decode(comp sdk.Component, src string) ([]byte, []string) {
	file, diags := hclsyntax.ParseConfig([]byte(src), "test.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		return nil, formatDiags(diags)
	}
	spec := comp.Spec
	if spec == nil {
		spec = &sdk.Spec{}
	}
	data, ddiags := hclspec.Decode(spec, file.Body, hclspec.EvalContext(".", nil),
		hcl.Range{Filename: "test.hcl", Start: hcl.InitialPos, End: hcl.InitialPos})
	return data, formatDiags(ddiags)
}

func formatDiags(diags hcl.Diagnostics) []string {
	var out []string
	for _, d := range diags {
		pos := ""
		if d.Subject != nil {
			pos = fmt.Sprintf("%d:%d: ", d.Subject.Start.Line, d.Subject.Start.Column)
		}
		s := pos + d.Summary
		if d.Detail != "" {
			s += ": " + d.Detail
		}
		out = append(out, s)
	}
	return out
}

// Config decodes src for comp and fails the test on any diagnostic.
func Config(t testing.TB, comp sdk.Component, src string) []byte {
	t.Helper()
	data, diags := Decode(comp, src)
	if len(diags) > 0 {
		t.Fatalf("config for %s %s:\n%s", comp.Kind, comp.Name, strings.Join(diags, "\n"))
	}
	return data
}

// Validate returns what the agent would report for src: static diagnostics from the schema
// and the component's own checks, each as "line:col: summary: detail".
func Validate(t testing.TB, comp sdk.Component, src string, opts ...Option) []string {
	t.Helper()
	data, diags := Decode(comp, src)
	if len(diags) > 0 {
		return diags
	}
	o := collect(t, comp, opts)
	_, cdiags := comp.NewInstance(data, sdk.Resources{Logger: o.logger, Instance: o.instance, DataDir: o.dataDir})
	file, _ := hclsyntax.ParseConfig([]byte(src), "test.hcl", hcl.InitialPos)
	return formatDiags(hclspec.Diagnostics(cdiags, comp.Spec, file.Body,
		hcl.Range{Filename: "test.hcl", Start: hcl.InitialPos, End: hcl.InitialPos}))
}

// conn returns a protocol connection to comp served in-process: the server a plugin binary
// runs, and the client options the agent uses, over an in-memory connection.
func conn(t testing.TB, comp sdk.Component, logger hclog.Logger) *host.Conn {
	t.Helper()
	srv := sdk.NewServer(sdk.PluginInfo{Name: "sdktest", Version: sdk.SDKVersion}, logger, comp)
	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(lis) }()
	opts := append(sdk.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	cc, err := grpc.NewClient("passthrough:///sdktest", opts...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() {
		_ = cc.Close()
		srv.Stop()
	})
	return host.NewConn(cc)
}

func configure(t testing.TB, fn func(context.Context, host.Configuration) (host.Configured, error), comp sdk.Component, src string, o options) {
	t.Helper()
	data := Config(t, comp, src)
	res, err := fn(context.Background(), host.Configuration{Component: comp.Name,
		Instance: o.instance, Config: data, DataDir: o.dataDir})
	if err != nil {
		t.Fatalf("configure %s: %v", o.instance, err)
	}
	if res.Diagnostics.HasErrors() {
		t.Fatalf("configure %s: %v", o.instance, res.Diagnostics.Err())
	}
}

// Processor is a configured processor under test.
type Processor struct {
	t testing.TB
	p host.Processor
}

// NewProcessor configures comp with the HCL body src.
func NewProcessor(t testing.TB, comp sdk.Component, src string, opts ...Option) *Processor {
	t.Helper()
	o := collect(t, comp, opts)
	var p host.Processor
	if o.mode == Direct {
		p = host.DirectProcessor(comp, o.logger)
	} else {
		p = conn(t, comp, o.server).Processor()
	}
	configure(t, p.Configure, comp, src, o)
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return &Processor{t: t, p: p}
}

// Process runs one batch with a zero watermark and fails the test on error.
func (p *Processor) Process(events []sdk.Event) []sdk.Event {
	p.t.Helper()
	return p.ProcessAt(events, sdk.Watermark{})
}

// ProcessAt runs one batch with the given watermark and fails the test on error.
func (p *Processor) ProcessAt(events []sdk.Event, wm sdk.Watermark) []sdk.Event {
	p.t.Helper()
	out, err := p.p.Process(context.Background(), host.NewBatch(events), wm)
	if err != nil {
		p.t.Fatalf("process: %v", err)
	}
	return out.Events()
}

// Snapshot returns the processor's state.
func (p *Processor) Snapshot() []byte {
	p.t.Helper()
	b, err := p.p.Snapshot(context.Background())
	if err != nil {
		p.t.Fatalf("snapshot: %v", err)
	}
	return b
}

// Restore puts state back.
func (p *Processor) Restore(state []byte) {
	p.t.Helper()
	if err := p.p.Restore(context.Background(), state); err != nil {
		p.t.Fatalf("restore: %v", err)
	}
}

// Host returns the underlying host-side processor.
func (p *Processor) Host() host.Processor { return p.p }

// Sink is a configured sink under test.
type Sink struct {
	t      testing.TB
	s      host.Sink
	nextID uint64
}

// NewSink configures comp with the HCL body src.
func NewSink(t testing.TB, comp sdk.Component, src string, opts ...Option) *Sink {
	t.Helper()
	o := collect(t, comp, opts)
	var s host.Sink
	if o.mode == Direct {
		s = host.DirectSink(comp, o.logger)
	} else {
		s = conn(t, comp, o.server).Sink()
	}
	configure(t, s.Configure, comp, src, o)
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return &Sink{t: t, s: s}
}

// Write sends one batch with a new delivery id and returns the sink's answer.
func (s *Sink) Write(events ...sdk.Event) error {
	s.nextID++
	return s.s.Write(context.Background(), s.nextID, host.NewBatch(events))
}

// WriteBatch sends a batch with an explicit delivery id (to test idempotent retries).
func (s *Sink) WriteBatch(b sdk.Batch) error {
	return s.s.Write(context.Background(), b.ID, host.NewBatch(b.Events))
}

// Close closes the sink.
func (s *Sink) Close() error { return s.s.Close(context.Background()) }

// Source is a configured source under test.
type Source struct {
	t           testing.TB
	s           host.Source
	r           host.Reader
	msgs        chan host.Message
	done        chan struct{}
	checkpoints map[string][]byte
	status      *sdk.Status
}

// NewSource configures comp with the HCL body src; call Start to run it.
func NewSource(t testing.TB, comp sdk.Component, src string, opts ...Option) *Source {
	t.Helper()
	o := collect(t, comp, opts)
	var s host.Source
	if o.mode == Direct {
		s = host.DirectSource(comp, o.logger)
	} else {
		s = conn(t, comp, o.server).Source()
	}
	configure(t, s.Configure, comp, src, o)
	h := &Source{t: t, s: s, checkpoints: map[string][]byte{}}
	t.Cleanup(func() {
		h.Stop()
		_ = s.Close(context.Background())
	})
	return h
}

// Start runs the source from the given checkpoints (nil for a first start).
func (s *Source) Start(checkpoints map[string][]byte) {
	s.t.Helper()
	for k, v := range checkpoints {
		s.checkpoints[k] = v
	}
	r, err := s.s.Read(context.Background(), checkpoints, 4)
	if err != nil {
		s.t.Fatalf("read: %v", err)
	}
	s.r = r
	s.msgs = make(chan host.Message)
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		for {
			m, err := r.Recv()
			if err != nil {
				return
			}
			s.msgs <- m
		}
	}()
}

// Next returns the next batch, acknowledging it (its checkpoints are applied and a credit is
// granted). It returns false on timeout or when the source stopped.
func (s *Source) Next(timeout time.Duration) ([]sdk.Event, bool) {
	s.t.Helper()
	if s.r == nil {
		s.t.Fatalf("Next before Start")
	}
	deadline := time.After(timeout)
	for {
		select {
		case m := <-s.msgs:
			if m.Status != nil {
				st := *m.Status
				s.status = &st
				continue
			}
			for _, c := range m.Checkpoints {
				if c.Delete {
					delete(s.checkpoints, c.Key)
				} else {
					s.checkpoints[c.Key] = c.Value
				}
			}
			_ = s.r.Grant(1)
			return m.Batch.Events(), true
		case <-s.done:
			return nil, false
		case <-deadline:
			return nil, false
		}
	}
}

// Collect reads batches until it has n events or timeout passes.
func (s *Source) Collect(n int, timeout time.Duration) []sdk.Event {
	s.t.Helper()
	var out []sdk.Event
	deadline := time.Now().Add(timeout)
	for len(out) < n {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		events, ok := s.Next(left)
		if !ok {
			break
		}
		out = append(out, events...)
	}
	return out
}

// Checkpoints returns the checkpoints of every batch acknowledged so far.
func (s *Source) Checkpoints() map[string][]byte {
	out := make(map[string][]byte, len(s.checkpoints))
	for k, v := range s.checkpoints {
		out[k] = v
	}
	return out
}

// Commit tells the source that the checkpoints of every batch acknowledged so far are
// committed, as the agent does once the sinks accepted them and the state is stored (a source
// that implements sdk.CommitWatcher gets them in Committed).
func (s *Source) Commit() {
	s.t.Helper()
	if s.r == nil {
		s.t.Fatalf("Commit before Start")
	}
	cps := make([]sdk.Checkpoint, 0, len(s.checkpoints))
	for k, v := range s.checkpoints {
		cps = append(cps, sdk.Checkpoint{Key: k, Value: v})
	}
	if err := s.r.Committed(cps); err != nil {
		s.t.Fatalf("committed: %v", err)
	}
}

// Status returns the last status the source reported, if any.
func (s *Source) Status() *sdk.Status { return s.status }

// Stop asks the source to stop and discards what it still sends (unacknowledged).
func (s *Source) Stop() {
	if s.r == nil {
		return
	}
	_ = s.r.Stop()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case <-s.msgs:
		case <-s.done:
			s.r = nil
			return
		case <-timeout:
			s.t.Errorf("source did not stop within 10s")
			s.r = nil
			return
		}
	}
}
