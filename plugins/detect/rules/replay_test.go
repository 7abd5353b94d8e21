package rules

import (
	"fmt"
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
)

// TestReadingHistoryAgain: an engine is snapshotted after a stretch of history (a burst
// suppressed under an app's override, the override's expiry, a burst that paged), restored,
// and fed the same lines again from the start (a lost checkpoint, a restored file), then
// more. Nothing read again is recorded twice: no alert record, no override record; the
// suppressed incident does not turn into a page; the override is not ended early; new lines
// after the history are detected as usual.
func TestReadingHistoryAgain(t *testing.T) {
	rules := func() []*Rule {
		return []*Rule{
			newRule(t, func(r *Rule) {
				r.Name, r.Match, r.Threshold, r.Overridable = "creations", []string{"user_created"}, 5, true
			}),
			newRule(t, func(r *Rule) { r.Name, r.Threshold = "resets", 5 }),
		}
	}
	opts := Options{Instance: "p", Lateness: 5 * time.Second, AllowOrigins: origins(t, "app.log"), RecordOverrides: true}
	history := concat(
		[]sdk.Event{ev(0, "override_enabled", "actor", "carol", "reason", "import", "ttl", "10m")},
		every(8, time.Minute, time.Second, "user_created"),
		every(8, 12*time.Minute, time.Second, "password_changed"),
		every(8, 15*time.Minute, time.Second, "user_created"),
	)
	later := every(8, 30*time.Minute, time.Second, "password_changed")

	for _, split := range []int{len(history), len(history) - 4, 10} {
		a := NewEngine(rules(), opts)
		var first []sdk.Event
		h := clone(history)
		for i := range h[:split] {
			first = a.Event(&h[i], first)
			first = a.EndBatch(sdk.Watermark{}, first)
		}
		seen := map[string]bool{}
		for _, x := range first {
			seen[recordKey(x)] = true
		}
		b := NewEngine(rules(), opts)
		if err := b.Restore(a.Snapshot()); err != nil {
			t.Fatal(err)
		}
		var again []sdk.Event
		h = clone(history)
		for i := range h {
			again = b.Event(&h[i], again)
			again = b.EndBatch(sdk.Watermark{}, again)
		}
		l := clone(later)
		for i := range l {
			again = b.Event(&l[i], again)
			again = b.EndBatch(sdk.Watermark{}, again)
		}
		again = b.EndBatch(sdk.Watermark{Final: true}, again)

		// The reference: the whole history and the later lines read once.
		ref := run(NewEngine(rules(), opts), concat(clone(history), clone(later)))
		want := map[string]bool{}
		for _, x := range ref {
			want[recordKey(x)] = true
		}
		for _, x := range again {
			k := recordKey(x)
			if seen[k] {
				t.Fatalf("split %d: recorded twice: %s", split, k)
			}
			if !want[k] {
				t.Fatalf("split %d: a record the single reading never made: %s", split, k)
			}
			if x.Kind == sdk.KindAlert && x.Alert.Rule == "creations" && x.Alert.State == sdk.StateFiring &&
				x.Alert.FirstSeen.Before(base.Add(10*time.Minute)) {
				t.Fatalf("split %d: the suppressed incident paged: %s", split, k)
			}
			if x.Kind == sdk.KindAudit && x.Field("event") == "override_expired" && x.Time.Before(base.Add(10*time.Minute)) {
				t.Fatalf("split %d: override ended early: %v", split, x)
			}
			seen[k] = true
		}
		for k := range want {
			if !seen[k] {
				t.Fatalf("split %d: missing after the restore: %s", split, k)
			}
		}
	}
}

// recordKey identifies an alert record by its delivery key, an audit record by its event,
// actor and time.
func recordKey(x sdk.Event) string {
	if x.Kind == sdk.KindAlert {
		return x.Alert.Rule + ":" + x.Alert.DeliveryKey()
	}
	return x.Kind + ":" + x.Field("event") + ":" + x.Field("actor") + "@" + x.Time.Sub(base).String()
}

func TestClosedSetKeepsTheNewest(t *testing.T) {
	c := newClosedSet()
	for i := 0; i < maxClosed+10; i++ {
		c.add(fmt.Sprint(i))
	}
	if c.has("9") || !c.has("10") || !c.has(fmt.Sprint(maxClosed+9)) || len(c.set) != maxClosed {
		t.Fatalf("has 9=%v 10=%v newest=%v size=%d", c.has("9"), c.has("10"), c.has(fmt.Sprint(maxClosed+9)), len(c.set))
	}
	if o := c.oldestFirst(); o[0] != "10" || o[len(o)-1] != fmt.Sprint(maxClosed+9) {
		t.Fatalf("order %s ... %s", o[0], o[len(o)-1])
	}
}
