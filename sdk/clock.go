package sdk

// A processor that judges event times reports the lines whose own time it could not take at
// face value (dated further ahead of their arrival than it allows, or outside any real
// clock) with an audit record: Kind KindAudit, Fields[FieldAuditEvent] = AuditClockSkew, and
// the counts since its previous report in FieldFutureSkew and FieldOutOfRange (decimal). It
// emits one at most once a minute. The host counts them in the metric
// tda_event_clock_skew_total{pipeline,clock} and reports the pipeline degraded ("lines with
// impossible clocks") until the lines stop coming; sinks that take audit records keep them.
const (
	// FieldAuditEvent names what an audit record is about.
	FieldAuditEvent = "event"
	// AuditClockSkew is the FieldAuditEvent of a clock report.
	AuditClockSkew = "clock_skew"
	// FieldFutureSkew counts lines dated too far ahead of their arrival, counted at arrival.
	FieldFutureSkew = "future_skew"
	// FieldOutOfRange counts lines dated outside the range of real clocks (before 1970, after
	// 2200), counted at arrival.
	FieldOutOfRange = "out_of_range"
	// FieldExampleOrigin and FieldExampleLineTime show one such line: where it came from and
	// the time it wrote.
	FieldExampleOrigin   = "example_origin"
	FieldExampleLineTime = "example_line_time"
)
