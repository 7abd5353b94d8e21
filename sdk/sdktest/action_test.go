package sdktest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/tda-dev/tda/sdk"
)

type greeter struct {
	greeting string
	started  bool
}

func (*greeter) Write(context.Context, sdk.Batch) error { return nil }
func (g *greeter) Start(context.Context) error {
	g.started = true
	return nil
}

var greeterComp = sdk.SinkComponent("greeter",
	&sdk.Spec{Fields: []sdk.Field{{Name: "greeting", Type: sdk.TypeString, Required: true}}},
	func(cfg *sdk.Config, _ sdk.Resources) (sdk.Sink, error) {
		return &greeter{greeting: cfg.String("greeting")}, nil
	}).WithActions(
	sdk.Action{Name: "greet", Starts: true, Run: func(_ context.Context, c any, req sdk.ActionRequest) ([]byte, error) {
		g := c.(*greeter)
		var who string
		if err := json.Unmarshal(req.Args, &who); err != nil || who == "" {
			return nil, sdk.ActionInvalid("greet whom?")
		}
		req.Progress("greeting " + who)
		return json.Marshal(fmt.Sprintf("%s, %s (from %s, started %v)", g.greeting, who, req.Actor, g.started))
	}})

func TestCallAction(t *testing.T) {
	got := CallAction(context.Background(), t, greeterComp, `greeting = "hello"`, "greet", []byte(`"bob"`), "alice")
	if got.Err != nil || string(got.Result) != `"hello, bob (from alice, started true)"` || fmt.Sprint(got.Progress) != "[greeting bob]" {
		t.Fatalf("%+v", got)
	}
	bad := CallAction(context.Background(), t, greeterComp, `greeting = "hello"`, "greet", nil, "alice")
	if sdk.ActionErrorKindOf(bad.Err) != sdk.ActionErrInvalid {
		t.Fatalf("%+v", bad)
	}
}
