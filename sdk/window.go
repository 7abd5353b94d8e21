package sdk

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// MaintenanceWindow is a weekly time span in which a rule lets something happen that it
// reports at other times (a schema migration). A rules processor reports its windows to the
// agent in this form (the detect plugin's "rules.describe" action), and the agent asks them
// before it lets `tda migrate begin` proceed. Its JSON form is
//
//	{"days": ["sun"], "start": "02:00", "end": "04:00", "timezone": "Europe/Paris"}
//
// with no days meaning every day, and a window whose end is not after its start running past
// midnight (its morning part belongs to the day before).
type MaintenanceWindow struct {
	Days     [7]bool // by time.Weekday
	Start    time.Duration
	End      time.Duration
	Location *time.Location // nil: UTC
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "sunday": time.Sunday, "mon": time.Monday, "monday": time.Monday,
	"tue": time.Tuesday, "tuesday": time.Tuesday, "wed": time.Wednesday, "wednesday": time.Wednesday,
	"thu": time.Thursday, "thursday": time.Thursday, "fri": time.Friday, "friday": time.Friday,
	"sat": time.Saturday, "saturday": time.Saturday,
}

// ParseWeekdays parses weekday names ("sun", "Monday", ...); none means every day.
func ParseWeekdays(names []string) ([7]bool, error) {
	var days [7]bool
	if len(names) == 0 {
		for i := range days {
			days[i] = true
		}
		return days, nil
	}
	for _, n := range names {
		d, ok := dayNames[strings.ToLower(strings.TrimSpace(n))]
		if !ok {
			return days, fmt.Errorf("unknown weekday %q; write e.g. \"sun\" or \"monday\"", n)
		}
		days[d] = true
	}
	return days, nil
}

// ParseTimeOfDay parses "HH:MM" (or "24:00") into a duration since midnight.
func ParseTimeOfDay(s string) (time.Duration, error) {
	var h, m int
	if n, err := fmt.Sscanf(s, "%d:%d", &h, &m); err != nil || n != 2 || len(s) != 5 ||
		h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("invalid time of day %q; write \"HH:MM\", e.g. \"02:00\"", s)
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute, nil
}

// Contains reports whether t falls in the window.
func (w *MaintenanceWindow) Contains(t time.Time) bool {
	loc := w.Location
	if loc == nil {
		loc = time.UTC
	}
	lt := t.In(loc)
	y, mo, d := lt.Date()
	midnight := time.Date(y, mo, d, 0, 0, 0, 0, loc)
	since := lt.Sub(midnight)
	wd := lt.Weekday()
	if w.End > w.Start {
		return w.Days[wd] && since >= w.Start && since < w.End
	}
	// Runs past midnight: the evening part belongs to today, the morning part to yesterday.
	if w.Days[wd] && since >= w.Start {
		return true
	}
	return w.Days[(wd+6)%7] && since < w.End
}

// Describe says the window in words: "Sun 02:00-04:00 UTC", "every day 22:00-06:00 Europe/Paris".
func (w *MaintenanceWindow) Describe() string {
	var days []string
	all := true
	for i, on := range w.Days {
		if on {
			days = append(days, time.Weekday(i).String()[:3])
		} else {
			all = false
		}
	}
	when := strings.Join(days, ",")
	if all {
		when = "every day"
	}
	return fmt.Sprintf("%s %s-%s %s", when, timeOfDay(w.Start), timeOfDay(w.End), w.zone())
}

func (w *MaintenanceWindow) zone() string {
	if w.Location == nil {
		return "UTC"
	}
	return w.Location.String()
}

func timeOfDay(d time.Duration) string {
	return fmt.Sprintf("%02d:%02d", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

// maintenanceWindowJSON is the JSON form of a MaintenanceWindow.
type maintenanceWindowJSON struct {
	Days     []string `json:"days"`
	Start    string   `json:"start"`
	End      string   `json:"end"`
	Timezone string   `json:"timezone"`
}

// MarshalJSON implements json.Marshaler: days as lower-case three-letter names, none when the
// window opens every day.
func (w MaintenanceWindow) MarshalJSON() ([]byte, error) {
	j := maintenanceWindowJSON{Days: []string{}, Start: timeOfDay(w.Start), End: timeOfDay(w.End), Timezone: w.zone()}
	all := true
	for _, on := range w.Days {
		all = all && on
	}
	for i, on := range w.Days {
		if on && !all {
			j.Days = append(j.Days, strings.ToLower(time.Weekday(i).String()[:3]))
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON implements json.Unmarshaler; it refuses what MarshalJSON would never write (an
// unknown weekday, a time that is not "HH:MM", an unknown time zone).
func (w *MaintenanceWindow) UnmarshalJSON(b []byte) error {
	var j maintenanceWindowJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("maintenance window: %w", err)
	}
	var out MaintenanceWindow
	var err error
	if out.Days, err = ParseWeekdays(j.Days); err != nil {
		return fmt.Errorf("maintenance window: %w", err)
	}
	if out.Start, err = ParseTimeOfDay(j.Start); err != nil {
		return fmt.Errorf("maintenance window start: %w", err)
	}
	if out.End, err = ParseTimeOfDay(j.End); err != nil {
		return fmt.Errorf("maintenance window end: %w", err)
	}
	if j.Timezone != "" && j.Timezone != "UTC" {
		if out.Location, err = time.LoadLocation(j.Timezone); err != nil {
			return fmt.Errorf("maintenance window: unknown time zone %q", j.Timezone)
		}
	}
	*w = out
	return nil
}
