package sdktest

import (
	"context"
	"testing"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
)

// ActionCall is the outcome of CallAction: the action's JSON result or error (with its kind,
// see sdk.ActionErrorKindOf), and the progress lines it sent.
type ActionCall struct {
	Result   []byte
	Progress []string
	Err      error
}

// CallAction configures comp with the HCL body src as the agent does for an operator action
// (not started until an action asks for it), calls the action over the real protocol with
// args (JSON, may be nil) and actor, and closes the instance. ctx cancelled mid-action
// cancels the action's context. The Direct mode is not offered: actions always cross the
// protocol. A configuration the component refuses fails the test.
func CallAction(ctx context.Context, t testing.TB, comp sdk.Component, src, action string, args []byte, actor string, opts ...Option) ActionCall {
	t.Helper()
	o := collect(t, comp, opts)
	c := conn(t, comp, o.server).ForInstance(o.instance)
	var configureFn func(context.Context, host.Configuration) (host.Configured, error)
	var closeFn func(context.Context) error
	switch comp.Kind {
	case sdk.KindSource:
		s := c.Source()
		configureFn, closeFn = s.Configure, s.Close
	case sdk.KindProcessor:
		p := c.Processor()
		configureFn, closeFn = p.Configure, p.Close
	default:
		s := c.Sink()
		configureFn, closeFn = s.Configure, s.Close
	}
	data := Config(t, comp, src)
	res, err := configureFn(context.Background(), host.Configuration{Component: comp.Name, Instance: o.instance,
		Config: data, DataDir: o.dataDir, ActionsOnly: true})
	if err != nil {
		t.Fatalf("configure %s: %v", o.instance, err)
	}
	if res.Diagnostics.HasErrors() {
		t.Fatalf("configure %s: %v", o.instance, res.Diagnostics.Err())
	}
	defer func() { _ = closeFn(context.Background()) }()
	var call ActionCall
	call.Result, call.Err = c.CallAction(ctx, action, args, actor, func(line string) { call.Progress = append(call.Progress, line) })
	return call
}
