package rules

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/detect/cond"
	"github.com/tda-dev/tda/plugins/detect/override"
	"github.com/tda-dev/tda/sdk"
)

// base is a Sunday.
var base = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

// ev is a parsed event at base+at.
func ev(at time.Duration, typ string, kv ...string) sdk.Event {
	f := map[string]string{"event": typ}
	for i := 0; i+1 < len(kv); i += 2 {
		f[kv[i]] = kv[i+1]
	}
	return sdk.Event{Kind: sdk.KindLog, Time: base.Add(at), Origin: "app.log", Source: "file.test",
		Line: []byte(fmt.Sprintf("%s %s %v", base.Add(at).Format(time.RFC3339Nano), typ, kv)), Fields: f}
}

func every(n int, start, step time.Duration, typ string, kv ...string) []sdk.Event {
	out := make([]sdk.Event, n)
	for i := range out {
		out[i] = ev(start+time.Duration(i)*step, typ, kv...)
	}
	return out
}

func concat(parts ...[]sdk.Event) []sdk.Event {
	var out []sdk.Event
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func mustCond(t *testing.T, s string) *cond.Expr {
	t.Helper()
	x, err := cond.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func origins(t testing.TB, globs ...string) override.Origins {
	t.Helper()
	o, err := override.NewOrigins(globs)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func newRule(t *testing.T, mut func(*Rule)) *Rule {
	r := &Rule{Name: "r", Match: []string{"password_changed"}, Threshold: 10, Window: time.Minute,
		Severity: sdk.SeverityHigh, Excerpt: 3}
	if mut != nil {
		mut(r)
	}
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
	return r
}

// run feeds events one batch each and ends with the final watermark.
func run(e *Engine, events []sdk.Event) []sdk.Event {
	var out []sdk.Event
	for i := range events {
		out = e.Event(&events[i], out)
		out = e.EndBatch(sdk.Watermark{}, out)
	}
	return e.EndBatch(sdk.Watermark{Final: true}, out)
}

func states(alerts []sdk.Event) string {
	var s []string
	for _, a := range alerts {
		s = append(s, fmt.Sprintf("%s@%s", a.Alert.State, a.Time.Sub(base)))
	}
	return strings.Join(s, " ")
}

func TestWindowEdges(t *testing.T) {
	admin := []string{"actor_role", "admin"}
	user := []string{"actor_role", "user"}
	tests := []struct {
		name   string
		rule   func(*Rule)
		events []sdk.Event
		want   string // states and times relative to base
	}{
		{"exactly the threshold", nil, every(10, 0, time.Second, "password_changed"), ""},
		{"one more than the threshold", nil, every(11, 0, time.Second, "password_changed"),
			"firing@10s resolved@1m10s"},
		{"first event exactly one window before the last",
			nil, every(11, 0, 6*time.Second, "password_changed"), ""},
		{"one nanosecond inside the window",
			nil, concat(every(1, 0, 0, "password_changed"), every(10, 6*time.Second-1, 6*time.Second, "password_changed")),
			"firing@59.999999999s resolved@1m59.999999999s"},
		{"spread wider than the window", nil, every(30, 0, 7*time.Second, "password_changed"), ""},
		{"other event types do not count", nil, every(20, 0, time.Second, "user_created"), ""},
		{"admins mixed with users, users at the threshold",
			func(r *Rule) { r.Unless = mustCond(t, "actor_role == admin") },
			concat(every(10, 0, 2*time.Second, "password_changed", user...),
				every(10, time.Second, 2*time.Second, "password_changed", admin...)), ""},
		{"admins mixed with users, users above the threshold",
			func(r *Rule) { r.Unless = mustCond(t, "actor_role == admin") },
			concat(every(11, 0, 2*time.Second, "password_changed", user...),
				every(10, time.Second, 2*time.Second, "password_changed", admin...)),
			"firing@20s resolved@1m20s"},
		{"out of order: the late line completes the window", nil,
			concat(every(10, 10*time.Second, time.Second, "password_changed"), every(1, 5*time.Second, 0, "password_changed")),
			"firing@5s resolved@1m19s"},
		{"out of order: shuffled burst gives one incident", nil,
			[]sdk.Event{ev(9*time.Second, "password_changed"), ev(3*time.Second, "password_changed"),
				ev(7*time.Second, "password_changed"), ev(1*time.Second, "password_changed"),
				ev(10*time.Second, "password_changed"), ev(0, "password_changed"),
				ev(5*time.Second, "password_changed"), ev(8*time.Second, "password_changed"),
				ev(2*time.Second, "password_changed"), ev(6*time.Second, "password_changed"),
				ev(4*time.Second, "password_changed"), ev(11*time.Second, "password_changed")},
			"firing@4s resolved@1m11s"},
		{"out of order: a late line older than the window does not combine", nil,
			concat(every(10, 100*time.Second, time.Second, "password_changed"), every(1, 30*time.Second, 0, "password_changed")), ""},
		{"threshold zero fires on the first event",
			func(r *Rule) { r.Threshold = 0; r.Match = []string{"migration_started"} },
			every(3, 0, 30*time.Second, "migration_started"), "firing@0s resolved@2m0s"},
		{"threshold zero: events a full window apart are separate incidents",
			func(r *Rule) { r.Threshold = 0; r.Match = []string{"migration_started"} },
			every(2, 0, time.Minute, "migration_started"), "firing@0s resolved@1m0s firing@1m0s resolved@2m0s"},
		{"burst, quiet, burst: two incidents", func(r *Rule) { r.Threshold = 2 },
			concat(every(3, 0, time.Second, "password_changed"), every(3, 10*time.Minute, time.Second, "password_changed")),
			"firing@2s resolved@1m2s firing@10m2s resolved@11m2s"},
		{"realert while the burst goes on", func(r *Rule) { r.Threshold = 2; r.Realert = 30 * time.Second },
			every(50, 0, time.Second, "password_changed"), "firing@2s firing@32s resolved@1m49s"},
		{"group_by separates keys", func(r *Rule) { r.Threshold = 2; r.GroupBy = []string{"ip"} },
			concat(every(2, 0, time.Second, "password_changed", "ip", "a"), every(2, 0, time.Second, "password_changed", "ip", "b"),
				every(1, 3*time.Second, 0, "password_changed", "ip", "a")),
			"firing@3s resolved@1m3s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEngine([]*Rule{newRule(t, tt.rule)}, Options{Instance: "test"})
			got := states(run(e, tt.events))
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRealertNumbersReminders(t *testing.T) {
	e := NewEngine([]*Rule{newRule(t, func(r *Rule) { r.Threshold = 2; r.Realert = 30 * time.Second })}, Options{})
	out := run(e, every(70, 0, time.Second, "password_changed"))
	var keys []string
	for _, a := range out {
		keys = append(keys, a.Alert.DeliveryKey()[33:])
	}
	if got := strings.Join(keys, " "); got != "firing/0 firing/1 firing/2 resolved/0" {
		t.Fatalf("delivery keys %q", got)
	}
	if out[0].Alert.Fingerprint != out[3].Alert.Fingerprint {
		t.Fatal("reminders and resolution must keep the incident's fingerprint")
	}
}

func TestOverride(t *testing.T) {
	overridable := func(r *Rule) { r.Match = []string{"user_created"}; r.Threshold = 5; r.Overridable = true }
	enable := func(at time.Duration, ttl string) sdk.Event {
		return ev(at, "override_enabled", "actor", "carol", "reason", "bulk import", "ttl", ttl)
	}
	tests := []struct {
		name   string
		rule   func(*Rule)
		events []sdk.Event
		want   string
	}{
		{"burst under override is suppressed", overridable,
			concat([]sdk.Event{enable(0, "10m")}, every(6, time.Minute, time.Second, "user_created")),
			"suppressed@1m5s resolved@2m5s"},
		{"burst after the ttl expired fires", overridable,
			concat([]sdk.Event{enable(0, "10m")}, every(6, 10*time.Minute, time.Second, "user_created")),
			"firing@10m5s resolved@11m5s"},
		{"burst one second before expiry is suppressed", overridable,
			concat([]sdk.Event{enable(0, "10m")}, every(6, 10*time.Minute-6*time.Second, time.Second, "user_created")),
			"suppressed@9m59s resolved@10m59s"},
		{"suppressed incident that outlives the override pages", overridable,
			concat([]sdk.Event{enable(0, "1m")}, every(30, 50*time.Second, time.Second, "user_created")),
			"suppressed@55s firing@1m0s resolved@2m19s"},
		{"disabled override no longer suppresses", overridable,
			concat([]sdk.Event{enable(0, "1h"), ev(time.Minute, "override_disabled", "actor", "carol")},
				every(6, 2*time.Minute, time.Second, "user_created")),
			"firing@2m5s resolved@3m5s"},
		{"rules that are not overridable fire", func(r *Rule) { r.Match = []string{"user_created"}; r.Threshold = 5 },
			concat([]sdk.Event{enable(0, "10m")}, every(6, time.Minute, time.Second, "user_created")),
			"firing@1m5s resolved@2m5s"},
		{"ttl longer than max_ttl is cut", overridable,
			concat([]sdk.Event{enable(0, "100h")}, every(6, 25*time.Hour, time.Second, "user_created")),
			"firing@25h0m5s resolved@25h1m5s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEngine([]*Rule{newRule(t, tt.rule)}, Options{AllowOrigins: origins(t, "app.log")})
			out := run(e, tt.events)
			if got := states(out); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			for _, a := range out {
				if a.Alert.State == sdk.StateSuppressed && (a.Alert.SuppressedBy != "carol" || a.Alert.OverrideReason != "bulk import") {
					t.Fatalf("suppressed alert without who and why: %+v", a.Alert)
				}
			}
		})
	}
}

func TestMaintenanceWindow(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	sunday := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC) // a Sunday
	sun, _ := ParseDays([]string{"sun"})
	sat, _ := ParseDays([]string{"saturday"})
	tests := []struct {
		name string
		w    MaintenanceWindow
		at   time.Time
		in   bool
	}{
		{"just before start", MaintenanceWindow{Days: sun, Start: 2 * time.Hour, End: 4 * time.Hour}, sunday.Add(2*time.Hour - time.Nanosecond), false},
		{"at start", MaintenanceWindow{Days: sun, Start: 2 * time.Hour, End: 4 * time.Hour}, sunday.Add(2 * time.Hour), true},
		{"just before end", MaintenanceWindow{Days: sun, Start: 2 * time.Hour, End: 4 * time.Hour}, sunday.Add(4*time.Hour - time.Nanosecond), true},
		{"at end", MaintenanceWindow{Days: sun, Start: 2 * time.Hour, End: 4 * time.Hour}, sunday.Add(4 * time.Hour), false},
		{"other weekday", MaintenanceWindow{Days: sun, Start: 2 * time.Hour, End: 4 * time.Hour}, sunday.Add(-24*time.Hour + 3*time.Hour), false},
		{"time zone: 01:30 UTC is 02:30 in Paris", MaintenanceWindow{Days: sun, Start: 2 * time.Hour, End: 4 * time.Hour, Location: paris}, sunday.Add(90 * time.Minute), true},
		{"time zone: 03:30 UTC is 04:30 in Paris", MaintenanceWindow{Days: sun, Start: 2 * time.Hour, End: 4 * time.Hour, Location: paris}, sunday.Add(210 * time.Minute), false},
		{"time zone: Saturday 23:30 UTC is Sunday 00:30 in Paris", MaintenanceWindow{Days: sun, Start: 0, End: time.Hour, Location: paris}, sunday.Add(-30 * time.Minute), true},
		{"past midnight: evening part", MaintenanceWindow{Days: sat, Start: 23 * time.Hour, End: time.Hour}, sunday.Add(-30 * time.Minute), true},
		{"past midnight: morning part belongs to the day before", MaintenanceWindow{Days: sat, Start: 23 * time.Hour, End: time.Hour}, sunday.Add(30 * time.Minute), true},
		{"past midnight: after the end", MaintenanceWindow{Days: sat, Start: 23 * time.Hour, End: time.Hour}, sunday.Add(time.Hour), false},
		{"past midnight: morning of the wrong day", MaintenanceWindow{Days: sat, Start: 23 * time.Hour, End: time.Hour}, sunday.Add(-23*time.Hour - 30*time.Minute), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.w.Contains(tt.at); got != tt.in {
				t.Fatalf("Contains(%s) = %v, want %v (window %s)", tt.at, got, tt.in, tt.w.Describe())
			}
		})
	}
	// And through the engine: several windows, only migrations outside all of them fire.
	r := newRule(t, func(r *Rule) {
		r.Match, r.Threshold, r.Window = []string{"migration_started"}, 0, time.Minute
		r.Exemptions = []Exemption{
			&MaintenanceWindow{Days: sun, Start: 2 * time.Hour, End: 4 * time.Hour},
			&MaintenanceWindow{Days: sat, Start: 22 * time.Hour, End: 23 * time.Hour},
		}
	})
	e := NewEngine([]*Rule{r}, Options{})
	mig := func(at time.Time) sdk.Event {
		return sdk.Event{Kind: sdk.KindLog, Time: at, Fields: map[string]string{"event": "migration_started"}}
	}
	out := run(e, []sdk.Event{mig(sunday.Add(-90 * time.Minute)), mig(sunday.Add(3 * time.Hour)), mig(sunday.Add(5 * time.Hour))})
	if len(out) != 2 || out[0].Time != sunday.Add(5*time.Hour) || out[0].Alert.State != sdk.StateFiring {
		t.Fatalf("got %s", states(out))
	}
	if !strings.Contains(out[0].Alert.Explanation, "Sun 02:00-04:00 UTC") {
		t.Fatalf("explanation does not name the window: %s", out[0].Alert.Explanation)
	}
}

func TestMaxKeysEvictsLeastRecentlySeen(t *testing.T) {
	e := NewEngine([]*Rule{newRule(t, func(r *Rule) {
		r.Match, r.Threshold, r.GroupBy, r.MaxKeys = []string{"login_failed"}, 2, []string{"ip"}, 3
	})}, Options{})
	var evs []sdk.Event
	// a, b, c seen; a again (most recent); d evicts b, the least recently seen.
	for i, ip := range []string{"a", "b", "c", "a", "d"} {
		evs = append(evs, ev(time.Duration(i)*time.Second, "login_failed", "ip", ip))
	}
	var out []sdk.Event
	for i := range evs {
		out = e.Event(&evs[i], out)
	}
	st := e.Stats()[0]
	if st.Keys != 3 || st.Evicted != 1 {
		t.Fatalf("stats %+v", st)
	}
	if _, ok := e.rules[0].keys[stateKey("b", "app.log")]; ok {
		t.Fatal("b should have been evicted")
	}
	if _, ok := e.rules[0].keys[stateKey("a", "app.log")]; !ok {
		t.Fatal("a was seen recently and must stay")
	}
}

// TestSnapshotRestoreMidIncident splits a stream at every position: snapshot there, restore
// into a new engine, continue, and compare with the uninterrupted run. Replaying the batch
// that followed the snapshot gives the same delivery keys (so sinks drop the duplicates).
func TestSnapshotRestoreMidIncident(t *testing.T) {
	mk := func() *Engine {
		return NewEngine([]*Rule{
			newRule(t, func(r *Rule) { r.Threshold = 3; r.GroupBy = []string{"ip"}; r.Realert = 5 * time.Second }),
			newRule(t, func(r *Rule) {
				r.Name, r.Match, r.Threshold, r.Overridable = "u", []string{"user_created"}, 2, true
			}),
		}, Options{Instance: "p", Lateness: 5 * time.Second, AllowOrigins: origins(t, "*.log")})
	}
	events := concat(
		every(8, 0, time.Second, "password_changed", "ip", "1.1.1.1"),
		[]sdk.Event{ev(3*time.Second, "override_enabled", "actor", "op", "reason", "r", "ttl", "20s")},
		every(5, 4*time.Second, time.Second, "user_created"),
		every(4, 2*time.Second, 2*time.Second, "password_changed", "ip", "2.2.2.2"),
		every(6, 30*time.Second, time.Second, "user_created"),
	)
	sortByTimeStable(events)
	full := run(mk(), clone(events))
	if len(full) < 6 {
		t.Fatalf("scenario too small: %s", states(full))
	}
	for split := 0; split <= len(events); split++ {
		a := mk()
		var out []sdk.Event
		first := clone(events[:split])
		for i := range first {
			out = a.Event(&first[i], out)
			out = a.EndBatch(sdk.Watermark{}, out)
		}
		snap := a.Snapshot()
		b := mk()
		if err := b.Restore(snap); err != nil {
			t.Fatal(err)
		}
		if again := b.Snapshot(); string(again) != string(snap) {
			t.Fatalf("split %d: snapshot of a restored engine differs", split)
		}
		out = append(out, run(b, clone(events[split:]))...)
		if got, want := deliveryKeys(out), deliveryKeys(full); got != want {
			t.Fatalf("split %d:\n got %s\nwant %s", split, got, want)
		}
	}
}

func clone(evs []sdk.Event) []sdk.Event {
	out := make([]sdk.Event, len(evs))
	for i := range evs {
		out[i] = evs[i].Clone()
	}
	return out
}

func sortByTimeStable(evs []sdk.Event) {
	for i := 1; i < len(evs); i++ {
		for j := i; j > 0 && evs[j].Time.Before(evs[j-1].Time); j-- {
			evs[j], evs[j-1] = evs[j-1], evs[j]
		}
	}
}

func deliveryKeys(alerts []sdk.Event) string {
	var s []string
	for _, a := range alerts {
		s = append(s, fmt.Sprintf("%s:%s@%s#%d", a.Alert.Rule, a.Alert.DeliveryKey(), a.Time.Sub(base), a.Alert.Count))
	}
	return strings.Join(s, " ")
}

func TestRestoreRejectsGarbage(t *testing.T) {
	e := NewEngine([]*Rule{newRule(t, nil)}, Options{})
	good := func() []byte {
		x := NewEngine([]*Rule{newRule(t, nil)}, Options{})
		evs := every(12, 0, time.Second, "password_changed")
		run(x, evs)
		return x.Snapshot()
	}()
	for _, b := range [][]byte{nil, []byte("TDAR"), []byte("nope"), good[:len(good)/2]} {
		if err := e.Restore(b); err == nil {
			t.Fatalf("Restore(%q) succeeded", b)
		}
	}
}

// TestLaggingOriginDoesNotFlap: lines of an origin an hour behind the others (a catch-up, or
// a wrong time zone) make one incident, not one per line.
func TestLaggingOriginDoesNotFlap(t *testing.T) {
	e := NewEngine([]*Rule{newRule(t, func(r *Rule) { r.Threshold = 2 })}, Options{Lateness: 30 * time.Second})
	ahead := sdk.Event{Kind: sdk.KindLog, Time: base.Add(time.Hour), Line: []byte("other origin")}
	events := append([]sdk.Event{ahead}, every(10, 0, 2*time.Second, "password_changed")...)
	got := states(run(e, events))
	if got != "firing@4s resolved@1m18s" {
		t.Fatalf("got %q", got)
	}
}

// TestWindowMatchesBruteForce checks the incremental window counts against a direct count
// over random streams, in order and shuffled.
func TestWindowMatchesBruteForce(t *testing.T) {
	const w = int64(10)
	rng := uint64(42)
	next := func(n int64) int64 {
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		return int64(rng % uint64(n))
	}
	for round := 0; round < 200; round++ {
		var ks keyState
		var times []int64
		tcur := int64(1000)
		for i := 0; i < 60; i++ {
			tcur += next(4)
			tt := tcur
			if round%2 == 1 && next(3) == 0 {
				tt -= next(8) // a late line
			}
			res := ks.add(tt, uint32(i+1), w, 3)
			times = append(times, tt)
			// Brute force: the largest count of a window (e-w, e] ending at an event e with
			// tt in the window.
			var best int64
			over := false
			for _, e := range times {
				if e < tt || e >= tt+w {
					continue
				}
				var c int64
				for _, x := range times {
					if x > e-w && x <= e {
						c++
					}
				}
				if c > best {
					best = c
				}
				over = over || c > 3
			}
			if res.over != over || (res.over && res.count != best) {
				t.Fatalf("round %d event %d at %d: got over=%v count=%d, want over=%v count=%d (times %v)",
					round, i, tt, res.over, res.count, over, best, times)
			}
			// The running sum is the window ending at the newest event.
			newest := ks.hits[len(ks.hits)-1].t
			var want int32
			for _, x := range times {
				if x > newest-w && x <= newest {
					want++
				}
			}
			if ks.sum != want {
				t.Fatalf("round %d event %d: sum %d, want %d", round, i, ks.sum, want)
			}
		}
	}
}
