package ops

import (
	"context"
	"encoding/json"
)

// RepairRequest asks the agent for a repair plan, or to apply one (docs/recovery.md, "Repair").
type RepairRequest struct {
	// Target is the snapshot block whose connection settings reach both databases ("" when
	// there is one).
	Target string `json:"target,omitempty"`
	// Restore is the database tda restore created.
	Restore string `json:"restore"`
	// Incident is an alert's fingerprint (or a unique prefix).
	Incident string   `json:"incident,omitempty"`
	Table    string   `json:"table,omitempty"`
	Columns  []string `json:"columns,omitempty"`
	Keys     []string `json:"keys,omitempty"`
	// Events are the app's log lines whose events name the rows in scope (the lines
	// themselves: the agent reads no file on a caller's behalf); Actor keeps one actor's
	// events. Without them, the incident's time range selects the rows.
	Events []string `json:"events,omitempty"`
	Actor  string   `json:"actor,omitempty"`
	// Confirm must be the live database's name to apply (as a restore asks for the target's).
	Confirm string `json:"confirm,omitempty"`
	Reason  string `json:"reason,omitempty"`
	By      string `json:"by,omitempty"`
}

// RepairOutcome is a plan, and after an apply its result.
type RepairOutcome struct {
	// Live is the live database the plan writes into (what Confirm must name).
	Live    string `json:"live"`
	Summary string `json:"summary"`
	// Plan and Result are the provider's JSON (the bundled provider's: docs/recovery.md).
	Plan              json.RawMessage `json:"plan"`
	Result            json.RawMessage `json:"result,omitempty"`
	Applied           bool            `json:"applied"`
	PreRepairSnapshot string          `json:"pre_repair_snapshot,omitempty"`
}

// Repairs plans and applies repairs inside the agent (nil when the agent has no snapshot
// target). The API and the panel reach it; the CLI runs the same code in its own process.
type Repairs interface {
	PlanRepair(ctx context.Context, req RepairRequest) (RepairOutcome, error)
	ApplyRepair(ctx context.Context, by Actor, req RepairRequest) (RepairOutcome, error)
}
