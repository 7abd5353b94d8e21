package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tda-dev/tda/agent/ops"
	"github.com/tda-dev/tda/sdk/termsafe"
)

// incidentRecovery reads an incident's recovery view through the running agent (or the state
// store and the config's snapshot targets). It prints the problem and returns nil on failure.
func (e *Env) incidentRecovery(ctx context.Context, configPath, addr, token, incident string) *ops.IncidentRecovery {
	conn, _ := e.connect(controlFlags{config: &configPath, addr: &addr, token: &token})
	if conn == nil {
		return nil
	}
	defer release(conn)
	rec, err := conn.Recovery(ctx, incident)
	if err != nil {
		e.Errorf("%v", err)
		return nil
	}
	return &rec
}

// targetRecovery returns the named target's part of rec ("" = the only one).
func targetRecovery(rec *ops.IncidentRecovery, name string) (*ops.TargetRecovery, error) {
	var names []string
	for i := range rec.Targets {
		names = append(names, rec.Targets[i].Name)
		if rec.Targets[i].Name == name || (name == "" && len(rec.Targets) == 1) {
			return &rec.Targets[i], nil
		}
	}
	return nil, fmt.Errorf("no snapshot target %q among %s", name, strings.Join(names, ", "))
}

// writeIncidentRecovery prints a target's recovery points around the incident's first event,
// newest first: during (and after) above the line, before below it, the default marked.
func writeIncidentRecovery(w io.Writer, in ops.IncidentRef, tr ops.TargetRecovery, now time.Time) {
	s := termsafe.String
	fmt.Fprintf(w, "Recovery points of %s %s (sink %q) for incident %s\n", tr.Kind, s(tr.Target), tr.Name, s(in.Describe()))
	if tr.Error != "" {
		fmt.Fprintf(w, "Error: %s\n", s(tr.Error))
	}
	switch d := tr.Default; {
	case d != nil && d.PointInTime:
		fmt.Fprintf(w, "Default restore: point in time %s (%s)\n", d.Time.Format(time.RFC3339), d.Relation)
	case d != nil:
		fmt.Fprintf(w, "Default restore: snapshot %s (%s)\n", s(d.SnapshotID), d.Relation)
	default:
		fmt.Fprintf(w, "Default restore: none: %s\n", s(tr.Note))
	}
	for _, p := range tr.Points {
		if p.Evidence {
			fmt.Fprintf(w, "Evidence: anomaly snapshot %s, taken for this incident's alert (%s)\n", s(p.SnapshotID), p.Relation)
		}
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PHASE\tRECOVERY POINT\tTAKEN\tAGE\tSTATUS\tTRIGGER\tRELATION")
	line := false
	for _, p := range tr.Points {
		if p.Phase == ops.PhaseBefore && !line {
			fmt.Fprintf(tw, "-----\tfirst event %s\n", in.FirstEvent.Format(time.RFC3339Nano))
			line = true
		}
		id := p.SnapshotID
		if p.PointInTime {
			id = "point in time"
		}
		mark := ""
		switch {
		case p.Default:
			mark = " (default)"
		case p.Evidence:
			mark = " (evidence)"
		}
		fmt.Fprintf(tw, "%s\t%s%s\t%s\t%s\t%s\t%s\t%s\n", p.Phase, s(id), mark, p.Time.Format(time.RFC3339),
			spellAge(now.Sub(p.Time)), s(orDashCLI(p.Status)), s(orDashCLI(p.Trigger)), p.Relation)
	}
	if !line {
		fmt.Fprintf(tw, "-----\tfirst event %s\n", in.FirstEvent.Format(time.RFC3339Nano))
	}
	tw.Flush()
	fmt.Fprintln(w, "\nPoints from during or after the incident may hold its changes: tda restore takes them only with -allow-during.")
}

func spellAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	if d >= time.Hour {
		return d.Round(time.Minute).String()
	}
	return d.Round(time.Second).String()
}

func orDashCLI(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// incidentPoint picks what a restore from an incident starts from: the chosen snapshot, or the
// default when none was chosen, and refuses a point from during or after the incident unless
// allowDuring. A time (-to-time) is checked against the plan's recovery point instead.
func incidentPoint(tr *ops.TargetRecovery, in ops.IncidentRef, snapshotID string, allowDuring bool) (ops.RecoveryPoint, error) {
	if snapshotID == "" {
		if tr.Default == nil {
			return ops.RecoveryPoint{}, fmt.Errorf("%s has no recovery point before the first event of incident %s (%s): "+
				"choose one with -snapshot and pass -allow-during", tr.Target, in.Describe(), tr.Note)
		}
		return *tr.Default, nil
	}
	for _, p := range tr.Points {
		if p.SnapshotID == snapshotID {
			return p, duringAllowed(p, tr, allowDuring)
		}
	}
	return ops.RecoveryPoint{}, fmt.Errorf("no snapshot %s of %s: see tda snapshot list -incident %s", snapshotID, tr.Target, in.ID)
}

// duringAllowed refuses a point from during or after the incident without -allow-during.
func duringAllowed(p ops.RecoveryPoint, tr *ops.TargetRecovery, allowDuring bool) error {
	if p.Phase == ops.PhaseBefore || allowDuring {
		return nil
	}
	what := "snapshot " + p.SnapshotID
	if p.SnapshotID == "" {
		what = "the recovery point " + p.Time.Format(time.RFC3339Nano)
	}
	alt := "there is no point before the incident"
	if d := tr.Default; d != nil {
		alt = "the default is "
		if d.PointInTime {
			alt += "the point in time " + d.Time.Format(time.RFC3339)
		} else {
			alt += "snapshot " + d.SnapshotID
		}
		alt += " (" + d.Relation + "): leave out -snapshot and -to-time to take it"
	}
	return fmt.Errorf("%s: %s; pass -allow-during to restore it anyway; %s", what, p.Warning, alt)
}

// writeNextSteps prints the connection details and what to do after a restore.
func writeNextSteps(w io.Writer, r ops.Restore) {
	if c := r.Connection; c != nil {
		secret := "the password of the postgres block"
		if c.Kind == "aurora" {
			secret = "the source cluster's master user and password"
		}
		fmt.Fprintf(w, "  connection      %s (credentials: %s)\n", termsafe.String(c.String()), secret)
	}
	if r.Relation != "" {
		fmt.Fprintf(w, "  relative to     the incident: %s\n", r.Relation)
	}
	fmt.Fprintln(w, "Next steps:")
	for i, s := range r.NextSteps {
		fmt.Fprintf(w, "  %d. %s\n", i+1, termsafe.String(s))
	}
}
