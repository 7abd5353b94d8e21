package rules

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
)

// updatesOf returns the incident updates in out, and every entity value they carried per
// field (merged, as a reader does).
func updatesOf(out []sdk.Event) ([]sdk.IncidentUpdate, map[string][]string) {
	var ups []sdk.IncidentUpdate
	merged := map[string]map[string]bool{}
	for i := range out {
		u, ok := sdk.ParseIncidentUpdate(&out[i])
		if !ok {
			continue
		}
		ups = append(ups, u)
		for f, vals := range u.Entities {
			if merged[f] == nil {
				merged[f] = map[string]bool{}
			}
			for _, v := range vals {
				merged[f][v] = true
			}
		}
	}
	flat := map[string][]string{}
	for f, set := range merged {
		for v := range set {
			flat[f] = append(flat[f], v)
		}
		sort.Strings(flat[f])
	}
	return ups, flat
}

// TestIncidentUpdates: an incident's updates carry its true total (not the count when it
// fired) and every entity its events named, including the events that opened it; the last
// update comes before the resolution; nothing is reported without IncidentUpdates.
func TestIncidentUpdates(t *testing.T) {
	r := newRule(t, func(r *Rule) { r.Threshold = 3; r.Excerpt = 2 })
	var events []sdk.Event
	for i := 0; i < 15; i++ {
		events = append(events, ev(time.Duration(i)*time.Second, "password_changed",
			"user_id", fmt.Sprint(100+i), "actor", "mallory", "ip", "203.0.113.9"))
	}
	out := run(NewEngine([]*Rule{r}, Options{Instance: "t", IncidentUpdates: true}), events)
	ups, ents := updatesOf(out)
	if len(ups) == 0 {
		t.Fatal("no incident update")
	}
	last := ups[len(ups)-1]
	if last.Count != 15 || last.Rule != "r" || last.Truncated {
		t.Fatalf("last update: %+v", last)
	}
	if len(ents["user_id"]) != 15 || strings.Join(ents["actor"], ",") != "mallory" || strings.Join(ents["ip"], ",") != "203.0.113.9" {
		t.Fatalf("entities: %v", ents)
	}
	// Each value is reported once.
	n := 0
	for _, u := range ups {
		n += len(u.Entities["user_id"])
	}
	if n != 15 {
		t.Fatalf("user_id reported %d times for 15 values", n)
	}
	var order []string
	for _, e := range out {
		if e.Kind == sdk.KindAlert {
			order = append(order, e.Alert.State)
		} else if e.Field("event") == sdk.EventIncidentUpdate {
			order = append(order, "update")
		}
	}
	if order[0] != "firing" || order[len(order)-1] != "resolved" || order[len(order)-2] != "update" {
		t.Fatalf("order: %v", order)
	}
	for _, e := range out {
		if e.Kind == sdk.KindAlert && e.Alert.State == sdk.StateResolved && e.Alert.Fingerprint != last.Fingerprint {
			t.Fatalf("update of another incident: %+v", last)
		}
	}

	plain := run(NewEngine([]*Rule{r}, Options{Instance: "t"}), events)
	if ups, _ := updatesOf(plain); len(ups) != 0 {
		t.Fatalf("updates without IncidentUpdates: %+v", ups)
	}
	if states(alertsOnly(plain)) != states(alertsOnly(out)) {
		t.Fatalf("updates changed the alerts: %s vs %s", states(alertsOnly(plain)), states(alertsOnly(out)))
	}
}

func alertsOnly(out []sdk.Event) []sdk.Event {
	var a []sdk.Event
	for _, e := range out {
		if e.Kind == sdk.KindAlert {
			a = append(a, e)
		}
	}
	return a
}

// TestIncidentEntitiesBounded: an incident collects at most MaxIncidentEntities values and
// says it stopped; values are cut to maxEntityLen.
func TestIncidentEntitiesBounded(t *testing.T) {
	r := newRule(t, func(r *Rule) { r.Threshold = 1; r.Window = time.Hour; r.Excerpt = 0 })
	e := NewEngine([]*Rule{r}, Options{Instance: "t", IncidentUpdates: true})
	var out []sdk.Event
	long := strings.Repeat("é", maxEntityLen)
	for i := 0; i < MaxIncidentEntities+500; i++ {
		x := ev(time.Duration(i)*time.Millisecond, "password_changed", "user_id", fmt.Sprint(i), "actor", long)
		out = e.Event(&x, out)
		if i%1000 == 0 {
			out = e.EndBatch(sdk.Watermark{}, out)
		}
	}
	out = e.EndBatch(sdk.Watermark{Final: true}, out)
	ups, ents := updatesOf(out)
	total := 0
	for _, vals := range ents {
		total += len(vals)
	}
	if total != MaxIncidentEntities || !ups[len(ups)-1].Truncated || ups[len(ups)-1].Count != int64(MaxIncidentEntities+500) {
		t.Fatalf("%d values kept, last update %+v", total, ups[len(ups)-1].Count)
	}
	if a := ents["actor"]; len(a) != 1 || len(a[0]) > maxEntityLen || !strings.HasPrefix(long, a[0]) {
		t.Fatalf("long value: %d bytes", len(a[0]))
	}
}

// TestIncidentUpdatesThrottled: while the wall clock moves less than updateEvery between
// batches, an incident is reported once; its resolution still carries the final count.
func TestIncidentUpdatesThrottled(t *testing.T) {
	r := newRule(t, func(r *Rule) { r.Threshold = 2 })
	e := NewEngine([]*Rule{r}, Options{Instance: "t", IncidentUpdates: true})
	wall := base
	var out []sdk.Event
	for i := 0; i < 20; i++ {
		x := ev(time.Duration(i)*100*time.Millisecond, "password_changed", "user_id", fmt.Sprint(i))
		out = e.EventAt(&x, wall, out)
		out = e.EndBatch(sdk.Watermark{Time: wall}, out)
		wall = wall.Add(100 * time.Millisecond)
	}
	ups, _ := updatesOf(out)
	if len(ups) < 2 || len(ups) > 3 {
		t.Fatalf("%d updates in 2 s of batches every 100 ms", len(ups))
	}
	out = e.EndBatch(sdk.Watermark{Final: true}, out)
	ups, ents := updatesOf(out)
	if ups[len(ups)-1].Count != 20 || len(ents["user_id"]) != 20 {
		t.Fatalf("final update %+v, %d users", ups[len(ups)-1], len(ents["user_id"]))
	}
}

// TestIncidentEntitiesKey: a grouped rule's key is among the entities (as "key").
func TestIncidentEntitiesKey(t *testing.T) {
	r := newRule(t, func(r *Rule) { r.Threshold = 2; r.GroupBy = []string{"path"} })
	out := run(NewEngine([]*Rule{r}, Options{Instance: "t", IncidentUpdates: true}),
		every(4, 0, time.Second, "password_changed", "path", "/admin/reset", "user_id", "9"))
	if _, ents := updatesOf(out); strings.Join(ents["key"], ",") != "/admin/reset" || strings.Join(ents["user_id"], ",") != "9" {
		t.Fatalf("entities: %v", ents)
	}
}
