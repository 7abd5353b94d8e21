package rules

import (
	"github.com/tda-dev/tda/plugins/detect/parse"
	"github.com/tda-dev/tda/sdk"
)

// Decision says whether one rule counts an event and, when it does not, why.
type Decision struct {
	Rule    string `json:"rule"`
	Counted bool   `json:"counted"`
	// Reason is why the event is not counted (`unless holds: actor_role == admin`, `inside
	// the maintenance window ...`, `an approved migration`); for a counted event it notes
	// what made it count when that is not obvious (no approved migration request).
	Reason string `json:"reason,omitempty"`
}

// Trace reports, for every rule whose match list names the event's type, in config order,
// whether the rule would count the event now: its where and unless conditions, the approvals
// the engine has seen and its exemptions (maintenance windows). Rules that do not match the
// type are left out, so an empty result means no rule matches the event. Trace reads the
// engine and changes nothing; call it before Event to see the decision Event takes.
func (e *Engine) Trace(ev *sdk.Event) []Decision {
	typ := ev.Field(parse.FieldEvent)
	if typ == "" {
		return nil
	}
	rs := e.byEvent[typ]
	if len(rs) == 0 {
		return nil
	}
	out := make([]Decision, 0, len(rs))
	for _, r := range rs {
		ok, why := r.counts(ev, e.approved.approved)
		if ok && r.RequireApproval {
			why = "no approved migration request matches revision " + quoteOrNone(ev.Field(parse.FieldRevision))
		}
		out = append(out, Decision{Rule: r.Name, Counted: ok, Reason: why})
	}
	return out
}

func quoteOrNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return `"` + s + `"`
}
