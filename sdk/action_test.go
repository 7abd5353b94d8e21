package sdk

import (
	"context"
	"strings"
	"testing"
)

func TestActionDeclarationsChecked(t *testing.T) {
	run := func(context.Context, any, ActionRequest) ([]byte, error) { return nil, nil }
	for _, tc := range []struct {
		actions []Action
		want    string
	}{
		{[]Action{{Name: "Snapshot.Create", Run: run}}, "action name"},
		{[]Action{{Name: "a..b", Run: run}}, "action name"},
		{[]Action{{Name: "", Run: run}}, "action name"},
		{[]Action{{Name: "list"}}, "has no Run"},
		{[]Action{{Name: "list", Run: run}, {Name: "list", Run: run}}, "declared twice"},
	} {
		comp := SinkComponent("s", nil, func(*Config, Resources) (Sink, error) { return nil, nil }).
			WithActions(tc.actions...)
		err := checkComponents([]Component{comp})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.actions, err, tc.want)
		}
	}
}
