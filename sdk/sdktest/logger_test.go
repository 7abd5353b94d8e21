package sdktest_test

import (
	"context"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

type loggingSink struct{ log hclog.Logger }

func (s *loggingSink) Write(context.Context, sdk.Batch) error {
	s.log.Info("wrote")
	return nil
}

// In both modes a component's log lines carry its instance name once, as in the agent.
func TestComponentLoggerIsNamedOnce(t *testing.T) {
	// Without WithLogger the test log is used: check the name the component gets.
	for _, mode := range []sdktest.Mode{sdktest.GRPC, sdktest.Direct} {
		var got hclog.Logger
		comp := sdk.SinkComponent("count", &sdk.Spec{}, func(_ *sdk.Config, res sdk.Resources) (sdk.Sink, error) {
			got = res.Logger
			return &loggingSink{log: res.Logger}, nil
		})
		sdktest.NewSink(t, comp, "", sdktest.WithMode(mode))
		if name := got.Name(); name != "sink.count.test" {
			t.Errorf("mode %v: the component's logger is named %q, want %q", mode, name, "sink.count.test")
		}
	}
}
