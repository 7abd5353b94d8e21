package sdk_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/protocol/tdav1"
)

func sampleEvents() []sdk.Event {
	t0 := time.Date(2026, 11, 29, 10, 15, 30, 123456789, time.UTC)
	return []sdk.Event{
		{Time: t0, Kind: sdk.KindLog, Source: "file.hosts", Origin: "/var/log/a.log", Line: []byte("first")},
		{Kind: sdk.KindLog, Source: "file.hosts", Origin: "/var/log/a.log", Line: []byte("no time \xff")},
		{Time: t0.Add(-time.Hour), Kind: sdk.KindLog, Source: "docker.apps", Origin: "web", Stream: "stderr",
			Line: nil, Fields: map[string]string{"event": "login_failed", "ip": "203.0.113.9"}},
		{Time: t0, Kind: sdk.KindAlert, Source: "file.hosts", Origin: "a", Alert: &sdk.Alert{
			Rule: "r", Severity: "HIGH", State: "firing", Key: "k", Count: 11, Threshold: 10, Window: time.Minute,
			FirstSeen: t0.Add(-time.Minute), LastSeen: t0, Excerpt: []string{"x", "y"}, Fingerprint: "fp",
			Explanation: "e", Realert: 2}},
	}
}

func TestBatchRoundTrip(t *testing.T) {
	in := sampleEvents()
	wire := sdk.EncodeBatch(in)
	b, err := proto.Marshal(wire)
	if err != nil {
		t.Fatal(err)
	}
	var back tdav1.Batch
	if err := proto.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	out := sdk.DecodeBatch(&back)
	if len(out) != len(in) {
		t.Fatalf("%d events", len(out))
	}
	for i := range in {
		want := in[i]
		got := out[i]
		if len(want.Line) == 0 {
			want.Line = nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
	if len(wire.Dict) != 8 { // "", log, file.hosts, /var/log/a.log, docker.apps, web, stderr, alert, a → deduplicated
		t.Logf("dictionary %q", wire.Dict)
	}
}

func FuzzDecodeBatch(f *testing.F) {
	seed, _ := proto.Marshal(sdk.EncodeBatch(sampleEvents()))
	f.Add(seed)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		var b tdav1.Batch
		if proto.Unmarshal(data, &b) != nil {
			return
		}
		// Whatever a plugin sends, decoding must not panic, and re-encoding must succeed.
		events := sdk.DecodeBatch(&b)
		if _, err := proto.Marshal(sdk.EncodeBatch(events)); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
	})
}

func FuzzEventJSON(f *testing.F) {
	f.Add("line", "origin", "k", "v", int64(0))
	f.Add("bad \xff\x00 \u2028 \"quoted\" \\", "o\n", "\x01", "<!channel>", int64(1764410130123456789))
	f.Fuzz(func(t *testing.T, line, origin, k, v string, ns int64) {
		e := sdk.Event{Kind: sdk.KindLog, Origin: origin, Line: []byte(line), Fields: map[string]string{k: v}}
		if ns > 0 {
			e.Time = time.Unix(0, ns).UTC()
		}
		out := e.AppendJSON(nil)
		if !json.Valid(out) || !utf8.Valid(out) {
			t.Fatalf("invalid JSON: %q", out)
		}
		var back sdk.Event
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatal(err)
		}
		if utf8.ValidString(line) && !bytes.Equal(back.Line, []byte(line)) && line != "" {
			t.Fatalf("line %q came back as %q", line, back.Line)
		}
		if !back.Time.Equal(e.Time) {
			t.Fatalf("time %v came back as %v", e.Time, back.Time)
		}
	})
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"60s", "1h30m", "7d", "2w", "1d12h", "", "-1s", "d", "999999999999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := sdk.ParseDuration(s)
		if err != nil {
			return
		}
		if d >= 0 {
			if back, err := sdk.ParseDuration(sdk.FormatDuration(d)); err != nil || back != d {
				t.Fatalf("%q = %v formats as %q which parses as %v (%v)", s, d, sdk.FormatDuration(d), back, err)
			}
		}
	})
}

func TestDurations(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		text string
	}{
		{"60s", time.Minute, "1m"},
		{"90s", 90 * time.Second, "1m30s"},
		{"7d", 7 * 24 * time.Hour, "7d"},
		{"1d12h", 36 * time.Hour, "1d12h"},
		{"2w", 14 * 24 * time.Hour, "14d"},
		{"30m", 30 * time.Minute, "30m"},
	}
	for _, tt := range tests {
		got, err := sdk.ParseDuration(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v", tt.in, got, err)
		}
		if s := sdk.FormatDuration(got); s != tt.text {
			t.Errorf("FormatDuration(%v) = %q, want %q", got, s, tt.text)
		}
	}
	for _, bad := range []string{"", "soon", "5x", "1d-2h"} {
		if _, err := sdk.ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
}
