package sdk

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestMaintenanceWindowJSON(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	sun := [7]bool{true}
	every := [7]bool{true, true, true, true, true, true, true}
	tests := []struct {
		name     string
		w        MaintenanceWindow
		json     string
		describe string
	}{
		{"one day, UTC", MaintenanceWindow{Days: sun, Start: 2 * time.Hour, End: 4 * time.Hour},
			`{"days":["sun"],"start":"02:00","end":"04:00","timezone":"UTC"}`, "Sun 02:00-04:00 UTC"},
		{"every day, past midnight, a zone", MaintenanceWindow{Days: every, Start: 22 * time.Hour, End: 6 * time.Hour, Location: paris},
			`{"days":[],"start":"22:00","end":"06:00","timezone":"Europe/Paris"}`, "every day 22:00-06:00 Europe/Paris"},
		{"to midnight", MaintenanceWindow{Days: [7]bool{false, true, false, true}, Start: 23*time.Hour + 30*time.Minute, End: 24 * time.Hour},
			`{"days":["mon","wed"],"start":"23:30","end":"24:00","timezone":"UTC"}`, "Mon,Wed 23:30-24:00 UTC"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.w)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.json {
				t.Errorf("json %s, want %s", b, tc.json)
			}
			var back MaintenanceWindow
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if back.Describe() != tc.describe || tc.w.Describe() != tc.describe {
				t.Errorf("describe %q (decoded %q), want %q", tc.w.Describe(), back.Describe(), tc.describe)
			}
			// The decoded window judges every quarter hour of a week as the original does.
			monday := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
			for at := monday; at.Before(monday.AddDate(0, 0, 7)); at = at.Add(15 * time.Minute) {
				if back.Contains(at) != tc.w.Contains(at) {
					t.Fatalf("at %s the decoded window says %v", at, back.Contains(at))
				}
			}
		})
	}
}

func TestMaintenanceWindowJSONErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"days":["sunnday"],"start":"02:00","end":"04:00"}`, `unknown weekday "sunnday"`},
		{`{"days":[],"start":"2:00","end":"04:00"}`, `start: invalid time of day "2:00"`},
		{`{"days":[],"start":"02:00","end":"24:30"}`, `end: invalid time of day "24:30"`},
		{`{"days":[],"start":"02:00","end":"04:00","timezone":"Mars/Olympus"}`, `unknown time zone "Mars/Olympus"`},
		{`{"days":"sun"}`, `maintenance window: json`},
	}
	for _, tc := range tests {
		var w MaintenanceWindow
		err := json.Unmarshal([]byte(tc.in), &w)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestMaintenanceWindowContains(t *testing.T) {
	sunday := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	sat := [7]bool{6: true}
	w := MaintenanceWindow{Days: sat, Start: 23 * time.Hour, End: time.Hour}
	tests := []struct {
		at   time.Time
		want bool
	}{
		{sunday.Add(-time.Hour - time.Nanosecond), false},
		{sunday.Add(-time.Hour), true},
		{sunday.Add(time.Hour - time.Nanosecond), true}, // the morning part belongs to Saturday
		{sunday.Add(time.Hour), false},
		{sunday.Add(-24*time.Hour + 30*time.Minute), false}, // Saturday morning: Friday's part
	}
	for _, tc := range tests {
		if got := w.Contains(tc.at); got != tc.want {
			t.Errorf("Contains(%s) = %v, want %v", tc.at, got, tc.want)
		}
	}
}

// FuzzMaintenanceWindowJSON: a window the agent accepts from a plugin encodes back to JSON
// that decodes to the same window.
func FuzzMaintenanceWindowJSON(f *testing.F) {
	f.Add(`{"days":["sun"],"start":"02:00","end":"04:00","timezone":"UTC"}`)
	f.Add(`{"days":[],"start":"22:00","end":"06:00","timezone":"Europe/Paris"}`)
	f.Add(`{"days":["Monday"," tue "],"start":"24:00","end":"00:00"}`)
	f.Fuzz(func(t *testing.T, in string) {
		var w MaintenanceWindow
		if json.Unmarshal([]byte(in), &w) != nil {
			return
		}
		b, err := json.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		var back MaintenanceWindow
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s encodes to %s, which does not decode: %v", in, b, err)
		}
		if back.Describe() != w.Describe() || back.Days != w.Days || back.Start != w.Start || back.End != w.End {
			t.Fatalf("%s: %s decodes to %q, want %q", in, b, back.Describe(), w.Describe())
		}
	})
}
