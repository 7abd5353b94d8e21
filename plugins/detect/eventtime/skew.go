package eventtime

import (
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/sdk"
)

// DefaultMaxFutureSkew is how far ahead of its arrival a line's own time may be before the
// line is counted at its arrival time instead.
const DefaultMaxFutureSkew = 5 * time.Minute

// The range of event times detection works with. Times outside it are no real clock's (a
// year-0 or year-9999 timestamp, a parser's mistake): they would overflow the nanosecond
// arithmetic of windows, so such a line is counted at its arrival time. MaxTime leaves
// centuries of headroom below the int64 nanosecond limit (year 2262) for window and
// lateness additions.
var (
	MinTime = time.Unix(1, 0).UTC()
	MaxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Fields set on a line that is not counted at its own time.
const (
	// FieldClock says why: ClockFutureSkew or ClockOutOfRange.
	FieldClock = "clock"
	// FieldLineTime keeps the line's own time, as the line wrote it.
	FieldLineTime = "line_time"
)

// Values of FieldClock.
const (
	ClockFutureSkew = "future_skew"
	ClockOutOfRange = "out_of_range"
)

// Valid reports whether t is within [MinTime, MaxTime]. Every line's time is checked more
// than once, so it compares Unix seconds: both bounds are whole seconds.
func Valid(t time.Time) bool {
	s := t.Unix()
	return s >= minUnix && (s < maxUnix || s == maxUnix && t.Nanosecond() == 0)
}

// The bounds of Valid in Unix seconds (MinTime and MaxTime are whole seconds).
var minUnix, maxUnix = MinTime.Unix(), MaxTime.Unix()

// Judge decides the time a line is counted at. arrival is when it reached the agent (the
// source's stamp or the batch's wall clock; zero when unknown, as in a replay without
// stamps). A line dated more than maxSkew ahead of its arrival, or outside the valid range,
// is counted at its arrival; the reason is "" when the line's own time stands. A line
// without a time, or out of range with the arrival unknown, gets the zero time: the caller
// dates it (its origin's time). A judged line must never move a clock: the caller counts it
// but does not let it advance its origin's time.
func Judge(t, arrival time.Time, maxSkew time.Duration) (time.Time, string) {
	if !Valid(arrival) {
		arrival = time.Time{}
	}
	switch {
	case t.IsZero():
		return t, ""
	case !Valid(t):
		return arrival, ClockOutOfRange
	case !arrival.IsZero() && maxSkew > 0 && t.Sub(arrival) > maxSkew:
		return arrival, ClockFutureSkew
	}
	return t, ""
}

// Apply judges a parsed line's time and, when the line is not counted at its own time, sets
// ev.Time to the time it is counted at and records why in its fields (FieldClock,
// FieldLineTime). It returns the reason ("" when the line's time stands). A line already
// judged upstream keeps its mark.
func Apply(ev *sdk.Event, arrival time.Time, maxSkew time.Duration) string {
	t, why := Judge(ev.Time, arrival, maxSkew)
	if why == "" {
		ev.Time = t
		return ""
	}
	if ev.Field(FieldLineTime) == "" {
		ev.SetField(FieldLineTime, formatAny(ev.Time))
	}
	ev.SetField(FieldClock, why)
	ev.Time = t
	return why
}

func formatAny(t time.Time) string {
	if y := t.Year(); y < 0 || y > 9999 {
		return t.UTC().String()
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// SkewReport counts the lines not counted at their own time and reports them at most once
// per Every (wall clock), with the counts since the last report and one example: a warning in
// the log and an audit record (sdk.AuditClockSkew) for the host, which counts it in its
// metrics and state. It is safe for concurrent use.
type SkewReport struct {
	Log   hclog.Logger
	Every time.Duration
	// Now is the wall clock (time.Now when nil).
	Now func() time.Time

	mu                 sync.Mutex
	future, outOfRange uint64
	pendingF, pendingO uint64
	last               time.Time
	exampleOrigin      string
	exampleLine, exAt  string
	countedAt          time.Time
}

// Counts returns the totals: lines dated too far ahead of their arrival, and lines whose time
// is outside the valid range.
func (r *SkewReport) Counts() (future, outOfRange uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.future, r.outOfRange
}

// Observe counts a judged line (why as returned by Apply).
func (r *SkewReport) Observe(why string, ev *sdk.Event) {
	if why == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch why {
	case ClockFutureSkew:
		r.future++
		r.pendingF++
	case ClockOutOfRange:
		r.outOfRange++
		r.pendingO++
	}
	r.exampleOrigin, r.exampleLine, r.exAt = ev.Origin, ev.Field(FieldLineTime), formatAny(ev.Time)
	r.countedAt = ev.Time
}

// Report returns the audit record of the lines counted since the last report, and logs the
// warning, when there are any and the last report is at least Every old (a minute by
// default); ok is false otherwise. Callers call it once per batch and pass the record on.
func (r *SkewReport) Report() (rec sdk.Event, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pendingF == 0 && r.pendingO == 0 {
		return rec, false
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	every := r.Every
	if every <= 0 {
		every = time.Minute
	}
	t := now()
	if !r.last.IsZero() && t.Sub(r.last) < every {
		return rec, false
	}
	r.last = t
	if r.Log != nil {
		r.Log.Warn("lines dated ahead of their arrival or outside any real clock were counted at their arrival time; "+
			"check the clock and time zone of the host or app that wrote them",
			"future_skew", r.pendingF, "out_of_range", r.pendingO, "future_skew_total", r.future,
			"out_of_range_total", r.outOfRange, "example_origin", r.exampleOrigin,
			"example_line_time", r.exampleLine, "counted_at", r.exAt)
	}
	// Dated like the line it names (its arrival), so that a replay reports the same records.
	at := r.countedAt
	if at.IsZero() {
		at = t
	}
	rec = sdk.Event{Time: at.UTC(), Kind: sdk.KindAudit, Fields: map[string]string{
		sdk.FieldAuditEvent:      sdk.AuditClockSkew,
		sdk.FieldFutureSkew:      strconv.FormatUint(r.pendingF, 10),
		sdk.FieldOutOfRange:      strconv.FormatUint(r.pendingO, 10),
		sdk.FieldExampleOrigin:   r.exampleOrigin,
		sdk.FieldExampleLineTime: r.exampleLine,
	}}
	r.pendingF, r.pendingO = 0, 0
	return rec, true
}
