package ops

import (
	"strings"
)

// Explanation is an alert's explanation in short parts: what happened, the likely cause, and
// the first steps, each step naming the panel control that performs it where one exists.
type Explanation struct {
	What  string `json:"what"`
	Cause string `json:"cause,omitempty"`
	Steps []Step `json:"steps"`
	// State is the explanation's closing remark on the alert's state (suppressed, resolved,
	// a reminder), if any.
	State string `json:"state,omitempty"`
}

// Step actions: the panel renders a button for them and the CLI the command.
const (
	StepAcknowledge = "acknowledge"
	StepRestore     = "restore"
	StepSnapshot    = "snapshot"
	StepEntities    = "entities"
	StepOverride    = "override"
	StepClose       = "close"
)

// Step is one first step.
type Step struct {
	Text string `json:"text"`
	// Action is the control that performs the step ("" when it is done outside tda).
	Action string `json:"action,omitempty"`
}

// maxExplanation bounds the explanation text that is split (longer text is cut).
const maxExplanation = 16 << 10

// ExplainParts splits an explanation written by the rules engine ("<what>. Likely cause:
// <cause>. First steps: <step>; <step>. State: ...") into its parts. Text that does not
// follow that shape is kept whole as What. Every incident's steps begin with acknowledging it
// and end with closing it with a note once resolved.
func ExplainParts(text string) Explanation {
	text = strings.TrimSpace(cutValue(text, maxExplanation))
	var e Explanation
	rest := text
	if i := strings.Index(rest, " State: "); i >= 0 {
		e.State = strings.TrimSpace(rest[i+1:])
		rest = rest[:i]
	} else if i := strings.Index(rest, " Reminder "); i >= 0 {
		e.State = strings.TrimSpace(rest[i+1:])
		rest = rest[:i]
	}
	var steps string
	if i := strings.Index(rest, "First steps:"); i >= 0 {
		steps = strings.TrimSpace(rest[i+len("First steps:"):])
		rest = rest[:i]
	}
	if i := strings.Index(rest, "Likely cause:"); i >= 0 {
		e.Cause = strings.TrimSpace(rest[i+len("Likely cause:"):])
		rest = rest[:i]
	}
	e.What = strings.TrimSpace(rest)
	e.Cause = capitalize(e.Cause)
	e.Steps = append(e.Steps, Step{Text: "Acknowledge the incident: say who is on it and what you are doing.", Action: StepAcknowledge})
	for _, s := range splitSteps(steps) {
		e.Steps = append(e.Steps, Step{Text: s, Action: stepAction(s)})
	}
	e.Steps = append(e.Steps, Step{Text: "Once the burst has ended and the cause is dealt with, close the incident with a note for the review.", Action: StepClose})
	return e
}

// splitSteps splits "a; b; c. If ..., d." into its steps; a trailing sentence after the
// last step's period is a step of its own.
func splitSteps(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ";") {
		for _, sentence := range splitSentences(part) {
			sentence = strings.TrimSpace(sentence)
			if sentence == "" {
				continue
			}
			sentence = capitalize(sentence)
			if !strings.HasSuffix(sentence, ".") {
				sentence += "."
			}
			out = append(out, sentence)
		}
	}
	return out
}

// splitSentences splits at ". " followed by an upper-case letter (not inside "e.g. x").
func splitSentences(s string) []string {
	var out []string
	start := 0
	for i := 0; i+2 < len(s); i++ {
		if s[i] == '.' && s[i+1] == ' ' && s[i+2] >= 'A' && s[i+2] <= 'Z' {
			out = append(out, s[start:i+1])
			start = i + 2
		}
	}
	return append(out, s[start:])
}

// stepAction names the control of a step by what it asks for.
func stepAction(s string) string {
	l := strings.ToLower(s)
	switch {
	case strings.Contains(l, "override on") || strings.Contains(l, "declare it"):
		return StepOverride
	case strings.Contains(l, "restore"):
		return StepRestore
	case strings.Contains(l, "snapshot"):
		return StepSnapshot
	case strings.Contains(l, "list the affected") || strings.Contains(l, "affected user") ||
		strings.Contains(l, "usernames tried") || strings.Contains(l, "accounts created"):
		return StepEntities
	}
	return ""
}

// capitalize upper-cases the first letter of an ASCII-initial text.
func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
