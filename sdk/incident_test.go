package sdk_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/tda-dev/tda/sdk"
)

func TestIncidentUpdateRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 29, 22, 0, 0, 0, time.UTC)
	cases := []sdk.IncidentUpdate{
		{Fingerprint: "fp", Rule: "r", Count: 15, Entities: map[string][]string{"user_id": {"7", "8"}, "ip": {"203.0.113.9"}}},
		{Fingerprint: "fp", Rule: "r", Key: "10.0.0.1", Count: 0, Truncated: true},
		{Fingerprint: "fp", Rule: "r", Count: 3, Entities: map[string][]string{"actor": {"é\"<x>", "\u2028"}}},
	}
	for _, u := range cases {
		ev := u.Event(at, "file.app", "app.log")
		b, err := ev.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var back sdk.Event
		if err := back.UnmarshalJSON(b); err != nil {
			t.Fatal(err)
		}
		got, ok := sdk.ParseIncidentUpdate(&back)
		if !ok || !reflect.DeepEqual(got, u) || back.Kind != sdk.KindAudit || !back.Time.Equal(at) {
			t.Fatalf("round trip of %+v: %+v %v (%s)", u, got, ok, b)
		}
	}
	for _, ev := range []sdk.Event{
		{Kind: sdk.KindAudit, Fields: map[string]string{"event": "override_enabled", "fingerprint": "x"}},
		{Kind: sdk.KindLog, Fields: map[string]string{"event": sdk.EventIncidentUpdate, "fingerprint": "x"}},
		{Kind: sdk.KindAudit, Fields: map[string]string{"event": sdk.EventIncidentUpdate}},
	} {
		if _, ok := sdk.ParseIncidentUpdate(&ev); ok {
			t.Fatalf("read as an update: %+v", ev)
		}
	}
	bad := sdk.Event{Kind: sdk.KindAudit, Fields: map[string]string{"event": sdk.EventIncidentUpdate, "fingerprint": "x",
		"count": "-4", "entities": "{not json"}}
	if u, ok := sdk.ParseIncidentUpdate(&bad); !ok || u.Count != 0 || u.Entities != nil {
		t.Fatalf("malformed fields: %+v %v", u, ok)
	}
}

// FuzzParseIncidentUpdate: whatever an audit trail's fields hold, reading an update never
// panics, and what it reads writes back to the same update.
func FuzzParseIncidentUpdate(f *testing.F) {
	f.Add("fp", "15", `{"user_id":["7"]}`, "true")
	f.Add("", "x", "[]", "")
	f.Add("fp", "99999999999999999999", `{"a":[1]}`, "false")
	f.Fuzz(func(t *testing.T, fp, count, entities, truncated string) {
		ev := sdk.Event{Kind: sdk.KindAudit, Fields: map[string]string{"event": sdk.EventIncidentUpdate,
			"fingerprint": fp, "count": count, "entities": entities, "entities_truncated": truncated}}
		u, ok := sdk.ParseIncidentUpdate(&ev)
		if !ok {
			if fp != "" {
				t.Fatalf("an update with fingerprint %q not read", fp)
			}
			return
		}
		if u.Count < 0 {
			t.Fatalf("negative count %d", u.Count)
		}
		again := u.Event(time.Unix(0, 0), "", "")
		u2, ok := sdk.ParseIncidentUpdate(&again)
		if !ok || u2.Fingerprint != u.Fingerprint || u2.Count != u.Count || len(u2.Entities) != len(u.Entities) ||
			u2.Truncated != u.Truncated {
			t.Fatalf("%+v wrote back as %+v", u, u2)
		}
	})
}
