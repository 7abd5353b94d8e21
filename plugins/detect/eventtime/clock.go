// Package eventtime keeps a processor's notion of "now" in event time.
//
// Detection runs in event time so that a replay of the same lines gives the same alerts. Time
// advances with the newest event seen. When the agent runs live and the input goes quiet, the
// wall clock in the watermark moves "now" on from the newest event by the wall time elapsed
// since that event was processed (minus a grace for lines still in flight), so windows drain
// and overrides expire without waiting for the next line. During a catch-up on old lines the
// events keep arriving and the wall clock does not interfere.
package eventtime

import (
	"time"

	"github.com/tda-dev/tda/sdk"
)

// Grace is how long the input must be quiet before the wall clock moves event time on.
const Grace = 2 * time.Second

// Clock is a processor's event-time clock. The zero value is ready.
type Clock struct {
	max         time.Time
	advanced    bool // max moved during the current batch
	anchorWall  time.Time
	anchorEvent time.Time
}

// Observe records an event time. Times outside [MinTime, MaxTime] are ignored: they never
// move the clock.
func (c *Clock) Observe(t time.Time) {
	if !Valid(t) {
		return
	}
	if t.After(c.max) {
		c.max = t
		c.advanced = true
	}
}

// Max returns the newest event time seen.
func (c *Clock) Max() time.Time { return c.max }

// Set restores the newest event time from a snapshot; a time outside the valid range (a
// snapshot written before such times were refused) leaves the clock unset.
func (c *Clock) Set(t time.Time) {
	if !Valid(t) {
		t = time.Time{}
	}
	c.max = t
	c.anchorWall = time.Time{}
}

// EndBatch is called after each batch with its watermark and returns "now": the newest event
// time, moved on by the wall clock while the input is quiet.
func (c *Clock) EndBatch(wm sdk.Watermark) time.Time {
	now := c.max
	if wm.Time.IsZero() || c.max.IsZero() {
		c.advanced = false
		return now
	}
	if c.advanced || c.anchorWall.IsZero() || !c.anchorEvent.Equal(c.max) {
		c.anchorWall, c.anchorEvent = wm.Time, c.max
	} else if idle := wm.Time.Sub(c.anchorWall) - Grace; idle > 0 {
		now = c.max.Add(idle)
		if now.After(MaxTime) {
			now = MaxTime
		}
	}
	c.advanced = false
	return now
}
