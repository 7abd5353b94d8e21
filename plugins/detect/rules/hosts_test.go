package rules

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
)

// fleetEvents returns n password changes from each host, interleaved host by host, one
// second apart, each from the host's own copy of the app's log.
func fleetEvents(hosts []string, n int) []sdk.Event {
	var out []sdk.Event
	for i := range n {
		for j, h := range hosts {
			e := ev(time.Duration(i*len(hosts)+j)*time.Second, "password_changed", "host", h)
			e.Origin = "/var/log/flask/app.log"
			out = append(out, e)
		}
	}
	return out
}

func TestAlertSaysHowTheCountSplitsOverHosts(t *testing.T) {
	hosts := []string{"web-1", "web-2", "web-3"}
	tests := []struct {
		name    string
		per     int
		events  func() []sdk.Event
		alerts  int
		summary string
		hosts   string
	}{
		{"4+4+4 fires once, at the 11th", 4, func() []sdk.Event { return fleetEvents(hosts, 4) }, 1,
			"11 resets across 3 replicas (web-1: 4, web-2: 4, web-3: 3)", "web-1:4,web-2:4,web-3:3"},
		{"3+3+3 stays quiet", 3, func() []sdk.Event { return fleetEvents(hosts, 3) }, 0, "", ""},
		{"one host alone", 11, func() []sdk.Event { return fleetEvents([]string{"web-9"}, 11) }, 1,
			"11 resets across 1 replica (web-9: 11)", "web-9:11"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEngine([]*Rule{newRule(t, func(r *Rule) { r.Name = "mass_password_reset"; r.AcrossOrigins = true })}, Options{Instance: "test"})
			got := firing(run(e, tt.events()))
			if len(got) != tt.alerts {
				t.Fatalf("%d firing alerts, want %d", len(got), tt.alerts)
			}
			if tt.alerts == 0 {
				return
			}
			a := got[0]
			if a.Field(FieldFleetSummary) != tt.summary || a.Field(FieldHosts) != tt.hosts {
				t.Fatalf("summary %q hosts %q, want %q and %q", a.Field(FieldFleetSummary), a.Field(FieldHosts), tt.summary, tt.hosts)
			}
			if !strings.HasSuffix(a.Alert.Explanation, tt.summary+".") {
				t.Fatalf("the explanation does not end with the summary: %q", a.Alert.Explanation)
			}
			sum := 0
			for _, part := range strings.Split(a.Field(FieldHosts), ",") {
				n, _ := strconv.Atoi(part[strings.IndexByte(part, ':')+1:])
				sum += n
			}
			if int64(sum) != a.Alert.Count {
				t.Fatalf("hosts add up to %d, the alert counts %d", sum, a.Alert.Count)
			}
		})
	}
}

// TestHostsDoNotChangeTheIncidents: whether events name their host changes nothing of what
// the rules decide (same alerts, counts and fingerprints), only the fields the alerts carry.
func TestHostsDoNotChangeTheIncidents(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for round := range 20 {
		n := 5 + r.IntN(30)
		var with, without []sdk.Event
		for i := range n {
			at := time.Duration(r.IntN(180)) * time.Second
			e := ev(at, "password_changed", "host", "web-"+strconv.Itoa(r.IntN(3)))
			e.Line = append(e.Line, strconv.Itoa(i)...)
			with = append(with, e)
			plain := e.Clone()
			delete(plain.Fields, "host")
			without = append(without, plain)
		}
		mk := func() *Engine {
			return NewEngine([]*Rule{newRule(t, func(r *Rule) { r.Threshold = 4; r.AcrossOrigins = true })}, Options{Instance: "test"})
		}
		a, b := run(mk(), with), run(mk(), without)
		if len(a) != len(b) {
			t.Fatalf("round %d: %d alerts with hosts, %d without", round, len(a), len(b))
		}
		for i := range a {
			if a[i].Alert.Fingerprint != b[i].Alert.Fingerprint || a[i].Alert.Count != b[i].Alert.Count || a[i].Alert.State != b[i].Alert.State {
				t.Fatalf("round %d alert %d differs: %+v vs %+v", round, i, *a[i].Alert, *b[i].Alert)
			}
			if b[i].Field(FieldHosts) != "" {
				t.Fatalf("an alert without hosts got a breakdown: %v", b[i].Fields)
			}
		}
	}
}

func TestHostHitsAreBoundedAndDroppedWithTheirKey(t *testing.T) {
	r := &ruleState{Rule: &Rule{}}
	for i := range maxHits + 10 {
		r.noteHost("k", int64(i), "web-1", 0)
	}
	if got := len(r.hosts["k"]); got != maxHits {
		t.Fatalf("%d hits kept, want at most %d", got, maxHits)
	}
	r.noteHost("k", int64(maxHits+20), "web-1", int64(maxHits+15))
	if got := len(r.hosts["k"]); got != 1 {
		t.Fatalf("%d hits kept after the floor moved past all but one", got)
	}
	r.keys = map[string]*keyState{}
	ks := &keyState{key: "k"}
	r.keys["k"] = ks
	r.pushFront(ks)
	r.drop(ks)
	if _, ok := r.hosts["k"]; ok {
		t.Fatal("a dropped key kept its hosts")
	}
}

// TestReplayedLinesRebuildWindowsWithoutTellingAgain: after a takeover the survivor reads
// the partition again; an incident the dead detector told (opened by replayed lines) is not
// told again, while one in progress (opened by a new line) is told once, with exact counts.
func TestReplayedLinesRebuildWindowsWithoutTellingAgain(t *testing.T) {
	mark := func(evs []sdk.Event, upTo int) []sdk.Event {
		for i := range evs[:upTo] {
			evs[i].SetField(FieldReplayed, "true")
		}
		return evs
	}
	hosts := []string{"web-1", "web-2", "web-3"}
	tests := []struct {
		name     string
		replayed int
		alerts   int
	}{
		{"told before the takeover", 12, 0},
		{"crossed by the replay", 11, 0},
		{"in progress at the takeover", 6, 1},
		{"nothing replayed", 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEngine([]*Rule{newRule(t, func(r *Rule) { r.AcrossOrigins = true })}, Options{Instance: "test"})
			got := firing(run(e, mark(fleetEvents(hosts, 4), tt.replayed)))
			if len(got) != tt.alerts {
				t.Fatalf("%d firing alerts, want %d", len(got), tt.alerts)
			}
			if tt.alerts == 1 && got[0].Alert.Count != 11 {
				t.Fatalf("count %d, want 11", got[0].Alert.Count)
			}
		})
	}
}

// TestSplitAddsUpInAnyInterleaving: however the replicas' lines interleave on their way to
// the detector (each replica's in its own order), 4+4+4 resets within the window give one
// firing alert counting 11, whose split over the hosts adds up to it.
func TestSplitAddsUpInAnyInterleaving(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 3))
	hosts := []string{"web-1", "web-2", "web-3"}
	for round := range 200 {
		per := map[string][]sdk.Event{}
		for _, h := range hosts {
			var at []int
			for range 4 {
				at = append(at, r.IntN(50_000))
			}
			slices.Sort(at)
			for i, ms := range at {
				e := ev(time.Duration(ms)*time.Millisecond, "password_changed", "host", h)
				e.Line = append(e.Line, []byte(h+strconv.Itoa(i))...)
				per[h] = append(per[h], e)
			}
		}
		var arrival []sdk.Event
		for len(arrival) < 12 {
			h := hosts[r.IntN(3)]
			if len(per[h]) > 0 {
				arrival = append(arrival, per[h][0])
				per[h] = per[h][1:]
			}
		}
		e := NewEngine([]*Rule{newRule(t, func(r *Rule) { r.AcrossOrigins = true; r.Name = "mass_password_reset" })},
			Options{Instance: "test", Lateness: time.Minute})
		got := firing(run(e, arrival))
		if len(got) != 1 || got[0].Alert.Count != 11 {
			t.Fatalf("round %d: %d firing alerts (first counting %v)", round, len(got), got)
		}
		sum := 0
		for _, part := range strings.Split(got[0].Field(FieldHosts), ",") {
			n, _ := strconv.Atoi(part[strings.IndexByte(part, ':')+1:])
			sum += n
		}
		if sum != 11 {
			t.Fatalf("round %d: the split %q adds up to %d", round, got[0].Field(FieldHosts), sum)
		}
	}
}

// TestSplitSurvivesARestart: the per-host split is part of the snapshot. A detector
// restarted from its checkpoint at any point of a 4+4+4 burst tells the same alert, split
// over every host it counted, as one that never stopped; a snapshot without the hosts (an
// older one) restores with the exact count and the split of what follows only.
func TestSplitSurvivesARestart(t *testing.T) {
	hosts := []string{"web-1", "web-2", "web-3"}
	mk := func() *Engine {
		return NewEngine([]*Rule{newRule(t, func(r *Rule) { r.Name = "mass_password_reset"; r.AcrossOrigins = true })}, Options{Instance: "test"})
	}
	// Each replica's lines come from its own log, in order; across replicas they arrive out
	// of time order, as on a detector: each pair swapped.
	arrival := func() []sdk.Event {
		evs := fleetEvents(hosts, 4)
		for i := range evs {
			evs[i].Origin = "/srv/" + evs[i].Field("host") + "/app.log"
		}
		for i := 0; i+1 < len(evs); i += 2 {
			evs[i], evs[i+1] = evs[i+1], evs[i]
		}
		return evs
	}
	const want = "11 resets across 3 replicas (web-1: 4, web-2: 3, web-3: 4)"
	if got := firing(run(mk(), arrival())); len(got) != 1 || got[0].Field(FieldFleetSummary) != want {
		t.Fatalf("without a restart: %q", summaryOf(got))
	}
	for split := 0; split <= 12; split++ {
		events := arrival()
		a := mk()
		var out []sdk.Event
		for i := range events[:split] {
			out = a.Event(&events[i], out)
			out = a.EndBatch(sdk.Watermark{}, out)
		}
		snap := a.Snapshot()
		b := mk()
		if err := b.Restore(snap); err != nil {
			t.Fatalf("split %d: %v", split, err)
		}
		if again := b.Snapshot(); string(again) != string(snap) {
			t.Fatalf("split %d: the snapshot of the restored engine differs", split)
		}
		got := firing(append(out, run(b, events[split:])...))
		if len(got) != 1 || got[0].Field(FieldFleetSummary) != want {
			t.Fatalf("split %d: %d firing alerts, summary %q; want one saying %q", split, len(got), summaryOf(got), want)
		}
	}

	// Without the section (a snapshot written before it existed): the count stays exact.
	events := fleetEvents(hosts, 4)
	a := mk()
	for i := range events[:6] {
		a.Event(&events[i], nil)
		a.EndBatch(sdk.Watermark{}, nil)
	}
	withHosts := a.Snapshot()
	a.rules[0].hosts = nil
	old := a.Snapshot()
	if len(old) >= len(withHosts) {
		t.Fatalf("the snapshot without hosts is not shorter (%d vs %d bytes)", len(old), len(withHosts))
	}
	b := mk()
	if err := b.Restore(old); err != nil {
		t.Fatal(err)
	}
	got := firing(run(b, events[6:]))
	if len(got) != 1 || got[0].Alert.Count != 11 || got[0].Field(FieldFleetSummary) != "11 resets across 3 replicas (web-1: 2, web-2: 2, web-3: 1)" {
		t.Fatalf("from a snapshot without hosts: %d alerts, summary %q", len(got), summaryOf(got))
	}
}

// TestCorruptHostSectionsAreRefused: a truncated host section fails the restore or restores
// hosts only for keys that exist, naming hosts that were counted.
func TestCorruptHostSectionsAreRefused(t *testing.T) {
	hosts := []string{"web-1", "web-2"}
	e := NewEngine([]*Rule{newRule(t, func(r *Rule) { r.Name = "mass_password_reset"; r.AcrossOrigins = true })}, Options{Instance: "test"})
	run(e, fleetEvents(hosts, 3)[:5])
	snap := e.Snapshot()
	for cut := 1; cut < 40 && cut < len(snap); cut++ {
		b := NewEngine(e.Rules(), Options{Instance: "test"})
		if err := b.Restore(snap[:len(snap)-cut]); err != nil {
			continue
		}
		for _, r := range b.rules {
			for sk, hits := range r.hosts {
				if r.keys[sk] == nil {
					t.Fatalf("cut %d: hosts of a key that was not restored", cut)
				}
				for _, h := range hits {
					if h.host != "web-1" && h.host != "web-2" {
						t.Fatalf("cut %d: a hit of host %q", cut, h.host)
					}
				}
			}
		}
	}
}

func summaryOf(alerts []sdk.Event) string {
	if len(alerts) == 0 {
		return ""
	}
	return alerts[0].Field(FieldFleetSummary)
}
