package rules

import (
	"sort"
	"strings"
	"time"

	"github.com/tda-dev/tda/plugins/detect/parse"
	"github.com/tda-dev/tda/sdk"
)

// EventMigrationApproved is the audit event the agent injects when someone approves a
// migration request (fields migration, approved_at, valid_until).
const EventMigrationApproved = "migration_approved"

// approval is one approved migration: its name and when the approval holds.
type approval struct {
	name        string
	from, until int64 // unix nanoseconds; from is the approval time less approvalGrace
}

// approvalGrace lets a migration line stamped slightly before the approval (clock skew
// between the app's host and the agent's) count as approved.
const approvalGrace = time.Minute

// maxApprovals bounds the approvals kept; the ones that end first go first.
const maxApprovals = 1000

// approvals are the migration approvals the agent announced, by name.
type approvals map[string]approval

// observe records an approval announcement; it reports whether ev was one.
func (a approvals) observe(ev *sdk.Event) bool {
	if ev.Kind != sdk.KindAudit || ev.Field("event") != EventMigrationApproved {
		return false
	}
	name := strings.TrimSpace(ev.Field("migration"))
	until, err := time.Parse(time.RFC3339Nano, ev.Field("valid_until"))
	if name == "" || err != nil {
		return true
	}
	from := ev.Time
	if at, err := time.Parse(time.RFC3339Nano, ev.Field("approved_at")); err == nil {
		from = at
	}
	a[name] = approval{name: name, from: from.Add(-approvalGrace).UnixNano(), until: until.UnixNano()}
	if len(a) > maxApprovals {
		a.prune()
	}
	return true
}

func (a approvals) prune() {
	all := make([]approval, 0, len(a))
	for _, x := range a {
		all = append(all, x)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].until > all[j].until })
	for _, x := range all[maxApprovals:] {
		delete(a, x.name)
	}
}

// approved reports whether the migration an event reports (its revision: an Alembic
// revision, a Liquibase changeset, a Flyway version, which Flyway logs followed by " - "
// and its description) was approved for the event's time.
func (a approvals) approved(ev *sdk.Event) bool {
	if len(a) == 0 {
		return false
	}
	rev := ev.Field(parse.FieldRevision)
	if rev == "" {
		return false
	}
	t := ev.Time.UnixNano()
	ok := func(x approval) bool { return t >= x.from && t < x.until }
	if x, found := a[rev]; found && ok(x) {
		return true
	}
	if v, _, cut := strings.Cut(rev, " - "); cut {
		if x, found := a[v]; found && ok(x) {
			return true
		}
	}
	return false
}
