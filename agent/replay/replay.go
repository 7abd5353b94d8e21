// Package replay feeds log files through the processors of a configuration's detection
// pipeline, as fast as the machine allows and in the events' own time, and writes the
// resulting alerts as JSON lines. Operators use it to test rules against their history; it
// runs the same plugins and runtime as the agent, without sinks and without touching state.
package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/agent/config"
	"github.com/tda-dev/tda/agent/loader"
	"github.com/tda-dev/tda/agent/runtime"
	"github.com/tda-dev/tda/sdk"
)

// Options configure a replay.
type Options struct {
	Loaded *loader.Loaded
	// Pipeline names the pipeline whose processors run; "" picks the only one with processors.
	Pipeline string
	// Files are the log files, read from the beginning to the end, one after another.
	Files []string
	// Out receives one JSON line per output event.
	Out io.Writer
	// Kinds selects the output events (default: alerts).
	Kinds  []string
	Logger hclog.Logger
	// Launcher overrides how processors run (default: as plugin processes).
	Launcher runtime.Launcher
}

// Stats describes a finished replay.
type Stats struct {
	Events  int
	Elapsed time.Duration
}

// PickPipeline returns the pipeline whose processors a replay runs.
func PickPipeline(cfg *config.Config, name string) (*config.Pipeline, error) {
	if name != "" {
		p := cfg.Pipeline(name)
		if p == nil {
			return nil, fmt.Errorf("no pipeline named %q", name)
		}
		return p, nil
	}
	var withProcs []*config.Pipeline
	for _, p := range cfg.Pipelines {
		if len(p.Through) > 0 {
			withProcs = append(withProcs, p)
		}
	}
	switch len(withProcs) {
	case 0:
		return nil, fmt.Errorf("no pipeline of the configuration has processors; there is nothing to replay through")
	case 1:
		return withProcs[0], nil
	default:
		var names []string
		for _, p := range withProcs {
			names = append(names, p.Name)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("several pipelines have processors (%s); choose one with -pipeline", strings.Join(names, ", "))
	}
}

// Run replays the files and writes the output events.
func Run(ctx context.Context, opts Options) (Stats, error) {
	start := time.Now()
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if len(opts.Kinds) == 0 {
		opts.Kinds = []string{sdk.KindAlert}
	}
	p, err := PickPipeline(opts.Loaded.Config, opts.Pipeline)
	if err != nil {
		return Stats{}, err
	}
	srcConf, err := json.Marshal(map[string]any{"paths": opts.Files, "follow": false, "read_from": "beginning"})
	if err != nil {
		return Stats{}, err
	}
	src := &config.Component{Kind: sdk.KindSource, Type: "file", Name: "replay", Config: srcConf, Used: true}
	out := &config.Component{Kind: sdk.KindSink, Type: "replay_output", Name: "stdout", Config: []byte("{}"),
		Used: true, Sink: &config.SinkSettings{Kinds: opts.Kinds, MaxEvents: config.DefaultMaxEvents,
			MaxBytes: config.DefaultMaxBytes, RetryInitial: config.DefaultRetryInitial,
			RetryMax: config.DefaultRetryMax, FallbackAfter: config.DefaultFallbackAfter}}
	cfg := &config.Config{Agent: config.Agent{CheckpointInterval: time.Second, MaxInflight: config.DefaultMaxInflight},
		Components: []*config.Component{src, out}}
	pipe := &config.Pipeline{Name: "replay",
		From: []config.Ref{{Kind: sdk.KindSource, Type: src.Type, Name: src.Name}},
		To:   []config.Ref{{Kind: sdk.KindSink, Type: out.Type, Name: out.Name}}}
	for _, r := range p.Through {
		c := opts.Loaded.Config.Component(r)
		if c == nil || c.Config == nil {
			return Stats{}, fmt.Errorf("processor %s is not decoded", r.Address())
		}
		cfg.Components = append(cfg.Components, c)
		pipe.Through = append(pipe.Through, r)
	}
	cfg.Pipelines = []*config.Pipeline{pipe}

	w := &writer{out: opts.Out}
	launcher := opts.Launcher
	if launcher == nil {
		launcher = &runtime.ProcessLauncher{Registry: opts.Loaded.Registry}
	}
	launcher = runtime.MixedLauncher{
		&runtime.InProcessLauncher{Components: map[string]sdk.Component{"sink.replay_output": w.component()}},
		launcher,
	}
	rt, err := runtime.New(runtime.Options{Config: cfg, Launcher: launcher, Logger: opts.Logger})
	if err != nil {
		return Stats{}, err
	}
	if err := rt.Start(ctx); err != nil {
		return Stats{}, err
	}
	stop := func() error {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return rt.Stop(stopCtx)
	}
	select {
	case <-rt.SourcesEnded():
	case <-ctx.Done():
		_ = stop()
		return Stats{}, ctx.Err()
	}
	if err := rt.Flush(ctx); err != nil {
		_ = stop()
		return Stats{}, err
	}
	if err := stop(); err != nil {
		return Stats{}, err
	}
	if w.err != nil {
		return Stats{}, w.err
	}
	return Stats{Events: w.n, Elapsed: time.Since(start)}, nil
}

// writer is the in-process sink that prints the replay's output.
type writer struct {
	mu  sync.Mutex
	out io.Writer
	buf []byte
	n   int
	err error
}

func (w *writer) component() sdk.Component {
	return sdk.SinkComponent("replay_output", &sdk.Spec{}, func(*sdk.Config, sdk.Resources) (sdk.Sink, error) {
		return w, nil
	})
}

func (w *writer) Write(_ context.Context, b sdk.Batch) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	buf := w.buf[:0]
	for i := range b.Events {
		buf = b.Events[i].AppendJSON(buf)
		buf = append(buf, '\n')
	}
	w.buf = buf
	w.n += len(b.Events)
	if _, err := w.out.Write(buf); err != nil {
		w.err = fmt.Errorf("write output: %w", err)
		return sdk.Permanent(w.err)
	}
	return nil
}
