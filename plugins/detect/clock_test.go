package detect_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/plugins/detect"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

func resetLine(at time.Time, id int) []byte {
	return []byte(fmt.Sprintf("[%s] INFO in auth: password_changed user_id=%d actor=mallory actor_role=user ip=198.51.100.23",
		at.Format("2006-01-02 15:04:05,000"), id))
}

// stamped are log events as a file source makes them: stamped with the time it read them.
func stamped(lines [][]byte, origin string, read time.Time) []sdk.Event {
	evs := logEvents(lines, origin)
	for i := range evs {
		evs[i].Time = read
	}
	return evs
}

// TestLineFromTheFutureInThePipeline runs the shipped processors live: a line dated a year
// ahead of its arrival is counted at its arrival, passes on marked clock=future_skew with its
// own time in line_time, and the burst that follows pages as it would have without it.
func TestLineFromTheFutureInThePipeline(t *testing.T) {
	blocks := shippedBlocks(t)
	for _, mode := range []sdktest.Mode{sdktest.Direct, sdktest.GRPC} {
		c := newChain(t, blocks["override"], blocks["rules"], mode)
		now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		future := resetLine(now.AddDate(1, 0, 0), 1)
		mid := c.override.ProcessAt(stamped([][]byte{future}, "flask-app.log", now), sdk.Watermark{Time: now})
		if len(mid) != 2 || mid[0].Field("clock") != "future_skew" || !mid[0].Time.Equal(now) ||
			mid[0].Field("line_time") != "2027-12-01T09:00:00Z" {
			t.Fatalf("the future line leaves the override processor as %+v", mid)
		}
		// The host learns of it from the clock report that follows the batch.
		if r := mid[1]; r.Kind != sdk.KindAudit || r.Field(sdk.FieldAuditEvent) != sdk.AuditClockSkew ||
			r.Field(sdk.FieldFutureSkew) != "1" || r.Field(sdk.FieldExampleOrigin) != "flask-app.log" || !r.Time.Equal(now) {
			t.Fatalf("clock report %+v", r)
		}
		out := c.rules.ProcessAt(mid, sdk.Watermark{Time: now})
		var lines [][]byte
		for i := 0; i < 12; i++ {
			lines = append(lines, resetLine(now.Add(time.Duration(i)*time.Second), 10+i))
		}
		read := now.Add(12 * time.Second)
		out = append(out, c.process(stamped(lines, "flask-app.log", read), sdk.Watermark{Time: read})...)
		al := alertsOf(out)
		if len(al) != 1 || al[0].Alert.Rule != "mass_password_reset" || al[0].Alert.State != sdk.StateFiring {
			t.Fatalf("mode %v: alerts after a line from the future: %v", mode, al)
		}
	}
}

// TestOverrideLineFromAnotherOrigin: the shipped config lets only flask-*.log and flask_web_*
// declare overrides. A spring app's override line is refused (one audit record, also when the
// line is read again), and the overridable rule pages.
func TestOverrideLineFromAnotherOrigin(t *testing.T) {
	blocks := shippedBlocks(t)
	c := newChain(t, blocks["override"], blocks["rules"], sdktest.Direct)
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	decl := []byte(`2026-11-29T12:00:00.000Z  WARN 1 --- [main] c.e.demo.Admin : override_enabled actor=eve reason="quiet please" ttl=2h`)
	var lines [][]byte
	for i := 0; i < 25; i++ {
		lines = append(lines, []byte(fmt.Sprintf("2026-11-29T12:01:%02d.000Z  INFO 1 --- [main] c.e.demo.Users : user_created user_id=%d actor=import actor_role=admin ip=10.0.0.5", i, i)))
	}
	var out []sdk.Event
	for pass := 0; pass < 2; pass++ {
		out = append(out, c.process(logEvents([][]byte{decl}, "/var/log/spring/app.log"), sdk.Watermark{})...)
	}
	out = append(out, c.process(logEvents(lines, "/var/log/spring/app.log"), sdk.Watermark{Final: true})...)
	aud := audits(out)
	if len(aud) != 1 || aud[0].Field("event") != "override_refused" || aud[0].Field("actor") != "eve" ||
		aud[0].Field("origin") != "/var/log/spring/app.log" {
		t.Fatalf("audit records %v", aud)
	}
	al := alertsOf(out)
	if len(al) == 0 || al[0].Alert.Rule != "bulk_user_creation" || al[0].Alert.State != sdk.StateFiring {
		t.Fatalf("alerts %v", al)
	}
	// The same line from an allowed origin declares the override.
	c = newChain(t, blocks["override"], blocks["rules"], sdktest.Direct)
	out = c.process(logEvents([][]byte{decl}, "flask_web_1"), sdk.Watermark{Time: t0})
	if aud := audits(out); len(aud) != 1 || aud[0].Field("event") != "override_enabled" || aud[0].Field("via") != "log_line" {
		t.Fatalf("from an allowed origin: %v", aud)
	}
}

// TestOverrideProcessorRestoresPoisonedState: an override processor snapshot written by an
// older version after a line from the future (clock and override in 9999) is sanitised: the
// impossible override is gone at once, and a live declaration that follows works and
// expires on time.
func TestOverrideProcessorRestoresPoisonedState(t *testing.T) {
	poisoned := `{"version":1,"state":{"current":{"actor":"x","reason":"y","since":"9999-01-01T00:00:00Z",` +
		`"until":"9999-01-01T01:00:00Z","origin":"app.log"}},"clock":"9999-01-01T00:00:00Z"}`
	p := sdktest.NewProcessor(t, detect.OverrideComponent(), `allow_origins = ["app.log"]`, sdktest.WithMode(sdktest.Direct))
	p.Restore([]byte(poisoned))
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	line := []byte(`[2026-12-01 09:00:00,000] WARNING in admin: override_enabled actor=carol reason="import" ttl=10m`)
	out := p.ProcessAt(stamped([][]byte{line}, "app.log", now), sdk.Watermark{Time: now})
	if a := audits(out); len(a) != 1 || a[0].Field("event") != "override_enabled" || a[0].Field("actor") != "carol" {
		t.Fatalf("declaration after a poisoned restore: %v", a)
	}
	if a := audits(p.ProcessAt(nil, sdk.Watermark{Time: now.Add(5 * time.Minute)})); len(a) != 0 {
		t.Fatalf("expired early: %v", a)
	}
	if a := audits(p.ProcessAt(nil, sdk.Watermark{Time: now.Add(11 * time.Minute)})); len(a) != 1 || a[0].Field("event") != "override_expired" {
		t.Fatalf("no expiry on time: %v", a)
	}
}

// TestRulesProcessorReportsWhatItDropped: a rules processor restored from a snapshot that
// holds a window dated 2150 (written by a replay without arrival clocks) drops it at the
// first live batch, says so in its log, and pages on the next burst.
func TestRulesProcessorReportsWhatItDropped(t *testing.T) {
	blocks := shippedBlocks(t)
	first := sdktest.NewProcessor(t, detect.RulesComponent(), blocks["rules"], sdktest.WithMode(sdktest.Direct))
	first.ProcessAt(logEvents([][]byte{resetLine(time.Date(2150, 1, 1, 0, 0, 0, 0, time.UTC), 1)}, "flask-app.log"), sdk.Watermark{})
	var buf bytes.Buffer
	logger := hclog.New(&hclog.LoggerOptions{Output: &buf, JSONFormat: true})
	p := sdktest.NewProcessor(t, detect.RulesComponent(), blocks["rules"], sdktest.WithMode(sdktest.Direct), sdktest.WithLogger(logger))
	p.Restore(first.Snapshot())
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	var lines [][]byte
	for i := 0; i < 12; i++ {
		lines = append(lines, resetLine(now.Add(time.Duration(i)*time.Second), 10+i))
	}
	read := now.Add(12 * time.Second)
	al := alertsOf(p.ProcessAt(stamped(lines, "flask-app.log", read), sdk.Watermark{Time: read}))
	if len(al) != 1 || al[0].Alert.State != sdk.StateFiring {
		t.Fatalf("alerts after restoring a window from 2150: %v", al)
	}
	if !strings.Contains(buf.String(), "beyond the arrival clock; dropped") {
		t.Fatalf("nothing reported:\n%s", buf.String())
	}
}
