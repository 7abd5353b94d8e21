package sdktest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

// counter emits lines "n" numbered from its checkpoint, `count` in all, in batches of 10.
type counter struct{ count int64 }

func (c *counter) Run(ctx context.Context, out sdk.Output) error {
	var next int64
	if v, ok := out.Checkpoints()["next"]; ok {
		fmt.Sscanf(string(v), "%d", &next)
	}
	for next < c.count {
		var batch []sdk.Event
		for i := 0; i < 10 && next < c.count; i++ {
			batch = append(batch, sdk.Event{Kind: sdk.KindLog, Source: "counter.test",
				Line: []byte(fmt.Sprint(next)), Time: time.Unix(0, next).UTC()})
			next++
		}
		if err := out.Emit(ctx, batch, sdk.Checkpoint{Key: "next", Value: []byte(fmt.Sprint(next))}); err != nil {
			return nil
		}
	}
	out.SetStatus(sdk.Status{Healthy: true, Reason: "done"})
	<-ctx.Done()
	return nil
}

var counterSpec = &sdk.Spec{Summary: "counts", Fields: []sdk.Field{
	{Name: "count", Type: sdk.TypeInt, Required: true},
	{Name: "every", Type: sdk.TypeDuration, Default: "1s"},
	{Name: "mode", Type: sdk.TypeString, Default: "fast", Enum: []string{"fast", "slow"}},
}}

func counterComponent() sdk.Component {
	return sdk.SourceComponent("counter", counterSpec, func(c *sdk.Config, _ sdk.Resources) (sdk.Source, error) {
		if c.Int("count") < 0 {
			return nil, c.Errorf("count", "count must not be negative")
		}
		return &counter{count: c.Int("count")}, nil
	})
}

type upper struct {
	suffix string
	seen   int
}

func (u *upper) Process(_ context.Context, events []sdk.Event, _ sdk.Watermark) ([]sdk.Event, error) {
	for i := range events {
		line := append([]byte(nil), events[i].Line...)
		for j, c := range line {
			if c >= 'a' && c <= 'z' {
				line[j] = c - 'a' + 'A'
			}
		}
		events[i].Line = append(line, u.suffix...)
		u.seen++
	}
	return events, nil
}
func (u *upper) Snapshot() ([]byte, error) { return []byte(fmt.Sprint(u.seen)), nil }
func (u *upper) Restore(b []byte) error {
	_, err := fmt.Sscanf(string(b), "%d", &u.seen)
	return err
}

func upperComponent() sdk.Component {
	spec := &sdk.Spec{Fields: []sdk.Field{{Name: "suffix", Type: sdk.TypeString}},
		Blocks: []sdk.Block{{Name: "rule", Labels: []string{"name"}, Repeated: true,
			Spec: &sdk.Spec{Fields: []sdk.Field{{Name: "window", Type: sdk.TypeDuration, Required: true}}}}}}
	return sdk.ProcessorComponent("upper", spec, func(c *sdk.Config, _ sdk.Resources) (sdk.Processor, error) {
		return &upper{suffix: c.String("suffix")}, nil
	})
}

type failing struct{ calls int }

func (f *failing) Write(_ context.Context, b sdk.Batch) error {
	f.calls++
	switch string(b.Events[0].Line) {
	case "permanent":
		return sdk.Permanent(errors.New("channel_is_archived"))
	case "later":
		return sdk.Retry(errors.New("rate_limited"), 3*time.Second)
	case "flaky":
		return errors.New("timeout")
	}
	return nil
}

func failingComponent() sdk.Component {
	return sdk.SinkComponent("failing", &sdk.Spec{}, func(*sdk.Config, sdk.Resources) (sdk.Sink, error) {
		return &failing{}, nil
	})
}

func modes() map[string]sdktest.Mode {
	return map[string]sdktest.Mode{"grpc": sdktest.GRPC, "direct": sdktest.Direct}
}

func TestSourceResumesFromCheckpoint(t *testing.T) {
	for name, mode := range modes() {
		t.Run(name, func(t *testing.T) {
			s := sdktest.NewSource(t, counterComponent(), `count = 35`, sdktest.WithMode(mode))
			s.Start(nil)
			first := s.Collect(20, 5*time.Second)
			if len(first) != 20 {
				t.Fatalf("got %d events, want 20", len(first))
			}
			s.Stop()
			cps := s.Checkpoints()
			if string(cps["next"]) != "20" {
				t.Fatalf("checkpoint next = %q, want 20", cps["next"])
			}
			s2 := sdktest.NewSource(t, counterComponent(), `count = 35`, sdktest.WithMode(mode))
			s2.Start(cps)
			rest := s2.Collect(15, 5*time.Second)
			if len(rest) != 15 || string(rest[0].Line) != "20" || string(rest[14].Line) != "34" {
				t.Fatalf("resume gave %d events starting %q", len(rest), rest[0].Line)
			}
			if got := rest[3].Time.UnixNano(); got != 23 {
				t.Fatalf("time = %d, want 23", got)
			}
		})
	}
}

func TestProcessorRoundTripAndState(t *testing.T) {
	for name, mode := range modes() {
		t.Run(name, func(t *testing.T) {
			p := sdktest.NewProcessor(t, upperComponent(), `
suffix = "!"
rule "a" { window = "60s" }
`, sdktest.WithMode(mode))
			in := []sdk.Event{
				{Kind: sdk.KindLog, Line: []byte("hello"), Fields: map[string]string{"k": "v"}},
				{Kind: sdk.KindLog, Line: []byte("bad \xff byte")},
			}
			out := p.Process(in)
			if len(out) != 2 || string(out[0].Line) != "HELLO!" || out[0].Field("k") != "v" {
				t.Fatalf("unexpected output %+v", out)
			}
			if !bytes.Equal(out[1].Line, []byte("BAD \xff BYTE!")) {
				t.Fatalf("invalid UTF-8 was changed: %q", out[1].Line)
			}
			st := p.Snapshot()
			if string(st) != "2" {
				t.Fatalf("snapshot %q", st)
			}
			p2 := sdktest.NewProcessor(t, upperComponent(), `suffix = "?"`, sdktest.WithMode(mode))
			p2.Restore(st)
			p2.Process(in[:1])
			if got := string(p2.Snapshot()); got != "3" {
				t.Fatalf("restored count %q, want 3", got)
			}
		})
	}
}

func TestSinkErrorsCrossTheProtocol(t *testing.T) {
	for name, mode := range modes() {
		t.Run(name, func(t *testing.T) {
			s := sdktest.NewSink(t, failingComponent(), ``, sdktest.WithMode(mode))
			ev := func(l string) sdk.Event { return sdk.Event{Kind: sdk.KindLog, Line: []byte(l)} }
			if err := s.Write(ev("fine")); err != nil {
				t.Fatalf("ok write: %v", err)
			}
			err := s.Write(ev("permanent"))
			if !sdk.IsPermanent(err) || !strings.Contains(err.Error(), "channel_is_archived") {
				t.Fatalf("permanent: %v", err)
			}
			err = s.Write(ev("later"))
			if after, ok := sdk.RetryAfter(err); !ok || after != 3*time.Second {
				t.Fatalf("retry-after: %v %v", after, ok)
			}
			err = s.Write(ev("flaky"))
			if err == nil || sdk.IsPermanent(err) {
				t.Fatalf("transient: %v", err)
			}
		})
	}
}

func TestValidateReportsPositions(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"missing", ``, `Missing required argument`},
		{"typo", "cuont = 4", `1:1: Unsupported argument: An argument named "cuont" is not expected here. Did you mean "count"?`},
		{"type", `count = "many"`, `1:9: Incorrect attribute value type`},
		{"fraction", `count = 1.5`, `1:9: Incorrect attribute value type`},
		{"duration", "count = 1\nevery = \"soon\"", `2:9: Invalid duration`},
		{"enum", "count = 1\nmode = \"fsat\"", `Did you mean "fast"?`},
		{"semantic", `count = -1`, `1:9: Invalid count: count must not be negative.`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := sdktest.Validate(t, counterComponent(), tt.src)
			joined := strings.Join(diags, "\n")
			if !strings.Contains(joined, tt.want) {
				t.Fatalf("diagnostics %q do not contain %q", joined, tt.want)
			}
		})
	}
	if d := sdktest.Validate(t, counterComponent(), `count = 3`); len(d) != 0 {
		t.Fatalf("valid config reported %v", d)
	}
}
