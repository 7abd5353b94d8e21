package detect

import (
	"context"
	"encoding/json"

	"github.com/tda-dev/tda/plugins/detect/rules"
	"github.com/tda-dev/tda/sdk"
)

// RulesDescription is the result of action "rules.describe": the rules of the instance, in
// config order.
type RulesDescription struct {
	Rules []RuleDescription `json:"rules"`
}

// RuleDescription is one rule as rules.describe reports it.
type RuleDescription struct {
	Name      string   `json:"name"`
	Match     []string `json:"match"`
	Severity  string   `json:"severity"`
	Threshold int64    `json:"threshold"`
	Window    string   `json:"window"`
	GroupBy   []string `json:"group_by"`
	// MaintenanceWindows are the times the rule lets its events pass (a migration rule's
	// windows); the agent lets `tda migrate begin` proceed only inside the windows of the
	// rules that match migration_started.
	MaintenanceWindows []sdk.MaintenanceWindow `json:"maintenance_windows"`
}

func runDescribeRules(_ context.Context, component any, req sdk.ActionRequest) ([]byte, error) {
	p, err := rulesOf(component)
	if err != nil {
		return nil, err
	}
	// The action takes no request; an object with keys is a caller's mistake.
	var none struct{}
	if err := decodeArgs(ActionDescribeRules, req.Args, &none); err != nil {
		return nil, err
	}
	return json.Marshal(describeRules(p.rules))
}

func describeRules(rs []*rules.Rule) RulesDescription {
	out := RulesDescription{Rules: []RuleDescription{}}
	for _, r := range rs {
		d := RuleDescription{Name: r.Name, Match: append([]string{}, r.Match...), Severity: r.Severity,
			Threshold: r.Threshold, Window: sdk.FormatDuration(r.Window), GroupBy: append([]string{}, r.GroupBy...),
			MaintenanceWindows: []sdk.MaintenanceWindow{}}
		for _, x := range r.Exemptions {
			if w, ok := x.(*rules.MaintenanceWindow); ok {
				d.MaintenanceWindows = append(d.MaintenanceWindows, *w.Window())
			}
		}
		out.Rules = append(out.Rules, d)
	}
	return out
}
