package eventtime

import (
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
)

func TestClock(t *testing.T) {
	ev := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	wall := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) // far from event time: catch-up or a wrong zone
	var c Clock
	if now := c.EndBatch(sdk.Watermark{Time: wall}); !now.IsZero() {
		t.Fatalf("no event yet: %s", now)
	}
	c.Observe(ev)
	c.Observe(ev.Add(-time.Hour)) // older events do not move time back
	steps := []struct {
		wall time.Duration
		want time.Duration
	}{
		{0, 0},           // a batch with events: now is the newest event
		{time.Second, 0}, // quiet for less than the grace
		{10 * time.Second, 10*time.Second - Grace}, // quiet: the wall clock moves event time on
		{time.Minute, time.Minute - Grace},
	}
	for _, s := range steps {
		if now := c.EndBatch(sdk.Watermark{Time: wall.Add(s.wall)}); !now.Equal(ev.Add(s.want)) {
			t.Fatalf("after %s of wall time: now %s, want %s", s.wall, now, ev.Add(s.want))
		}
	}
	// A new event re-anchors: event time is the newest event again.
	c.Observe(ev.Add(5 * time.Second))
	if now := c.EndBatch(sdk.Watermark{Time: wall.Add(2 * time.Minute)}); !now.Equal(ev.Add(5 * time.Second)) {
		t.Fatalf("after a new event: %s", now)
	}
	// Replays (zero watermark) never use the wall clock.
	if now := c.EndBatch(sdk.Watermark{}); !now.Equal(ev.Add(5 * time.Second)) {
		t.Fatalf("replay: %s", now)
	}
}
