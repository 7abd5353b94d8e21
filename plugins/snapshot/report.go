package snapshot

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tda-dev/tda/plugins/snapshot/provider"
	"github.com/tda-dev/tda/plugins/snapshot/retention"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/termsafe"
)

// Age formats a duration for operators: "3h2m", "1d12h", "45s".
func Age(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	if d >= time.Hour {
		d = d.Round(time.Minute)
	} else {
		d = d.Round(time.Second)
	}
	return sdk.FormatDuration(d)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func verdict(d retention.Decision) string {
	v := "delete"
	if d.Keep {
		v = "keep"
	}
	return v + ": " + strings.Join(d.Reasons, ", ")
}

// safe escapes what came from outside (a provider's ids, statuses and tags, error texts) so that
// it cannot act on the terminal or forge a row (sdk/termsafe).
func safe(s string) string { return termsafe.String(s) }

// WriteListing prints a Listing: each tier with its RPO, then its snapshots.
func WriteListing(w io.Writer, l Listing) {
	fmt.Fprintf(w, "Snapshots of %s %s (sink %q), %s\n", l.Kind, l.Target, l.Name, stamp(l.Now))
	if l.Quota != nil {
		fmt.Fprintf(w, "Quota: %s %d of %d used\n", l.Quota.Name, l.Quota.Used, l.Quota.Max)
	}
	for _, warn := range l.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", safe(warn))
	}
	for _, t := range l.Tiers {
		fmt.Fprintln(w)
		rpo := "RPO -"
		if !t.Newest.IsZero() {
			rpo = "RPO " + Age(t.RPO)
		}
		switch {
		case t.Name == TierPointInTime && t.Window != nil:
			fmt.Fprintf(w, "%-19s %-12s restorable %s .. %s\n", t.Name, rpo, stamp(t.Window.Earliest), stamp(t.Window.Latest))
			continue
		case t.Name == TierPointInTime:
			fmt.Fprintf(w, "%-19s %-12s window unknown\n", t.Name, rpo)
			continue
		case len(t.Snapshots) == 0:
			fmt.Fprintf(w, "%-19s %-12s no snapshots\n", t.Name, rpo)
			continue
		}
		fmt.Fprintf(w, "%-19s %-12s %d snapshot(s)\n", t.Name, rpo, len(t.Snapshots))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  ID\tTAKEN\tAGE\tSTATUS\tAPP\tRETENTION")
		for _, d := range t.Snapshots {
			s := d.Snapshot
			status := s.Status
			if s.Detail != "" {
				status += " (" + s.Detail + ")"
			}
			app := s.Tags[provider.TagAppVersion]
			if app == "" {
				app = "-"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", safe(s.ID), stamp(s.Time), Age(l.Now.Sub(s.Time)), safe(status), safe(app), safe(verdict(d)))
		}
		tw.Flush()
	}
}

// PolicyString describes a retention policy in the config's words.
func PolicyString(p retention.Policy) string {
	parts := []string{fmt.Sprintf("keep_daily %d, keep_weekly %d, keep_monthly %d", p.Daily, p.Weekly, p.Monthly)}
	for _, t := range []string{provider.TriggerPreMigration, provider.TriggerAnomaly, provider.TriggerManual} {
		if d := p.KeepFor[t]; d > 0 {
			parts = append(parts, fmt.Sprintf("%s for %s", t, sdk.FormatDuration(d)))
		} else {
			parts = append(parts, t+" forever")
		}
	}
	return strings.Join(parts, ", ")
}

// WritePrune prints every snapshot with keep or delete and the reason, then a summary.
func WritePrune(w io.Writer, m *Manager, rep PruneReport) {
	now := m.now()
	fmt.Fprintf(w, "Retention for %s %s: %s\n", m.prov.Kind(), m.prov.Target(), PolicyString(m.settings.Retention))
	if rep.DryRun {
		fmt.Fprintln(w, "Dry run: nothing is deleted.")
	}
	if len(rep.Decisions) == 0 {
		fmt.Fprintln(w, "No snapshots.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTAKEN\tAGE\tTRIGGER\tACTION\tREASON")
	kept, gone, failed := 0, 0, 0
	for _, d := range rep.Decisions {
		s := d.Snapshot
		action := "keep"
		switch {
		case d.Keep:
			kept++
		case rep.Failed[s.ID] != nil:
			action = "FAILED"
			failed++
		case rep.DryRun:
			action = "delete"
			gone++
		default:
			action = "deleted"
			gone++
		}
		trigger := s.Trigger()
		if trigger == "" {
			trigger = "-"
		}
		reason := strings.Join(d.Reasons, ", ")
		if err := rep.Failed[s.ID]; err != nil {
			reason += "; delete failed: " + err.Error()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", safe(s.ID), stamp(s.Time), Age(now.Sub(s.Time)), safe(trigger), action, safe(reason))
	}
	tw.Flush()
	verb := "deleted"
	if rep.DryRun {
		verb = "to delete"
	}
	fmt.Fprintf(w, "%d kept, %d %s", kept, gone, verb)
	if failed > 0 {
		fmt.Fprintf(w, ", %d could not be deleted", failed)
	}
	fmt.Fprintln(w, ".")
}

// WriteRestorePlan prints what a restore will do.
func WriteRestorePlan(w io.Writer, p RestorePlan) {
	what := "cluster"
	if p.Kind == "postgres" {
		what = "database"
	}
	fmt.Fprintf(w, "Restore plan (%s)\n", p.Kind)
	fmt.Fprintf(w, "  protected %-9s %s (left untouched)\n", what, safe(p.Source))
	fmt.Fprintf(w, "  new %-15s %s\n", what, safe(p.NewName))
	if p.Snapshot != nil {
		fmt.Fprintf(w, "  from snapshot       %s (%s, app %s)\n", safe(p.Snapshot.ID), safe(p.Snapshot.Trigger()),
			safe(orDash(p.Snapshot.Tags[provider.TagAppVersion])))
	} else {
		fmt.Fprintf(w, "  to point in time    %s\n", stamp(p.ToTime))
	}
	fmt.Fprintf(w, "  recovery point      %s (changes after it are not restored)\n", stamp(p.RecoveryPoint))
	if p.Kind == "aurora" {
		fmt.Fprintf(w, "  then                create instance %s-instance-1 so the cluster serves connections\n", p.NewName)
	}
	if p.Note != "" {
		fmt.Fprintf(w, "  note                %s\n", safe(p.Note))
	}
}

// WriteRestoreReport prints a finished restore with its RPO and RTO.
func WriteRestoreReport(w io.Writer, r RestoreReport) {
	fmt.Fprintf(w, "Restored into %s.\n", safe(r.Result.Name))
	for _, c := range r.Result.Created {
		fmt.Fprintf(w, "  created         %s\n", safe(c))
	}
	if r.Result.Endpoint != "" {
		fmt.Fprintf(w, "  connect         %s\n", safe(r.Result.Endpoint))
	}
	fmt.Fprintf(w, "  recovery point  %s\n", stamp(r.Plan.RecoveryPoint))
	rpo := Age(r.RPO)
	if r.RPO < time.Minute {
		rpo = r.RPO.Round(time.Millisecond).String() // sub-second precision where it tells
	}
	fmt.Fprintf(w, "  RPO achieved    %s (data written after the recovery point is not in %s)\n", rpo, r.Result.Name)
	fmt.Fprintf(w, "  RTO             %s (from the start of the restore until %s accepted connections)\n",
		r.RTO.Round(time.Millisecond), r.Result.Name)
	fmt.Fprintf(w, "Check the data, then point the application at %s. Password hashes are restored as they were:\n", r.Result.Name)
	fmt.Fprintln(w, "load users through the backend's hashed_password path, never through password (see docs/recovery.md).")
}

// WriteSnapshot prints one snapshot's identity and tags.
func WriteSnapshot(w io.Writer, s provider.Snapshot) {
	fmt.Fprintf(w, "Snapshot %s\n", safe(s.ID))
	fmt.Fprintf(w, "  target          %s\n", safe(s.Target))
	fmt.Fprintf(w, "  status          %s\n", safe(s.Status))
	fmt.Fprintf(w, "  recovery point  %s\n", stamp(s.Time))
	keys := make([]string, 0, len(s.Tags))
	for k := range s.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  tag %-11s %s\n", safe(k), safe(s.Tags[k]))
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
