package ops

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestExplainParts(t *testing.T) {
	cases := []struct {
		name, text, what, cause string
		steps                   []string // "action|text prefix"
		state                   string
	}{
		{
			name: "mass password reset, resolved",
			text: "Mass password reset: 15 password changed events within 1m across the whole app (threshold: more than 10). " +
				"Likely cause: an account-takeover campaign abusing the reset flow or a stolen admin/API token, " +
				"or a script or bug resetting passwords in a loop. " +
				"First steps: look at the excerpt for a common actor or IP; if one actor did it, disable that " +
				"account or token and revoke its sessions; block the source IPs at the edge; list the affected " +
				"user_ids and force them to re-verify by email; keep the database snapshot taken for this alert " +
				"before any rollback. If this is approved work, declare it with tda override on -reason ... -ttl 30m." +
				" State: resolved: the burst drained (no window of 1m above 10 since 10:41:00 UTC); peak count 15.",
			what:  "Mass password reset: 15 password changed events within 1m across the whole app (threshold: more than 10).",
			cause: "An account-takeover campaign",
			steps: []string{"acknowledge|Acknowledge", "|Look at the excerpt", "|If one actor did it", "|Block the source IPs",
				"entities|List the affected user_ids", "snapshot|Keep the database snapshot", "override|If this is approved work", "close|Once the burst"},
			state: "State: resolved",
		},
		{
			name: "bulk deletion",
			text: "Bulk deletion: 60 user deleted events within 1m across the whole app (threshold: more than 50). Data may be being lost right now. " +
				"Likely cause: a cleanup job deleting more than intended. " +
				"First steps: identify the actor and IP in the excerpt and stop it (disable the account or token, stop the job); " +
				"make sure a database snapshot exists from before the deletions (tda takes one for HIGH alerts when a snapshot sink is configured); " +
				"never restore over the live database: restore to a new instance and copy back the missing rows. Reminder 2: the activity is still going on (70 in the current window).",
			what:  "Bulk deletion: 60 user deleted events within 1m across the whole app (threshold: more than 50). Data may be being lost right now.",
			cause: "A cleanup job",
			steps: []string{"acknowledge|", "|Identify the actor", "snapshot|Make sure a database snapshot", "restore|Never restore over", "close|"},
			state: "Reminder 2",
		},
		{
			name:  "a rule's own explanation",
			text:  "Someone is exporting the customer table.",
			what:  "Someone is exporting the customer table.",
			steps: []string{"acknowledge|", "close|"},
		},
		{name: "empty", steps: []string{"acknowledge|", "close|"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := ExplainParts(c.text)
			if x.What != c.what || !strings.HasPrefix(x.Cause, c.cause) || !strings.HasPrefix(x.State, c.state) {
				t.Fatalf("parts: %+v", x)
			}
			if len(x.Steps) != len(c.steps) {
				t.Fatalf("steps: %+v", x.Steps)
			}
			for i, want := range c.steps {
				action, prefix, _ := strings.Cut(want, "|")
				if x.Steps[i].Action != action || !strings.HasPrefix(x.Steps[i].Text, prefix) {
					t.Errorf("step %d: %+v, want %s", i, x.Steps[i], want)
				}
			}
		})
	}
}

// FuzzExplainParts: any explanation splits without panicking into valid UTF-8 parts, always
// with the acknowledge and close steps, each step ending with a period.
func FuzzExplainParts(f *testing.F) {
	f.Add("What. Likely cause: x. First steps: a; b. State: resolved.")
	f.Add("First steps:; ;. . A")
	f.Add("Likely cause: First steps: State: Reminder ")
	f.Add("\xff\xfe. First steps: \xc3")
	f.Fuzz(func(t *testing.T, text string) {
		x := ExplainParts(text)
		if len(x.Steps) < 2 || x.Steps[0].Action != StepAcknowledge || x.Steps[len(x.Steps)-1].Action != StepClose {
			t.Fatalf("steps: %+v", x.Steps)
		}
		for _, s := range append([]string{x.What, x.Cause, x.State}, stepTexts(x.Steps)...) {
			if !utf8.ValidString(s) {
				t.Fatalf("invalid UTF-8: %q", s)
			}
		}
		for _, s := range x.Steps {
			if !strings.HasSuffix(s.Text, ".") {
				t.Fatalf("step %q", s.Text)
			}
		}
	})
}

func stepTexts(steps []Step) []string {
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.Text
	}
	return out
}

// FuzzTrailIncidentUpdates: whatever lines the audit trail holds, reading them never panics,
// keeps the entity bounds, and an incident's count never goes back.
func FuzzTrailIncidentUpdates(f *testing.F) {
	at := time.Date(2026, 11, 29, 22, 0, 0, 0, time.UTC)
	f.Add(alertLine("fp", "r", "HIGH", "firing", at) + updateLine("fp", 15, at, map[string][]string{"ip": {"1.2.3.4"}}))
	f.Add(`{"kind":"audit","fields":{"event":"incident_update","fingerprint":"fp","count":"-1","entities":"{\"a\":[\"\"]}"}}` + "\n")
	f.Add(`{"kind":"audit","fields":{"event":"incident_update","fingerprint":"fp","entities":"{\"a\":null}"}}` + "\n{\"kind\":\n")
	// The incident every input updates, encoded once rather than per execution.
	seeded := alertLine("fp", "r", "HIGH", "firing", at)
	f.Fuzz(func(t *testing.T, content string) {
		tr := NewTrail("")
		if _, err := tr.consume(strings.NewReader(seeded + content)); err != nil {
			t.Fatal(err)
		}
		in, ok := tr.incident("fp")
		if !ok || in.Count < 11 {
			t.Fatalf("the seeded incident: %+v %v", in, ok)
		}
		for _, c := range tr.takeChanges() {
			if c.Entities != nil && c.Entities.total > MaxEntities {
				t.Fatalf("%d entities pending for %s", c.Entities.total, c.Fingerprint)
			}
			if c.Count < 0 {
				t.Fatalf("negative count for %s", c.Fingerprint)
			}
		}
	})
}
