package runtime

import (
	"fmt"
	"strconv"
	"time"

	"github.com/tda-dev/tda/sdk"
)

// clockQuiet is how long after the last clock report a pipeline stays degraded for lines with
// impossible clocks: processors report at most once a minute while such lines keep coming,
// so ten quiet minutes mean the clock was fixed (or the lines stopped).
const clockQuiet = 10 * time.Minute

// ClockAddress is the address under which a pipeline's lines with impossible clocks are
// reported in the state.
func ClockAddress(pipeline string) string { return "clocks." + pipeline }

// observeClockReport counts a processor's clock report (sdk.AuditClockSkew) in
// tda_event_clock_skew_total and reports the pipeline degraded, with an example and what to
// do, until clockQuiet has passed without another report. Anything else is ignored.
func (rt *Runtime) observeClockReport(pipeline string, e *sdk.Event) {
	if e.Kind != sdk.KindAudit || e.Field(sdk.FieldAuditEvent) != sdk.AuditClockSkew {
		return
	}
	future, _ := strconv.ParseUint(e.Field(sdk.FieldFutureSkew), 10, 64)
	outOfRange, _ := strconv.ParseUint(e.Field(sdk.FieldOutOfRange), 10, 64)
	if future == 0 && outOfRange == 0 {
		return
	}
	rt.metrics.clockSkew.WithLabelValues(pipeline, "future_skew").Add(float64(future))
	rt.metrics.clockSkew.WithLabelValues(pipeline, "out_of_range").Add(float64(outOfRange))
	example := ""
	if o, t := e.Field(sdk.FieldExampleOrigin), e.Field(sdk.FieldExampleLineTime); o != "" || t != "" {
		example = fmt.Sprintf(" (e.g. %s wrote %s)", o, t)
	}
	reason := fmt.Sprintf("lines with impossible clocks: %d dated too far ahead of their arrival, %d outside 1970-2200%s; "+
		"they were counted at their arrival time; fix the clock or time zone of the host or app that writes them "+
		"(max_future_skew sets the tolerance); this clears %s after the last such line",
		future, outOfRange, example, sdk.FormatDuration(clockQuiet))
	rt.health.setRecent(ClockAddress(pipeline), reason, rt.health.now().Add(clockQuiet))
}
