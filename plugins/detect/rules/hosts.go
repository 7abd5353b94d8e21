package rules

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/tda-dev/tda/sdk"
)

// Per-host counts for fleet detection. Events that reached the detector from edge agents carry
// the field host (the replica or machine that logged them); an incident's alert then says how
// its count splits over them: "11 resets across 3 replicas (web-1: 4, web-2: 4, web-3: 3)".
//
// Invariant: r.hosts[sk] holds only hits of keys that exist (drop removes it) and only hits
// newer than the key's pruned history (noteHost prunes with the same floor), at most
// maxHits per key: the breakdown costs nothing for events without a host and is bounded
// otherwise. It is part of the snapshot (hosts_snapshot.go), so the breakdown survives a
// restart of the detector.

// Alert fields the breakdown sets.
const (
	// FieldHost is the event field naming the host an event came from.
	FieldHost = "host"
	// FieldHosts is "host:count,..." by host name.
	FieldHosts = "hosts"
	// FieldReplicas is the number of hosts.
	FieldReplicas = "replicas"
	// FieldFleetSummary is the sentence for notifications.
	FieldFleetSummary = "fleet_summary"
	// FieldReplayed marks an event that another detector had already judged before this one
	// took over its partition: it counts in the windows, but an incident it opens is not
	// told again (that detector told it).
	FieldReplayed = "fleet_replayed"
)

type hostHit struct {
	t    int64
	host string
}

// noteHost records a counted event's host and forgets hits older than floor.
func (r *ruleState) noteHost(sk string, t int64, host string, floor int64) {
	if r.hosts == nil {
		r.hosts = map[string][]hostHit{}
	}
	hits := r.hosts[sk]
	i := 0
	for i < len(hits) && hits[i].t < floor {
		i++
	}
	hits = hits[i:]
	if len(hits) >= maxHits {
		hits = hits[1:]
	}
	r.hosts[sk] = append(hits, hostHit{t: t, host: host})
}

// hostCount is one host's share of an incident.
type hostCount struct {
	host string
	n    int
}

// hostBreakdown counts the hosts of the hits in [from, to], by host name.
func (r *ruleState) hostBreakdown(sk string, from, to int64) []hostCount {
	m := map[string]int{}
	for _, h := range r.hosts[sk] {
		if h.t >= from && h.t <= to {
			m[h.host]++
		}
	}
	out := make([]hostCount, 0, len(m))
	for h, n := range m {
		out = append(out, hostCount{h, n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].host < out[j].host })
	return out
}

// nouns name what a rule counts, by event type, for the fleet summary.
var nouns = map[string]string{
	"password_changed":  "resets",
	"user_deleted":      "deletions",
	"rows_deleted":      "deletions",
	"user_created":      "accounts created",
	"login_failed":      "failed logins",
	"migration_started": "migrations",
}

func (r *ruleState) noun() string {
	if len(r.Match) > 0 {
		if n, ok := nouns[r.Match[0]]; ok {
			return n
		}
	}
	return "events"
}

// withHosts adds the host breakdown of the incident's window to its alert event, and the
// summary sentence to its explanation, when the counted events named their hosts.
func (r *ruleState) withHosts(ev *sdk.Event, sk string, inc *incident) {
	if len(r.hosts[sk]) == 0 || ev.Alert == nil {
		return
	}
	// The window the count is of: the one opened at firstSeen for the first record (its
	// crossing line may be older than lines already counted), the one ending at lastSeen
	// for reminders.
	from, to := inc.firstSeen, inc.firstSeen+r.w-1
	if ev.Alert.Realert > 0 {
		from, to = inc.lastSeen-r.w+1, inc.lastSeen
	}
	counts := r.hostBreakdown(sk, from, to)
	if len(counts) == 0 {
		return
	}
	parts := make([]string, len(counts))
	human := make([]string, len(counts))
	for i, c := range counts {
		parts[i] = c.host + ":" + strconv.Itoa(c.n)
		human[i] = fmt.Sprintf("%s: %d", c.host, c.n)
	}
	replicas := "replica"
	if len(counts) != 1 {
		replicas = "replicas"
	}
	summary := fmt.Sprintf("%d %s across %d %s (%s)", ev.Alert.Count, r.noun(), len(counts), replicas, strings.Join(human, ", "))
	ev.SetField(FieldHosts, strings.Join(parts, ","))
	ev.SetField(FieldReplicas, strconv.Itoa(len(counts)))
	ev.SetField(FieldFleetSummary, summary)
	ev.Alert.Explanation = strings.TrimSpace(ev.Alert.Explanation + " " + summary + ".")
}
