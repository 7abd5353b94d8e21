package repair

import (
	"os"
	"strings"
	"testing"
)

func TestEventKeys(t *testing.T) {
	window := Window{From: incidentFrom, Until: incidentUntil}
	for _, tc := range []struct {
		name   string
		filter EventFilter
		want   string
	}{
		{"every password change in the window", EventFilter{Events: []string{"password_changed"}, Window: window},
			"1@22:57:04.100 2@22:57:02.100 6@22:57:03.000 9@22:57:05.000 4@22:57:07.000"},
		{"the attacker's alone", EventFilter{Events: []string{"password_changed"}, Window: window, Actor: "mallory"},
			"1@22:57:04.100 2@22:57:02.100 4@22:57:07.000"},
		{"admins excluded", EventFilter{Events: []string{"password_changed"}, Window: window, ExcludeAdmins: true},
			"1@22:57:04.100 2@22:57:02.100 6@22:57:03.000 4@22:57:07.000"},
		{"deletions", EventFilter{Events: RuleEvents["bulk_deletion"], Window: window}, "7@22:57:06.100"},
		{"no window", EventFilter{Events: []string{"password_changed"}, Actor: "carol"}, "3@23:10:00.000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Open("testdata/incident.log")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			keys, err := EventKeys(f, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, k := range keys {
				got = append(got, k.Value+"@"+k.At.Format("15:04:05.000"))
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("got  %s\nwant %s", strings.Join(got, " "), tc.want)
			}
		})
	}
}

func TestEventKeysBounds(t *testing.T) {
	lines := strings.Repeat("[2026-11-29 22:57:01,100] INFO in auth: password_changed user_id=1 actor=m\n", 1) +
		"[2026-11-29 22:57:01,200] INFO in auth: password_changed user_id=2 actor=m\n"
	if _, err := EventKeys(strings.NewReader(lines), EventFilter{Events: []string{"password_changed"}, MaxKeys: 1}); err == nil ||
		!strings.Contains(err.Error(), "more than 1 rows") {
		t.Errorf("MaxKeys: %v", err)
	}
	long := strings.Repeat("x", 2<<20) + "\n"
	if _, err := EventKeys(strings.NewReader(long), EventFilter{Events: []string{"password_changed"}}); err == nil {
		t.Error("a 2 MiB line was accepted")
	}
	if _, err := EventKeys(strings.NewReader(""), EventFilter{}); err == nil {
		t.Error("no event types was accepted")
	}
}

func FuzzEventKeys(f *testing.F) {
	b, _ := os.ReadFile("testdata/incident.log")
	for _, l := range strings.Split(string(b), "\n") {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, line string) {
		keys, err := EventKeys(strings.NewReader(line), EventFilter{Events: []string{"password_changed", "user_deleted"}})
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, k := range keys {
			if k.Value == "" || seen[k.Value] {
				t.Fatalf("%q: keys %+v", line, keys)
			}
			seen[k.Value] = true
		}
	})
}
