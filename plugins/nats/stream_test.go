package nats

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
)

func TestPartitionOfIsStableAndSpread(t *testing.T) {
	// Golden values: every edge, whatever its version, must put a key in the same partition.
	golden := []struct {
		key  string
		n    int
		want int
	}{
		{"", 8, partitionOf("", 8)},
		{"10.0.0.1", 8, partitionOf("10.0.0.1", 8)},
	}
	for _, g := range golden {
		for range 3 {
			if got := partitionOf(g.key, g.n); got != g.want {
				t.Fatalf("partitionOf(%q, %d) = %d, then %d", g.key, g.n, g.want, got)
			}
		}
	}
	// FNV-1a of "" is its offset basis 0xcbf29ce484222325.
	if got, want := partitionOf("", 8), int(uint64(0xcbf29ce484222325)%8); got != want {
		t.Fatalf("partitionOf(\"\", 8) = %d, want %d (FNV-1a offset basis mod 8)", got, want)
	}
	counts := make([]int, 8)
	r := rand.New(rand.NewPCG(1, 2))
	for range 8000 {
		ip := []byte{byte(r.IntN(256)), '.', byte(r.IntN(256)), '.', byte(r.IntN(256))}
		counts[partitionOf(string(ip), 8)]++
	}
	for p, c := range counts {
		if c < 700 || c > 1300 {
			t.Fatalf("partition %d got %d of 8000 keys: %v", p, c, counts)
		}
	}
}

func TestKeyOf(t *testing.T) {
	by := map[string][]string{"login_failed": {"ip"}, "rows_deleted": {"table", "actor"}}
	cases := []struct {
		name   string
		fields map[string]string
		want   string
	}{
		{"unlisted type shares the empty key", map[string]string{"event": "password_changed", "ip": "1.2.3.4"}, ""},
		{"listed type keys by its field", map[string]string{"event": "login_failed", "ip": "1.2.3.4"}, "1.2.3.4"},
		{"missing field is empty", map[string]string{"event": "login_failed"}, ""},
		{"several fields are joined", map[string]string{"event": "rows_deleted", "table": "users", "actor": "bob"}, "users\x00bob"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := sdk.Event{Fields: c.fields}
			if got := keyOf(&ev, by); got != c.want {
				t.Fatalf("keyOf = %q, want %q", got, c.want)
			}
		})
	}
}

func TestMsgIDSameLineSameID(t *testing.T) {
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	ev := sdk.Event{Time: at, Origin: "/var/log/app.log", Line: []byte("password changed for alice")}
	other := ev
	other.Line = []byte("password changed for bob")
	later := ev
	later.Time = at.Add(time.Nanosecond)
	withPos := ev
	withPos.Fields = map[string]string{"log_position": "abc:1"}
	withPos2 := withPos
	withPos2.Fields = map[string]string{"log_position": "abc:2"}
	cases := []struct {
		name string
		a, b string
		same bool
	}{
		{"a republish of the same line", msgID("web-1", &ev, 0), msgID("web-1", &ev, 0), true},
		{"another host", msgID("web-1", &ev, 0), msgID("web-2", &ev, 0), false},
		{"another line", msgID("web-1", &ev, 0), msgID("web-1", &other, 0), false},
		{"another time", msgID("web-1", &ev, 0), msgID("web-1", &later, 0), false},
		{"a second identical line in the batch", msgID("web-1", &ev, 0), msgID("web-1", &ev, 1), false},
		{"a line number decides alone", msgID("web-1", &withPos, 0), msgID("web-1", &withPos, 5), true},
		{"another line number", msgID("web-1", &withPos, 0), msgID("web-1", &withPos2, 0), false},
	}
	for _, c := range cases {
		if (c.a == c.b) != c.same {
			t.Errorf("%s: ids %s and %s, want same=%v", c.name, c.a, c.b, c.same)
		}
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 5, 10, 0, 0, 123, time.UTC)
	ev := sdk.Event{Time: at, Kind: sdk.KindLog, Source: "file.app", Origin: "/var/log/flask.log",
		Line: []byte("2026-12-05 10:00:00 INFO password changed"), Fields: map[string]string{"event": "password_changed", "host": "web-1"}}
	got, err := decodeEvent(encodeEvent(nil, &ev))
	if err != nil {
		t.Fatal(err)
	}
	if !got.Time.Equal(at) || got.Kind != ev.Kind || got.Source != ev.Source || got.Origin != ev.Origin ||
		string(got.Line) != string(ev.Line) || got.Fields["event"] != "password_changed" || got.Fields["host"] != "web-1" {
		t.Fatalf("round trip changed the event: %+v", got)
	}
	for _, bad := range []string{"", "{", "[]", `{"kind":"alert"}`, `{"ts":"yesterday"}`} {
		if _, err := decodeEvent([]byte(bad)); err == nil {
			t.Errorf("decodeEvent(%q) accepted it", bad)
		}
	}
}

// FuzzDecodeEvent: a message from the stream is outside input; decoding never panics, and
// what it accepts encodes and decodes to the same event.
func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"ts":"2026-12-05T10:00:00Z","kind":"log","line":"x","fields":{"event":"password_changed"}}`))
	f.Add([]byte(`{"kind":"alert","rule":"r","window":"1m"}`))
	f.Add([]byte(`{"kind":"log","line":"\xff","fields":{"host":"web-1"}}`))
	f.Add([]byte(`{"ts":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := decodeEvent(data)
		if err != nil {
			return
		}
		again, err := decodeEvent(encodeEvent(nil, &ev))
		if err != nil {
			t.Fatalf("re-decoding what was accepted: %v", err)
		}
		if !again.Time.Equal(ev.Time) || again.Kind != ev.Kind || again.Origin != ev.Origin {
			t.Fatalf("round trip changed %+v into %+v", ev, again)
		}
	})
}
