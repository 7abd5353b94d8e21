package rules

import (
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
)

// incidents describes every incident of a run as rule, key, origin, state, count and
// first_seen of its first record, and the peak count of its resolution, sorted: the multiset
// that must not depend on how origins interleave.
func incidents(out []sdk.Event) []string {
	first := map[string]string{}
	peak := map[string]int64{}
	var fps []string
	for _, a := range out {
		if a.Kind != sdk.KindAlert {
			continue
		}
		fp := a.Alert.Fingerprint
		if _, ok := first[fp]; !ok {
			first[fp] = fmt.Sprintf("%s key=%q origin=%s %s count=%d first_seen=%s", a.Alert.Rule, a.Alert.Key, a.Origin,
				a.Alert.State, a.Alert.Count, a.Alert.FirstSeen.Sub(base))
			fps = append(fps, fp)
		}
		if a.Alert.State == sdk.StateResolved {
			peak[fp] = a.Alert.Count
		}
	}
	var s []string
	for _, fp := range fps {
		s = append(s, fmt.Sprintf("%s peak=%d", first[fp], peak[fp]))
	}
	sort.Strings(s)
	return s
}

// originLines is one origin's lines in its own order: bursts of resets, failed logins from
// addresses shared with the other origins, migrations, quiet gaps, a few lines out of order
// (within the lateness allowance), starting at offset.
func originLines(rng *rand.Rand, origin string, offset time.Duration) []sdk.Event {
	var out []sdk.Event
	at := offset
	for burst := 0; burst < 6; burst++ {
		at += time.Duration(rng.Intn(20)) * time.Minute
		n := 3 + rng.Intn(14)
		for i := 0; i < n; i++ {
			t := at + time.Duration(rng.Intn(4000))*time.Millisecond
			at = t
			if rng.Intn(8) == 0 {
				t -= time.Duration(rng.Intn(3)) * time.Second // late, within the allowance
			}
			var e sdk.Event
			switch rng.Intn(6) {
			case 0, 1, 2:
				e = ev(t, "password_changed")
			case 3, 4:
				e = ev(t, "login_failed", "ip", fmt.Sprintf("10.0.0.%d", rng.Intn(3)))
			default:
				e = ev(t, "migration_started")
			}
			e.Origin = origin
			out = append(out, e)
		}
	}
	return out
}

func interleaveRules(t *testing.T) []*Rule {
	return []*Rule{
		newRule(t, func(r *Rule) { r.Name, r.Threshold, r.Realert = "resets", 5, 20*time.Second }),
		newRule(t, func(r *Rule) {
			r.Name, r.Match, r.Threshold, r.GroupBy = "auth", []string{"login_failed"}, 3, []string{"ip"}
		}),
		newRule(t, func(r *Rule) {
			r.Name, r.Match, r.Threshold, r.Window, r.GroupBy = "migrations", []string{"migration_started"}, 0, 10*time.Minute, []string{"origin"}
		}),
	}
}

// TestIncidentsDoNotDependOnInterleaving replays several files together in random
// interleavings (each file in its own order, one of them 20 minutes behind the others) and
// random batches: the incidents are the same multiset as when the files are read one after
// the other.
func TestIncidentsDoNotDependOnInterleaving(t *testing.T) {
	for seed := int64(1); seed <= 40; seed++ {
		rng := rand.New(rand.NewSource(seed))
		files := [][]sdk.Event{
			originLines(rng, "a.log", 20*time.Minute),
			originLines(rng, "b.log", 0), // lags 20 minutes behind the others
			originLines(rng, "c.log", 20*time.Minute),
		}
		replay := func(order []sdk.Event, batch func() int) []string {
			e := NewEngine(interleaveRules(t), Options{Instance: "p", Lateness: 5 * time.Second})
			var out []sdk.Event
			for i := 0; i < len(order); {
				n := min(batch(), len(order)-i)
				for _, x := range order[i : i+n] {
					x := x.Clone()
					out = e.Event(&x, out)
				}
				out = e.EndBatch(sdk.Watermark{}, out)
				i += n
			}
			return incidents(e.EndBatch(sdk.Watermark{Final: true}, out))
		}
		want := replay(concat(files...), func() int { return 1 })
		if len(want) < 5 {
			t.Fatalf("seed %d: scenario too small: %v", seed, want)
		}
		for round := 0; round < 5; round++ {
			var order []sdk.Event
			pos := make([]int, len(files))
			for left := 0; ; {
				left = 0
				for i := range files {
					left += len(files[i]) - pos[i]
				}
				if left == 0 {
					break
				}
				k := rng.Intn(left)
				for i := range files {
					if r := len(files[i]) - pos[i]; k < r {
						order = append(order, files[i][pos[i]])
						pos[i]++
						break
					} else {
						k -= r
					}
				}
			}
			got := replay(order, func() int { return 1 + rng.Intn(50) })
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("seed %d round %d: incidents differ\n got:\n%s\nwant:\n%s", seed, round,
					strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		}
	}
}

// TestLaggingOriginSecondBurstPages: origin b lags 20 minutes behind origin a. Its second
// burst, 20 minutes after its first, is an incident of its own and pages, however far ahead
// a is when b's lines arrive.
func TestLaggingOriginSecondBurstPages(t *testing.T) {
	e := NewEngine([]*Rule{newRule(t, func(r *Rule) { r.Threshold = 3 })}, Options{Instance: "p", Lateness: 30 * time.Second})
	at := func(evs []sdk.Event, origin string) []sdk.Event {
		for i := range evs {
			evs[i].Origin = origin
		}
		return evs
	}
	fast := at(every(60, 20*time.Minute, 30*time.Second, "user_created"), "a.log") // a keeps time 20-50 min
	first := at(every(5, 0, time.Second, "password_changed"), "b.log")
	second := at(every(5, 20*time.Minute, time.Second, "password_changed"), "b.log")
	var order []sdk.Event
	order = append(order, fast[:40]...) // a is 40 minutes on before b's lines arrive
	order = append(order, first...)
	order = append(order, second...) // b catches up before a moves on
	order = append(order, fast[40:]...)
	out := run(e, order)
	f := firing(out)
	if len(f) != 2 || !f[0].Alert.FirstSeen.Equal(base) || !f[1].Alert.FirstSeen.Equal(base.Add(20*time.Minute)) {
		t.Fatalf("want two pages from b.log, got %s", states(out))
	}
}

// TestAcrossOrigins: six resets in each of two replicas' logs within a minute page a rule
// that counts across origins (threshold 10) and not one that counts per origin; the incident
// survives a snapshot and restore.
func TestAcrossOrigins(t *testing.T) {
	var lines []sdk.Event
	for i, e := range every(12, 0, 2*time.Second, "password_changed") {
		e.Origin = []string{"web-1.log", "web-2.log"}[i%2]
		lines = append(lines, e)
	}
	for _, across := range []bool{false, true} {
		mk := func() *Engine {
			return NewEngine([]*Rule{newRule(t, func(r *Rule) { r.AcrossOrigins = across })}, Options{Instance: "p", Lateness: 5 * time.Second})
		}
		e := mk()
		var out []sdk.Event
		half := clone(lines)
		for i := range half[:8] {
			out = e.Event(&half[i], out)
		}
		r := mk()
		if err := r.Restore(e.Snapshot()); err != nil {
			t.Fatal(err)
		}
		out = append(out, run(r, half[8:])...)
		if f := firing(out); across != (len(f) == 1) || len(f) > 1 {
			t.Fatalf("across_origins=%v: %s", across, states(out))
		}
	}
}

// TestSameInputSameOrder: the records of a run come in the same order every time, also
// the resolutions several origins' clocks cause at the end of one batch.
func TestSameInputSameOrder(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	var all []sdk.Event
	for i := 0; i < 8; i++ {
		all = append(all, originLines(rng, fmt.Sprintf("o%d.log", i), 0)...)
	}
	var first string
	for round := 0; round < 5; round++ {
		e := NewEngine(interleaveRules(t), Options{Instance: "p", Lateness: 5 * time.Second})
		var out []sdk.Event
		evs := clone(all)
		for i := range evs {
			out = e.Event(&evs[i], out)
		}
		out = e.EndBatch(sdk.Watermark{Final: true}, out)
		got := deliveryKeys(out)
		if round == 0 {
			first = got
		} else if got != first {
			t.Fatalf("round %d gave another order", round)
		}
	}
}
