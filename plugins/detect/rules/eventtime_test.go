package rules

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/detect/eventtime"
	"github.com/tda-dev/tda/sdk"
)

// feedAt feeds events one batch each, every event arriving at its arrival time (the wall
// clock of a live run), and ends with a final watermark.
func feedAt(e *Engine, events []sdk.Event, arrivals []time.Time) []sdk.Event {
	var out []sdk.Event
	for i := range events {
		out = e.EventAt(&events[i], arrivals[i], out)
		out = e.EndBatch(sdk.Watermark{Time: arrivals[i]}, out)
	}
	return out
}

// live returns events with arrivals equal to their own times, and the burst rule's events.
func liveBurst(start time.Duration, n int) ([]sdk.Event, []time.Time) {
	evs := every(n, start, time.Second, "password_changed")
	arr := make([]time.Time, len(evs))
	for i := range evs {
		arr[i] = evs[i].Time
	}
	return evs, arr
}

func firing(out []sdk.Event) []sdk.Event {
	var f []sdk.Event
	for _, a := range out {
		if a.Kind == sdk.KindAlert && a.Alert.State == sdk.StateFiring {
			f = append(f, a)
		}
	}
	return f
}

// TestOddLineTimes: a line with any time at all, from year 0 to year 9999, neither blinds,
// stalls nor crashes a rule, live or after a restart, and never moves the engine's clock,
// windows or expiries. A line dated beyond the skew allowance is counted at its arrival.
func TestOddLineTimes(t *testing.T) {
	arrivalOf := base.Add(30 * time.Second) // when the odd line arrives
	tests := []struct {
		name   string
		at     time.Time
		clock  string // the mark the line gets
		counts time.Time
	}{
		{"year 0", time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), eventtime.ClockOutOfRange, arrivalOf},
		{"year 9999", time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), eventtime.ClockOutOfRange, arrivalOf},
		{"year 2261 (int64 nanoseconds still hold it)", time.Date(2261, 1, 1, 0, 0, 0, 0, time.UTC), eventtime.ClockOutOfRange, arrivalOf},
		{"next year", arrivalOf.AddDate(1, 0, 0), eventtime.ClockFutureSkew, arrivalOf},
		{"one nanosecond beyond the skew", arrivalOf.Add(5*time.Minute + 1), eventtime.ClockFutureSkew, arrivalOf},
		{"exactly the skew", arrivalOf.Add(5 * time.Minute), "", arrivalOf.Add(5 * time.Minute)},
		{"far past", time.Date(1971, 1, 1, 0, 0, 0, 0, time.UTC), "", time.Date(1971, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"before 1970", time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), eventtime.ClockOutOfRange, arrivalOf},
		{"zero time", time.Time{}, "", time.Time{}},
	}
	for _, tt := range tests {
		for _, restart := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/restart=%v", tt.name, restart), func(t *testing.T) {
				mk := func() *Engine {
					return NewEngine([]*Rule{newRule(t, func(r *Rule) { r.Threshold = 3 }),
						newRule(t, func(r *Rule) {
							r.Name, r.Match, r.Threshold, r.Window = "m", []string{"migration_started"}, 0, 10*time.Minute
						})}, Options{Instance: "p", Lateness: 5 * time.Second})
				}
				e := mk()
				before, arr := liveBurst(0, 2)
				out := feedAt(e, before, arr)
				// Counted by rule "m" (threshold 0): it fires once, at the time it is counted.
				odd := sdk.Event{Kind: sdk.KindLog, Time: tt.at, Origin: "app.log", Line: []byte("odd"),
					Fields: map[string]string{"event": "migration_started"}}
				clockBefore := e.Now()
				out = e.EventAt(&odd, arrivalOf, out)
				out = e.EndBatch(sdk.Watermark{Time: arrivalOf}, out)
				if got := odd.Field(eventtime.FieldClock); got != tt.clock {
					t.Fatalf("clock mark %q, want %q", got, tt.clock)
				}
				if !tt.counts.IsZero() && !odd.Time.Equal(tt.counts) {
					t.Fatalf("counted at %s, want %s", odd.Time, tt.counts)
				}
				if tt.clock != "" && !e.Now().Equal(clockBefore) {
					t.Fatalf("the odd line moved the engine's clock from %s to %s", clockBefore, e.Now())
				}
				if f := firing(out); len(f) != 1 || (!tt.counts.IsZero() && !f[0].Alert.FirstSeen.Equal(tt.counts)) {
					t.Fatalf("the odd line gave %s, want one alert first seen at %s", states(out), tt.counts)
				}
				if restart {
					snap := e.Snapshot()
					e = mk()
					if err := e.Restore(snap); err != nil {
						t.Fatal(err)
					}
				}
				// The rule still works: a burst minutes later fires at its own time.
				burst, arr := liveBurst(6*time.Minute, 5)
				out = feedAt(e, burst, arr)
				f := firing(out)
				if len(f) != 1 || !f[0].Time.Equal(base.Add(6*time.Minute+3*time.Second)) {
					t.Fatalf("after the odd line the burst gave %s", states(out))
				}
				mig := ev(20*time.Minute, "migration_started")
				out = feedAt(e, []sdk.Event{mig}, []time.Time{mig.Time})
				if f := firing(out); len(f) != 1 || f[0].Alert.Rule != "m" {
					t.Fatalf("the migration after the odd line gave %s", states(out))
				}
			})
		}
	}
}

// TestFutureLineDoesNotSwitchRulesOff is the live failure in full: one line dated a year
// ahead used to move event time a year on, so every later line was "late" and pruned and
// every rule stayed silent, also after a restart. Now it is counted at its arrival.
func TestFutureLineDoesNotSwitchRulesOff(t *testing.T) {
	e := NewEngine([]*Rule{newRule(t, func(r *Rule) { r.Threshold = 3 })}, Options{Instance: "p", Lateness: 5 * time.Second})
	future := ev(365*24*time.Hour, "user_created")
	out := e.EventAt(&future, base, nil)
	burst, arr := liveBurst(time.Minute, 5)
	out = feedAt(e, burst, arr)
	if f := firing(out); len(f) != 1 {
		t.Fatalf("burst after a future line: %s", states(out))
	}
	if c := e.Counters(); c.FutureSkew != 1 {
		t.Fatalf("counters %+v", c)
	}
}

// TestPoisonedSnapshot restores snapshots written before lines from the future were held to
// their arrival: a version-1 snapshot whose clock, windows and incidents are dated in 2150 or
// hold impossible times, and a version-2 snapshot of an engine that had no arrival clock. The
// decoder sanitises them; the rules keep working.
func TestPoisonedSnapshot(t *testing.T) {
	future := time.Date(2150, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	v1 := func(clock int64, hitTimes []int64, incTimes int64) []byte {
		w := &writer{}
		w.b = append(w.b, snapMagic...)
		w.uvarint(1)
		w.varint(clock)
		w.uvarint(0) // no override
		w.uvarint(1)
		w.str("r")
		w.uvarint(0)
		w.uvarint(0)
		w.uvarint(0)
		w.uvarint(0) // ring
		w.uvarint(1) // one key
		w.str("")
		w.uvarint(math.MaxUint32)
		w.uvarint(uint64(len(hitTimes)))
		var prev int64
		for _, h := range hitTimes {
			w.varint(h - prev)
			prev = h
			w.uvarint(1)
			w.uvarint(1)
		}
		w.uvarint(1) // one incident
		w.str("")
		w.str("fp-old")
		w.str(sdk.StateFiring)
		for i := 0; i < 4; i++ {
			w.varint(incTimes)
		}
		w.varint(20)
		w.varint(20)
		w.uvarint(0)
		w.varint(incTimes)
		w.varint(incTimes + int64(time.Minute))
		w.str("app.log")
		w.str("file.test")
		w.str("")
		w.str("")
		w.uvarint(0)
		w.uvarint(0) // approvals
		return w.b
	}
	noArrival := func() []byte {
		e := NewEngine([]*Rule{newRule(t, func(r *Rule) { r.Threshold = 3 })}, Options{Instance: "p"})
		f := ev(time.Duration(future-base.UnixNano()), "password_changed")
		run(e, every(11, 0, time.Second, "password_changed"))
		var out []sdk.Event
		for i := 0; i < 5; i++ {
			g := f
			out = e.Event(&g, out)
		}
		return e.Snapshot()
	}
	tests := []struct {
		name string
		snap []byte
	}{
		{"version 1, clock and window in 2150", v1(future, []int64{future - 1e9, future}, future)},
		{"version 1, impossible times", v1(math.MaxInt64, []int64{-5, math.MaxInt64 - 10}, math.MinInt64+1)},
		{"version 1, unsorted hits", v1(base.UnixNano(), []int64{base.UnixNano(), base.UnixNano() - 1e9}, base.UnixNano())},
		{"version 2 written without arrival clocks", noArrival()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEngine([]*Rule{newRule(t, func(r *Rule) { r.Threshold = 3 })}, Options{Instance: "p", Lateness: 5 * time.Second})
			if err := e.Restore(tt.snap); err != nil {
				t.Fatal(err)
			}
			burst, arr := liveBurst(time.Hour, 5)
			out := feedAt(e, burst, arr)
			f := firing(out)
			if len(f) != 1 || !f[0].Time.Equal(base.Add(time.Hour+3*time.Second)) {
				t.Fatalf("after restoring: %s", states(out))
			}
			if e.Now().After(base.Add(2 * time.Hour)) {
				t.Fatalf("clock still poisoned: %s", e.Now())
			}
			if e.Counters().Sanitized == 0 {
				t.Fatalf("nothing sanitised: %+v", e.Counters())
			}
			// And once more through a restart: the sanitised state stays sane.
			snap := e.Snapshot()
			again := NewEngine(e.Rules(), Options{Instance: "p", Lateness: 5 * time.Second})
			if err := again.Restore(snap); err != nil {
				t.Fatal(err)
			}
			burst, arr = liveBurst(3*time.Hour, 5)
			if f := firing(feedAt(again, burst, arr)); len(f) != 1 {
				t.Fatal("second restart: the burst did not fire")
			}
		})
	}
}
