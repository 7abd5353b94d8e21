package eventtime

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/sdk"
)

func TestJudge(t *testing.T) {
	arr := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	skew := 5 * time.Minute
	tests := []struct {
		name    string
		t, arr  time.Time
		want    time.Time
		wantWhy string
	}{
		{"own time", arr.Add(-time.Hour), arr, arr.Add(-time.Hour), ""},
		{"at the skew", arr.Add(skew), arr, arr.Add(skew), ""},
		{"beyond the skew", arr.Add(skew + 1), arr, arr, ClockFutureSkew},
		{"year 9999", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), arr, arr, ClockOutOfRange},
		{"year 0", time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), arr, arr, ClockOutOfRange},
		{"year 0, no arrival", time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), time.Time{}, time.Time{}, ClockOutOfRange},
		{"future, no arrival: the line's time is all there is", arr.AddDate(1, 0, 0), time.Time{}, arr.AddDate(1, 0, 0), ""},
		{"zero time", time.Time{}, arr, time.Time{}, ""},
		{"arrival out of range is no arrival", arr.AddDate(1, 0, 0), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), arr.AddDate(1, 0, 0), ""},
		{"the first valid instant", MinTime, arr, MinTime, ""},
		{"just before it", MinTime.Add(-1), arr, arr, ClockOutOfRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := Judge(tt.t, tt.arr, skew)
			if !got.Equal(tt.want) || why != tt.wantWhy {
				t.Fatalf("Judge = %s %q, want %s %q", got, why, tt.want, tt.wantWhy)
			}
			ev := sdk.Event{Time: tt.t}
			if Apply(&ev, tt.arr, skew) != tt.wantWhy || ev.Field(FieldClock) != tt.wantWhy ||
				(tt.wantWhy != "" && ev.Field(FieldLineTime) == "") {
				t.Fatalf("Apply marked %v", ev.Fields)
			}
		})
	}
}

// TestSkewReportIsRateLimited: a flood of lines from the future gives one report per
// interval (a warning and an audit record), with the counts since the last one.
func TestSkewReportIsRateLimited(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	r := SkewReport{Log: hclog.New(&hclog.LoggerOptions{Output: &buf, JSONFormat: true}), Every: time.Minute,
		Now: func() time.Time { return now }}
	ev := &sdk.Event{Origin: "app.log", Fields: map[string]string{FieldLineTime: "2027-01-01T00:00:00Z"}}
	var recs []sdk.Event
	for b := 0; b < 100; b++ { // 100 batches of 10 lines, 100 s in all
		for i := 0; i < 10; i++ {
			r.Observe(ClockFutureSkew, ev)
			now = now.Add(100 * time.Millisecond)
		}
		r.Observe("", ev)
		if rec, ok := r.Report(); ok {
			recs = append(recs, rec)
		}
	}
	if n := strings.Count(buf.String(), "\n"); n != 2 || len(recs) != 2 {
		t.Fatalf("%d warnings and %d records for 100 s of skewed lines:\n%s", n, len(recs), buf.String())
	}
	if !strings.Contains(buf.String(), `"future_skew":600`) {
		t.Fatalf("the second warning does not count the lines since the first:\n%s", buf.String())
	}
	for i, want := range []string{"10", "600"} {
		f := recs[i].Fields
		if recs[i].Kind != sdk.KindAudit || f[sdk.FieldAuditEvent] != sdk.AuditClockSkew || f[sdk.FieldFutureSkew] != want ||
			f[sdk.FieldOutOfRange] != "0" || f[sdk.FieldExampleOrigin] != "app.log" {
			t.Fatalf("record %d: %+v", i, recs[i])
		}
	}
	if f, o := r.Counts(); f != 1000 || o != 0 {
		t.Fatalf("counts %d %d", f, o)
	}
	now = now.Add(time.Hour)
	if rec, ok := r.Report(); !ok || rec.Fields[sdk.FieldFutureSkew] != "390" {
		t.Fatalf("the lines since the last report are reported once the interval has passed: %v %+v", ok, rec)
	}
	if _, ok := r.Report(); ok {
		t.Fatal("a report without new lines")
	}
}
