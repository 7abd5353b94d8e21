package runtime_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/runtime"
	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
)

// gen emits lines "0".."count-1" in batches, resuming from its checkpoint.
type gen struct {
	count, batch int64
	every        time.Duration
}

func (g *gen) Run(ctx context.Context, out sdk.Output) error {
	var next int64
	if v, ok := out.Checkpoints()["next"]; ok {
		next, _ = strconv.ParseInt(string(v), 10, 64)
	}
	for next < g.count {
		var events []sdk.Event
		for i := int64(0); i < g.batch && next < g.count; i++ {
			events = append(events, sdk.Event{Kind: sdk.KindLog, Origin: "gen", Time: time.Unix(next, 0).UTC(),
				Line: []byte(strconv.FormatInt(next, 10))})
			next++
		}
		if err := out.Emit(ctx, events, sdk.Checkpoint{Key: "next", Value: []byte(strconv.FormatInt(next, 10))}); err != nil {
			return nil
		}
		if g.every > 0 {
			select {
			case <-time.After(g.every):
			case <-ctx.Done():
				return nil
			}
		}
	}
	<-ctx.Done()
	return nil
}

var genSpec = &sdk.Spec{Fields: []sdk.Field{
	{Name: "count", Type: sdk.TypeInt, Required: true},
	{Name: "batch", Type: sdk.TypeInt, Default: 10},
	{Name: "every", Type: sdk.TypeDuration, Default: "0s"},
	{Name: "follow", Type: sdk.TypeBool, Default: true},
}}

type finiteGen struct{ gen }

func (g *finiteGen) Run(ctx context.Context, out sdk.Output) error {
	var next int64
	for next < g.count {
		var events []sdk.Event
		for i := int64(0); i < g.batch && next < g.count; i++ {
			events = append(events, sdk.Event{Kind: sdk.KindLog, Line: []byte(strconv.FormatInt(next, 10))})
			next++
		}
		if err := out.Emit(ctx, events); err != nil {
			return nil
		}
	}
	return nil
}

func genComponent() sdk.Component {
	return sdk.SourceComponent("gen", genSpec, func(c *sdk.Config, _ sdk.Resources) (sdk.Source, error) {
		g := gen{count: c.Int("count"), batch: c.Int("batch"), every: c.Duration("every")}
		if !c.Bool("follow") {
			return &finiteGen{g}, nil
		}
		return &g, nil
	})
}

// counter counts lines and raises an alert at every multiple of `every` lines; its count is
// its state.
type counter struct {
	every int64
	n     int64
}

func (c *counter) Process(_ context.Context, events []sdk.Event, wm sdk.Watermark) ([]sdk.Event, error) {
	var out []sdk.Event
	for _, e := range events {
		if e.Kind != sdk.KindLog {
			out = append(out, e)
			continue
		}
		c.n++
		e.SetField("n", strconv.FormatInt(c.n, 10))
		out = append(out, e)
		if c.n%c.every == 0 {
			out = append(out, sdk.Event{Kind: sdk.KindAlert, Time: e.Time, Origin: e.Origin, Alert: &sdk.Alert{
				Rule: "every", Severity: sdk.SeverityHigh, State: sdk.StateFiring, Count: c.n,
				Fingerprint: fmt.Sprintf("every-%d", c.n)}})
		}
	}
	if wm.Final {
		out = append(out, sdk.Event{Kind: sdk.KindAudit, Fields: map[string]string{"final": "true"}})
	}
	return out, nil
}

func (c *counter) Snapshot() ([]byte, error) {
	return binary.BigEndian.AppendUint64(nil, uint64(c.n)), nil
}

func (c *counter) Restore(b []byte) error {
	if len(b) != 8 {
		return errors.New("bad state")
	}
	c.n = int64(binary.BigEndian.Uint64(b))
	return nil
}

func counterComponent() sdk.Component {
	spec := &sdk.Spec{Fields: []sdk.Field{{Name: "every", Type: sdk.TypeInt, Default: 100}}}
	return sdk.ProcessorComponent("counter", spec, func(c *sdk.Config, _ sdk.Resources) (sdk.Processor, error) {
		return &counter{every: c.Int("every")}, nil
	})
}

// collector records what it receives; it can be told to fail.
type collector struct {
	mu      sync.Mutex
	batches []sdk.Batch
	events  []sdk.Event
	fail    func(b sdk.Batch) error
	calls   []time.Time
}

func (c *collector) Write(_ context.Context, b sdk.Batch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, time.Now())
	if c.fail != nil {
		if err := c.fail(b); err != nil {
			return err
		}
	}
	c.batches = append(c.batches, b)
	for _, e := range b.Events {
		c.events = append(c.events, e.Clone())
	}
	return nil
}

func (c *collector) snapshot() []sdk.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]sdk.Event(nil), c.events...)
}

func (c *collector) lines(kind string) []string {
	var out []string
	for _, e := range c.snapshot() {
		if e.Kind == kind {
			if kind == sdk.KindAlert {
				out = append(out, e.Alert.Fingerprint)
			} else {
				out = append(out, string(e.Line))
			}
		}
	}
	return out
}

func collectorComponent(name string, c *collector, accepts ...string) sdk.Component {
	comp := sdk.SinkComponent(name, &sdk.Spec{}, func(*sdk.Config, sdk.Resources) (sdk.Sink, error) { return c, nil })
	if len(accepts) > 0 {
		comp = comp.WithAccepts(accepts...)
	}
	return comp
}

type harness struct {
	t     *testing.T
	dir   string
	comps map[string]sdk.Component
	src   string
}

func newHarness(t *testing.T, src string, comps map[string]sdk.Component) *harness {
	return &harness{t: t, dir: t.TempDir(), comps: comps, src: src}
}

func (h *harness) config() *config.Config {
	h.t.Helper()
	src := strings.ReplaceAll(h.src, "DATADIR", h.dir)
	cfg, diags := config.LoadBytes("test.hcl", []byte(src))
	if diags.HasErrors() {
		h.t.Fatalf("config: %v", diags)
	}
	for _, c := range cfg.Components {
		comp, ok := h.comps[string(c.Kind)+"."+c.Type]
		if !ok {
			h.t.Fatalf("no component %s.%s", c.Kind, c.Type)
		}
		if d := cfg.Decode(c, comp.Spec); d.HasErrors() {
			h.t.Fatalf("decode %s: %v", c.Address(), d)
		}
	}
	return cfg
}

func (h *harness) start(launcher runtime.Launcher) (*runtime.Runtime, *state.Store) {
	h.t.Helper()
	return h.startWith(launcher, func(*runtime.Options) {})
}

// startWith is start with options adjusted by adjust.
func (h *harness) startWith(launcher runtime.Launcher, adjust func(*runtime.Options)) (*runtime.Runtime, *state.Store) {
	h.t.Helper()
	cfg := h.config()
	store, err := state.Open(cfg.Agent.DataDir, state.Options{})
	if err != nil {
		h.t.Fatal(err)
	}
	if launcher == nil {
		launcher = &runtime.InProcessLauncher{Components: h.comps}
	}
	opts := runtime.Options{Config: cfg, Launcher: launcher, Store: store, Live: true,
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: testWriter{h.t}})}
	adjust(&opts)
	rt, err := runtime.New(opts)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := rt.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	return rt, store
}

func stop(t *testing.T, rt *runtime.Runtime, store *state.Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rt.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
	if err := store.Close(); err != nil {
		t.Errorf("close store: %v", err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func checkpoint(t *testing.T, dir, source string) string {
	t.Helper()
	store, err := state.Open(dir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var v []byte
	_ = store.View(func(tx *state.Tx) error {
		v, err = tx.Get([]string{"checkpoints", source}, []byte("next"))
		return err
	})
	return string(v)
}

const basicConfig = `
agent {
  data_dir            = "DATADIR"
  checkpoint_interval = "50ms"
}
source "gen" "numbers" {
  count = 1000
  batch = 7
}
processor "counter" "c" { every = 100 }
sink "collect" "all" {}
sink "collect" "alerts" { kinds = ["alert"] }
pipeline "main" {
  from    = [source.gen.numbers]
  through = [processor.counter.c]
  to      = [sink.collect.all, sink.collect.alerts]
}
`

func TestPipelineDeliversEverythingInOrderAndCommits(t *testing.T) {
	all, alerts := &collector{}, &collector{}
	comps := map[string]sdk.Component{"source.gen": genComponent(), "processor.counter": counterComponent(),
		"sink.collect": collectorComponent("collect", nil)}
	// Two instances of the same sink type: route by instance.
	launcher := &perInstanceLauncher{InProcessLauncher: runtime.InProcessLauncher{Components: comps},
		sinks: map[string]*collector{"sink.collect.all": all, "sink.collect.alerts": alerts}}
	h := newHarness(t, basicConfig, comps)
	rt, store := h.start(launcher)
	waitFor(t, "1000 lines", 10*time.Second, func() bool { return len(all.lines(sdk.KindLog)) == 1000 })
	waitFor(t, "a commit", 5*time.Second, func() bool {
		_ = rt.Commit(context.Background())
		return true
	})
	stop(t, rt, store)

	lines := all.lines(sdk.KindLog)
	for i, l := range lines {
		if l != strconv.Itoa(i) {
			t.Fatalf("line %d is %q", i, l)
		}
	}
	if got := alerts.lines(sdk.KindLog); len(got) != 0 {
		t.Fatalf("the alerts sink received %d log events", len(got))
	}
	if got := alerts.lines(sdk.KindAlert); len(got) != 10 || got[9] != "every-1000" {
		t.Fatalf("alerts %v", got)
	}
	if got := checkpoint(t, h.dir, "source.gen.numbers"); got != "1000" {
		t.Fatalf("committed checkpoint %q, want 1000", got)
	}
}

// perInstanceLauncher gives each sink instance its own collector.
type perInstanceLauncher struct {
	runtime.InProcessLauncher
	sinks map[string]*collector
}

func (l *perInstanceLauncher) Launch(ctx context.Context, c *config.Component, logger hclog.Logger) (runtime.Plugin, error) {
	if col, ok := l.sinks[c.Address()]; ok {
		return (&runtime.InProcessLauncher{Components: map[string]sdk.Component{
			"sink." + c.Type: collectorComponent(c.Type, col)}}).Launch(ctx, c, logger)
	}
	return l.InProcessLauncher.Launch(ctx, c, logger)
}

func TestRestartResumesFromCommittedCheckpointAndState(t *testing.T) {
	first := &collector{}
	src := `
agent {
  data_dir            = "DATADIR"
  checkpoint_interval = "20ms"
}
source "gen" "numbers" {
  count = 600
  batch = 10
  every = "5ms"
}
processor "counter" "c" { every = 50 }
sink "collect" "out" {}
pipeline "main" {
  from    = [source.gen.numbers]
  through = [processor.counter.c]
  to      = [sink.collect.out]
}
`
	comps := map[string]sdk.Component{"source.gen": genComponent(), "processor.counter": counterComponent(),
		"sink.collect": collectorComponent("collect", first)}
	h := newHarness(t, src, comps)
	rt, store := h.start(nil)
	waitFor(t, "some lines", 10*time.Second, func() bool { return len(first.lines(sdk.KindLog)) >= 200 })
	stop(t, rt, store)
	got1 := first.lines(sdk.KindLog)
	cp := checkpoint(t, h.dir, "source.gen.numbers")
	if cp != strconv.Itoa(len(got1)) {
		t.Fatalf("after a clean stop the checkpoint %s should equal the %d lines delivered", cp, len(got1))
	}

	second := &collector{}
	h.comps["sink.collect"] = collectorComponent("collect", second)
	rt, store = h.start(nil)
	waitFor(t, "the rest", 10*time.Second, func() bool { return len(got1)+len(second.lines(sdk.KindLog)) >= 600 })
	stop(t, rt, store)
	got2 := second.lines(sdk.KindLog)
	if len(got1)+len(got2) != 600 || got2[0] != cp {
		t.Fatalf("first run %d lines, second %d starting at %q (checkpoint %s)", len(got1), len(got2), got2[0], cp)
	}
	// The counter's state came back: its count continues where it stopped.
	for _, e := range second.snapshot() {
		if e.Kind == sdk.KindLog {
			if e.Field("n") != strconv.Itoa(len(got1)+1) {
				t.Fatalf("first line after restart has n=%s, want %d", e.Field("n"), len(got1)+1)
			}
			break
		}
	}
	// Each alert fired exactly once over both runs.
	alerts := append(first.lines(sdk.KindAlert), second.lines(sdk.KindAlert)...)
	if len(alerts) != 12 {
		t.Fatalf("alerts over two runs: %v", alerts)
	}
}

// crashable wraps in-process components so a test can "kill" a plugin: calls then fail as
// an unreachable plugin would, and Launch starts a fresh instance with empty state.
type crashable struct {
	runtime.InProcessLauncher
	mu       sync.Mutex
	launches map[string]int
	current  map[string]*crashPlugin
}

type crashPlugin struct {
	runtime.Plugin
	dead atomic.Bool
}

var errUnavailable = status.Error(codes.Unavailable, "connection closed")

func (p *crashPlugin) Exited() bool { return p.dead.Load() }
func (p *crashPlugin) Kill()        { p.dead.Store(true) }
func (p *crashPlugin) Processor() host.Processor {
	return crashProcessor{p.Plugin.Processor(), p}
}
func (p *crashPlugin) Sink() host.Sink { return crashSink{p.Plugin.Sink(), p} }

type crashProcessor struct {
	host.Processor
	p *crashPlugin
}

func (c crashProcessor) Process(ctx context.Context, b *host.Batch, wm sdk.Watermark) (*host.Batch, error) {
	if c.p.dead.Load() {
		return nil, errUnavailable
	}
	// In-process processors share the events; give the processor its own copies as the
	// protocol would.
	return c.Processor.Process(ctx, b.Share(), wm)
}

func (c crashProcessor) Snapshot(ctx context.Context) ([]byte, error) {
	if c.p.dead.Load() {
		return nil, errUnavailable
	}
	return c.Processor.Snapshot(ctx)
}

type crashSink struct {
	host.Sink
	p *crashPlugin
}

func (c crashSink) Write(ctx context.Context, id uint64, b *host.Batch) error {
	if c.p.dead.Load() {
		return &host.TransportError{Err: errUnavailable}
	}
	return c.Sink.Write(ctx, id, b)
}

func (l *crashable) Launch(ctx context.Context, c *config.Component, logger hclog.Logger) (runtime.Plugin, error) {
	p, err := l.InProcessLauncher.Launch(ctx, c, logger)
	if err != nil {
		return nil, err
	}
	cp := &crashPlugin{Plugin: p}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.launches[c.Address()]++
	l.current[c.Address()] = cp
	return cp, nil
}

func (l *crashable) kill(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.current[addr].Kill()
}

func TestCrashedProcessorIsRestoredAndReplayed(t *testing.T) {
	out := &collector{}
	src := `
agent {
  data_dir            = "DATADIR"
  checkpoint_interval = "30ms"
}
source "gen" "numbers" {
  count = 3000
  batch = 10
  every = "1ms"
}
processor "counter" "c" { every = 100 }
sink "collect" "out" {}
pipeline "main" {
  from    = [source.gen.numbers]
  through = [processor.counter.c]
  to      = [sink.collect.out]
}
`
	comps := map[string]sdk.Component{"source.gen": genComponent(), "processor.counter": counterComponent(),
		"sink.collect": collectorComponent("collect", out)}
	l := &crashable{InProcessLauncher: runtime.InProcessLauncher{Components: comps},
		launches: map[string]int{}, current: map[string]*crashPlugin{}}
	h := newHarness(t, src, comps)
	rt, store := h.start(l)
	for _, at := range []int{400, 1100, 2000} {
		waitFor(t, "progress", 20*time.Second, func() bool { return len(out.lines(sdk.KindLog)) >= at })
		l.kill("processor.counter.c")
	}
	waitFor(t, "every line", 30*time.Second, func() bool { return len(out.lines(sdk.KindLog)) >= 3000 })
	stop(t, rt, store)
	if n := l.launches["processor.counter.c"]; n != 4 {
		t.Fatalf("processor launched %d times, want 4", n)
	}
	lines := out.lines(sdk.KindLog)
	if len(lines) != 3000 {
		t.Fatalf("%d lines delivered, want exactly 3000", len(lines))
	}
	// The counter's numbering never restarted: its state was rebuilt after each crash.
	for i, e := range out.snapshot() {
		_ = i
		if e.Kind == sdk.KindLog && e.Field("n") != strconv.Itoa(atoiMust(string(e.Line))+1) {
			t.Fatalf("line %s numbered %s after a crash", e.Line, e.Field("n"))
		}
	}
	if got := out.lines(sdk.KindAlert); len(got) != 30 {
		t.Fatalf("%d alerts, want 30 (one per 100 lines, none lost or repeated)", len(got))
	}
}

func atoiMust(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func TestCrashedSinkGetsTheBatchAgain(t *testing.T) {
	out := &collector{}
	src := `
agent { data_dir = "DATADIR" }
source "gen" "numbers" {
  count = 500
  batch = 5
  every = "1ms"
}
sink "collect" "out" {}
pipeline "main" {
  from = [source.gen.numbers]
  to   = [sink.collect.out]
}
`
	comps := map[string]sdk.Component{"source.gen": genComponent(), "sink.collect": collectorComponent("collect", out)}
	l := &crashable{InProcessLauncher: runtime.InProcessLauncher{Components: comps},
		launches: map[string]int{}, current: map[string]*crashPlugin{}}
	h := newHarness(t, src, comps)
	rt, store := h.start(l)
	waitFor(t, "progress", 10*time.Second, func() bool { return len(out.lines(sdk.KindLog)) >= 100 })
	l.kill("sink.collect.out")
	waitFor(t, "every line", 20*time.Second, func() bool { return len(out.lines(sdk.KindLog)) >= 500 })
	stop(t, rt, store)
	if got := len(out.lines(sdk.KindLog)); got != 500 {
		t.Fatalf("%d lines, want 500", got)
	}
	if l.launches["sink.collect.out"] != 2 {
		t.Fatalf("sink launched %d times", l.launches["sink.collect.out"])
	}
	if h := rt.Health().Components(); len(h) == 0 {
		t.Fatal("no health recorded")
	}
}

func TestFanOutToTwoPipelines(t *testing.T) {
	a, b := &collector{}, &collector{}
	src := `
agent { data_dir = "DATADIR" }
source "gen" "numbers" {
  count = 300
  batch = 10
}
processor "counter" "one" { every = 100 }
processor "counter" "two" { every = 150 }
sink "collect" "a" {}
sink "collect" "b" {}
pipeline "first" {
  from    = [source.gen.numbers]
  through = [processor.counter.one]
  to      = [sink.collect.a]
}
pipeline "second" {
  from    = [source.gen.numbers]
  through = [processor.counter.two]
  to      = [sink.collect.b]
}
`
	comps := map[string]sdk.Component{"source.gen": genComponent(), "processor.counter": counterComponent(),
		"sink.collect": collectorComponent("collect", nil)}
	launcher := &perInstanceLauncher{InProcessLauncher: runtime.InProcessLauncher{Components: comps},
		sinks: map[string]*collector{"sink.collect.a": a, "sink.collect.b": b}}
	h := newHarness(t, src, comps)
	rt, store := h.start(launcher)
	waitFor(t, "both pipelines", 10*time.Second, func() bool {
		return len(a.lines(sdk.KindLog)) == 300 && len(b.lines(sdk.KindLog)) == 300
	})
	stop(t, rt, store)
	if len(a.lines(sdk.KindAlert)) != 3 || len(b.lines(sdk.KindAlert)) != 2 {
		t.Fatalf("alerts a=%v b=%v", a.lines(sdk.KindAlert), b.lines(sdk.KindAlert))
	}
	// Each pipeline got its own copy of the events.
	for _, e := range b.snapshot() {
		if e.Kind == sdk.KindLog && e.Field("n") != strconv.Itoa(atoiMust(string(e.Line))+1) {
			t.Fatalf("pipelines shared mutable events: %s has n=%s", e.Line, e.Field("n"))
		}
	}
}

func TestReplayModeFlushesAndEnds(t *testing.T) {
	out := &collector{}
	src := `
source "gen" "numbers" {
  count  = 250
  follow = false
}
processor "counter" "c" { every = 100 }
sink "collect" "out" {}
pipeline "main" {
  from    = [source.gen.numbers]
  through = [processor.counter.c]
  to      = [sink.collect.out]
}
`
	comps := map[string]sdk.Component{"source.gen": genComponent(), "processor.counter": counterComponent(),
		"sink.collect": collectorComponent("collect", out)}
	h := newHarness(t, src, comps)
	rt, err := runtime.New(runtime.Options{Config: h.config(), Launcher: &runtime.InProcessLauncher{Components: comps}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := rt.Start(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rt.SourcesEnded():
	case <-time.After(10 * time.Second):
		t.Fatal("sources did not end")
	}
	if err := rt.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rt.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(out.lines(sdk.KindLog)); got != 250 {
		t.Fatalf("%d lines", got)
	}
	final := 0
	for _, e := range out.snapshot() {
		if e.Kind == sdk.KindAudit && e.Field("final") == "true" {
			final++
		}
	}
	if final != 1 {
		t.Fatalf("the final watermark reached the processor %d times", final)
	}
}

// Input held for replay past the hold asks for a checkpoint ahead of the interval, at most
// one a second.
func TestHeldInputAsksForACheckpointBeforeTheInterval(t *testing.T) {
	tests := []struct {
		name      string
		holdBytes int
		commits   bool
	}{
		{"input past the limit is committed early", 4 << 10, true},
		{"input under the limit waits for the interval", 64 << 20, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := &collector{}
			src := `
agent {
  data_dir            = "DATADIR"
  checkpoint_interval = "1h"
}
source "gen" "numbers" {
  count = 5000
  batch = 100
}
processor "counter" "c" { every = 1000 }
sink "collect" "out" {}
pipeline "main" {
  from    = [source.gen.numbers]
  through = [processor.counter.c]
  to      = [sink.collect.out]
}
`
			comps := map[string]sdk.Component{"source.gen": genComponent(), "processor.counter": counterComponent(),
				"sink.collect": collectorComponent("collect", out)}
			h := newHarness(t, src, comps)
			start := time.Now()
			rt, store := h.startWith(nil, func(o *runtime.Options) { o.ReplayHoldBytes = tt.holdBytes })
			waitFor(t, "every line", 10*time.Second, func() bool { return len(out.lines(sdk.KindLog)) == 5000 })
			committed := func() string {
				var v []byte
				_ = store.View(func(tx *state.Tx) error {
					v, _ = tx.Get([]string{"checkpoints", "source.gen.numbers"}, []byte("next"))
					return nil
				})
				return string(v)
			}
			if tt.commits {
				waitFor(t, "an early checkpoint", 10*time.Second, func() bool { return committed() != "" })
				// The hold is reached at nearly every batch; the checkpoints it asks for are
				// at most one a second.
				if n, most := counterValue(t, rt, "tda_checkpoint_commits_total"), time.Since(start).Seconds()+2; n > most {
					t.Errorf("%.0f checkpoints in %s: early ones are at most one a second", n, time.Since(start))
				}
			} else {
				time.Sleep(300 * time.Millisecond)
				if got := committed(); got != "" {
					t.Errorf("checkpoint %q committed before the interval", got)
				}
			}
			stop(t, rt, store)
		})
	}
}
