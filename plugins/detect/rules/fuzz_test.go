package rules

import (
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/detect/override"
	"github.com/tda-dev/tda/sdk"
)

// FuzzRestore feeds arbitrary bytes to the snapshot decoder: it must fail cleanly or give an
// engine that keeps working.
func FuzzRestore(f *testing.F) {
	mk := func() *Engine {
		r := &Rule{Name: "r", Match: []string{"password_changed"}, Threshold: 2, Window: time.Minute, GroupBy: []string{"ip"}, Excerpt: 2}
		_ = r.Check()
		return NewEngine([]*Rule{r}, Options{})
	}
	seed := mk()
	evs := every(5, 0, time.Second, "password_changed", "ip", "1.2.3.4")
	run(seed, evs)
	f.Add(seed.Snapshot())
	f.Add([]byte("TDAR\x01"))
	f.Add([]byte("TDAR\x02"))
	// A snapshot with origin clocks, an override history, open and closed incidents.
	busy := NewEngine([]*Rule{func() *Rule {
		r := &Rule{Name: "r", Match: []string{"password_changed"}, Threshold: 2, Window: time.Minute, GroupBy: []string{"ip"}, Excerpt: 2}
		_ = r.Check()
		return r
	}()}, Options{AllowOrigins: func() override.Origins { o, _ := override.NewOrigins([]string{"*"}); return o }()})
	decl := ev(0, "override_enabled", "actor", "a", "ttl", "1m")
	busy.Event(&decl, nil)
	run(busy, concat(every(5, 0, time.Second, "password_changed", "ip", "1.2.3.4"), every(5, time.Hour, time.Second, "password_changed", "ip", "5.6.7.8")))
	late := every(5, 2*time.Hour, time.Second, "password_changed", "ip", "1.2.3.4")
	for i := range late {
		busy.Event(&late[i], nil)
	}
	f.Add(busy.Snapshot())
	// A snapshot with the hosts of fleet events.
	fleet := mk()
	run(fleet, fleetEvents([]string{"web-1", "web-2", "web-3"}, 2))
	f.Add(fleet.Snapshot())
	f.Fuzz(func(t *testing.T, b []byte) {
		e := mk()
		if err := e.Restore(b); err != nil {
			return
		}
		// Whatever the snapshot held, a live burst an hour after the first line that arrives
		// fires: no restored state can keep the rule blind.
		t0 := base.Add(24 * time.Hour)
		first := ev(24*time.Hour, "user_created")
		out := e.EventAt(&first, t0, nil)
		e.EndBatch(sdk.Watermark{Time: t0}, out)
		burst := every(5, 25*time.Hour, time.Second, "password_changed", "ip", "9.9.9.9")
		arr := make([]time.Time, len(burst))
		for i := range burst {
			arr[i] = burst[i].Time
		}
		if f := firing(feedAt(e, burst, arr)); len(f) == 0 || f[0].Alert.Key != "9.9.9.9" {
			t.Fatalf("a live burst after restoring %q did not fire", b)
		}
		more := every(5, time.Hour, time.Second, "password_changed", "ip", "1.2.3.4")
		run(e, more)
		_ = e.Snapshot()
	})
}

// FuzzEventTimes feeds lines with arbitrary times (any int64 of Unix seconds and
// nanoseconds: year 0, year 9999, the zero time, far past) from two origins, with and without
// an arrival clock, snapshots and restores the engine in the middle, then a normal burst that
// arrives live: it must fire, at its own time, whatever came before.
func FuzzEventTimes(f *testing.F) {
	f.Add(int64(0), int64(0), int64(0), uint8(0))
	f.Add(int64(-62135596800), int64(253402300799), int64(0), uint8(3)) // year 1, year 9999
	f.Add(int64(1<<62), int64(-1<<62), int64(123456789), uint8(1))      // beyond any time
	f.Add(base.AddDate(1, 0, 0).Unix(), base.Add(-time.Hour).Unix(), int64(0), uint8(2))
	f.Fuzz(func(t *testing.T, s1, s2, ns int64, mode uint8) {
		mk := func() *Engine {
			return NewEngine([]*Rule{
				newRule(t, func(r *Rule) { r.Threshold = 3; r.Realert = time.Second }),
				newRule(t, func(r *Rule) {
					r.Name, r.Match, r.Threshold, r.GroupBy = "m", []string{"migration_started"}, 0, []string{"origin"}
				}),
			}, Options{Instance: "p", Lateness: 5 * time.Second, AllowOrigins: origins(t, "*")})
		}
		e := mk()
		arrival := base
		if mode&1 == 1 {
			arrival = time.Time{} // no arrival clock: a replay without the source's stamps
		}
		var out []sdk.Event
		for i, sec := range []int64{s1, s2, s1 ^ s2, s2 / 2} {
			for _, typ := range []string{"password_changed", "migration_started", "override_enabled"} {
				odd := sdk.Event{Kind: sdk.KindLog, Time: time.Unix(sec, ns%1e9), Origin: []string{"a.log", "b.log"}[i%2],
					Line: []byte("odd"), Fields: map[string]string{"event": typ, "ttl": "1h", "actor": "x"}}
				if mode&4 == 4 {
					odd.Time = time.Time{}
				}
				out = e.EventAt(&odd, arrival, out)
			}
			out = e.EndBatch(sdk.Watermark{Time: arrival}, out)
		}
		if mode&2 == 2 {
			r := mk()
			if err := r.Restore(e.Snapshot()); err != nil {
				t.Fatalf("restoring the engine's own snapshot: %v", err)
			}
			e = r
		}
		// A live burst well after everything sane that came before: it fires at its own time,
		// in an origin that had odd lines when they arrived live. (Without an arrival clock a
		// line's own time is all there is: it then stands for its origin, which is why the
		// burst comes from another one.)
		start := 2 * time.Hour
		burst, arr := liveBurst(start, 5)
		for i := range burst {
			burst[i].Origin = "a.log"
			if arrival.IsZero() {
				burst[i].Origin = "c.log"
			}
		}
		got := firing(feedAt(e, burst, arr))
		if len(got) == 0 || !got[0].Time.Equal(base.Add(start+3*time.Second)) {
			t.Fatalf("burst after odd times (%d, %d, %d, mode %d): %s", s1, s2, ns, mode, states(got))
		}
		_ = e.Snapshot()
	})
}
