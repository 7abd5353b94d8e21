package rules

import (
	"fmt"
	"strings"

	"github.com/tda-dev/tda/plugins/detect/parse"
	"github.com/tda-dev/tda/sdk"
)

// Explain writes what an alert means for the on-call operator: what the rule saw, the likely
// causes, and the first steps, followed by a line about the alert's state.
func Explain(r *Rule, a *sdk.Alert) string {
	var b strings.Builder
	window := sdk.FormatDuration(r.Window)
	scope := "across the whole app"
	if len(r.GroupBy) > 0 {
		scope = fmt.Sprintf("for %s %s", strings.Join(r.GroupBy, "/"), a.Key)
	}
	if r.Explanation != "" {
		b.WriteString(strings.TrimSpace(r.Explanation))
	} else {
		b.WriteString(builtin(r, a, window, scope))
	}
	switch a.State {
	case sdk.StateSuppressed:
		fmt.Fprintf(&b, " State: suppressed, because override mode was declared by %s (%q); "+
			"it is recorded for audit only and pages nobody. If this activity is not the approved work, "+
			"end the override (tda override off) and treat this as a live alert.", orUnknown(a.SuppressedBy), a.OverrideReason)
	case sdk.StateResolved:
		fmt.Fprintf(&b, " State: resolved: the burst drained (no window of %s above %d since %s); "+
			"peak count %d. Confirm the cause was found before closing the incident.",
			window, r.Threshold, a.LastSeen.UTC().Format("15:04:05 MST"), a.Count)
	default:
		if a.Realert > 0 {
			fmt.Fprintf(&b, " Reminder %d: the activity is still going on (%d in the current window).", a.Realert, a.Count)
		}
	}
	return b.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown actor"
	}
	return s
}

func builtin(r *Rule, a *sdk.Alert, window, scope string) string {
	saw := fmt.Sprintf("%d %s within %s %s (threshold: more than %d)", a.Count, noun(r.Match), window, scope, r.Threshold)
	switch primary(r.Match) {
	case parse.PasswordChanged:
		return "Mass password reset: " + saw + unlessNote(r) + ". " +
			"Likely cause: an account-takeover campaign abusing the reset flow or a stolen admin/API token, " +
			"or a script or bug resetting passwords in a loop. " +
			"First steps: look at the excerpt for a common actor or IP; if one actor did it, disable that " +
			"account or token and revoke its sessions; block the source IPs at the edge; list the affected " +
			"user_ids and force them to re-verify by email; keep the database snapshot taken for this alert " +
			"before any rollback. If this is approved work, declare it with tda override on -reason ... -ttl 30m."
	case parse.UserCreated:
		return "Bulk user creation: " + saw + unlessNote(r) + ". " +
			"Likely cause: bot sign-ups (spam or preparation for fraud), an import that nobody declared, " +
			"or a script stuck in a loop. " +
			"First steps: check the excerpt for the actor and client IPs; for sign-ups from many IPs enable " +
			"rate limiting or a captcha on the sign-up endpoint; for an internal actor ask its owner whether " +
			"an import is running and, if approved, declare it with tda override on; disable the accounts " +
			"created if they are malicious."
	case parse.UserDeleted, parse.RowsDeleted:
		return "Bulk deletion: " + saw + unlessNote(r) + ". Data may be being lost right now. " +
			"Likely cause: a cleanup job or migration deleting more than intended, a compromised admin " +
			"account or token, or an ORM cascade. " +
			"First steps: identify the actor and IP in the excerpt and stop it (disable the account or token, " +
			"stop the job); make sure a database snapshot exists from before the deletions (tda takes one for " +
			"HIGH alerts when a snapshot sink is configured); never restore over the live database: restore " +
			"to a new instance and copy back the missing rows."
	case parse.MigrationStarted:
		return migration(r, a) + " " +
			"Likely cause: a deploy that runs migrations at start-up (flask db upgrade, Spring Boot with " +
			"Flyway or Liquibase) or a migration run by hand. " +
			"First steps: find the revision and who deployed it (excerpt, deploy log); check that a database " +
			"snapshot from before the migration exists; watch the app's errors; do not run a down-migration " +
			"in a hurry, it can drop data: talk to the deployer first."
	case parse.LoginFailed:
		return "Repeated authentication failures: " + saw + ". " +
			"Likely cause: password guessing or credential stuffing from that address, or a client or " +
			"service using stale credentials. " +
			"First steps: look at the usernames tried (one user: risk of lockout or a targeted attack; many: " +
			"credential stuffing); if the address is not yours, block or rate-limit it at the firewall or " +
			"WAF; check for a successful login from the same address right after, which would mean a " +
			"compromised account."
	}
	return fmt.Sprintf("Rule %s: %s%s. Look at the excerpt to see who or what produced these events, and "+
		"check whether it was expected work.", r.Name, saw, unlessNote(r))
}

func primary(match []string) string {
	if len(match) == 0 {
		return ""
	}
	return match[0]
}

func noun(match []string) string {
	parts := make([]string, len(match))
	for i, m := range match {
		parts[i] = strings.ReplaceAll(m, "_", " ")
	}
	return strings.Join(parts, " or ") + " events"
}

func unlessNote(r *Rule) string {
	if r.Unless == nil {
		return ""
	}
	return fmt.Sprintf(", not counting events where %s", r.Unless.String())
}

// migration states the true reason a migration rule counted: no approved request matched
// (require_approval), the time was outside every maintenance window, or, for a rule with
// neither, that any migration counts.
func migration(r *Rule, a *sdk.Alert) string {
	at := a.FirstSeen.UTC().Format("Mon 15:04 MST")
	switch {
	case r.RequireApproval:
		return "Unapproved migration: a schema migration ran at " + at +
			" and no approved migration request matches its revision (see tda migrate list; " +
			"a request must be approved by someone other than its requester before the migration runs)."
	case len(r.Exemptions) > 0:
		parts := make([]string, len(r.Exemptions))
		for i, x := range r.Exemptions {
			parts[i] = x.Describe()
		}
		return "Migration outside the maintenance window: a schema migration ran at " + at +
			", outside every allowed window (" + strings.Join(parts, "; ") + ")."
	}
	return "Migration: a schema migration ran at " + at + "; this rule counts every migration " +
		"(it has no maintenance window and does not require approval)."
}
