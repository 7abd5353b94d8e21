package slack

import (
	"fmt"
	"strings"
	"time"

	"github.com/tda-dev/tda/plugins/internal/alerttext"
	"github.com/tda-dev/tda/sdk"
)

// Slack's limits for a message (api.slack.com/reference/block-kit). Lengths are counted in
// bytes here, which is never less than Slack's count of characters.
const (
	MaxBlocks       = 50
	MaxSectionText  = 3000
	MaxHeaderText   = 150
	MaxFieldText    = 2000
	MaxFallbackText = 3000
	// MaxAlertsPerMessage is how many alerts fit in full within MaxBlocks (a header, a
	// mention and five blocks per alert); the agent puts no more in one batch.
	MaxAlertsPerMessage = 9
	// MaxMessageText bounds the text of all blocks together, well below the sizes at which
	// Slack starts refusing messages.
	MaxMessageText = 30000
)

// Message is an incoming-webhook payload: Block Kit blocks plus the plain text Slack shows in
// notifications and on clients that cannot draw blocks.
type Message struct {
	Text   string  `json:"text"`
	Blocks []Block `json:"blocks,omitempty"`
}

// Block is a Block Kit layout block (header, section, context or divider).
type Block struct {
	Type     string `json:"type"`
	Text     *Text  `json:"text,omitempty"`
	Fields   []Text `json:"fields,omitempty"`
	Elements []Text `json:"elements,omitempty"`
}

// Text is a Block Kit text object.
type Text struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Emoji    bool   `json:"emoji,omitempty"`
	Verbatim bool   `json:"verbatim,omitempty"`
}

// Format holds what shapes a message besides the alerts.
type Format struct {
	// PanelURL links each alert to the control panel ("{fingerprint}" is replaced).
	PanelURL string
	// Mention (e.g. "<!here>") is added when a firing alert has one of MentionSeverities.
	Mention           string
	MentionSeverities []string
	// ExcerptLines bounds the excerpt lines shown per alert.
	ExcerptLines int
}

func plain(s string) *Text   { return &Text{Type: "plain_text", Text: s, Emoji: true} }
func mrkdwn(s string) Text   { return Text{Type: "mrkdwn", Text: s, Verbatim: true} }
func mrkdwnP(s string) *Text { t := mrkdwn(s); return &t }

// Build formats alerts as one message. Alerts that do not fit Slack's limits are summarised
// in a closing "… and N more" line rather than making the message too big to post.
func Build(alerts []*sdk.Event, f Format) Message {
	if f.ExcerptLines <= 0 {
		f.ExcerptLines = 10
	}
	single := len(alerts) == 1
	var blocks []Block
	if single {
		a := alerts[0].Alert
		icon := icon(a)
		blocks = append(blocks, Block{Type: "header",
			Text: plain(icon + " " + EscapeLimit(alerttext.Title(a), MaxHeaderText-len(icon)-1))})
	} else {
		blocks = append(blocks, Block{Type: "header", Text: plain(EscapeLimit(fmt.Sprintf(
			":rotating_light: %d alerts: %s", len(alerts), alerttext.Tally(alerts)), MaxHeaderText))})
	}
	if m := mention(alerts, f); m != "" {
		blocks = append(blocks, Block{Type: "section", Text: &Text{Type: "mrkdwn", Text: m}})
	}
	size := textSize(blocks)
	shown := 0
	for i, e := range alerts {
		ab := alertBlocks(e, f, single)
		if i > 0 {
			ab = append([]Block{{Type: "divider"}}, ab...)
		}
		reserve := 0
		if i < len(alerts)-1 {
			reserve = 1 // room for the "… and N more" line
		}
		n := textSize(ab)
		if i > 0 && (len(blocks)+len(ab)+reserve > MaxBlocks || size+n > MaxMessageText-MaxSectionText) {
			break
		}
		blocks = append(blocks, ab...)
		size += n
		shown++
	}
	if rest := alerts[shown:]; len(rest) > 0 {
		blocks = append(blocks, Block{Type: "context", Elements: []Text{mrkdwn(more(rest))}})
	}
	return Message{Text: fallbackText(alerts, f), Blocks: blocks}
}

func icon(a *sdk.Alert) string {
	switch a.State {
	case sdk.StateResolved:
		return ":white_check_mark:"
	case sdk.StateSuppressed:
		return ":mute:"
	}
	switch alerttext.SeverityRank(a.Severity) {
	case 0:
		return ":red_circle:"
	case 1:
		return ":large_orange_circle:"
	case 2:
		return ":large_yellow_circle:"
	}
	return ":white_circle:"
}

// mention returns the configured mention when a firing alert has a severity that calls for it.
func mention(alerts []*sdk.Event, f Format) string {
	if f.Mention == "" {
		return ""
	}
	for _, e := range alerts {
		a := e.Alert
		if a.State != sdk.StateFiring && a.State != "" {
			continue
		}
		for _, s := range f.MentionSeverities {
			if strings.EqualFold(s, a.Severity) {
				return f.Mention + " " + Escape(alerttext.Severity(a)) + " alert firing"
			}
		}
	}
	return ""
}

func alertBlocks(e *sdk.Event, f Format, single bool) []Block {
	a := e.Alert
	status := alerttext.Status(a)
	if s := alerttext.Suppression(a); s != "" {
		status = s
	}
	var head string
	if single {
		head = "*Status:* " + EscapeLimit(status, 1000)
	} else {
		head = "*" + icon(a) + " " + EscapeLimit(alerttext.Title(a), 1000) + "*"
		if s := alerttext.Suppression(a); s != "" {
			head += " · " + EscapeLimit(s, 1000)
		}
	}
	first := Block{Type: "section", Text: mrkdwnP(head), Fields: []Text{
		field("Count", Escape(alerttext.Count(a))),
		field("Window", Escape(alerttext.Window(a))),
		field("Key", orDash(EscapeLimit(a.Key, 500))),
		field("Origin", EscapeLimit(alerttext.Origin(e), 500)),
		field("First seen", slackTime(a.FirstSeen)),
		field("Last seen", slackTime(a.LastSeen)),
	}}
	out := []Block{first}
	if fleet := e.Field(FieldFleetSummary); fleet != "" {
		// Counted by a fleet detector over several hosts: how the count splits over them.
		out = append(out, Block{Type: "section", Text: mrkdwnP("*Across the fleet:* " + EscapeLimit(fleet, 1000))})
	}
	lines := f.ExcerptLines
	explain := MaxSectionText
	if !single {
		lines = min(lines, 5)
		explain = 1000
	}
	if ex := excerpt(a.Excerpt, lines); ex != "" {
		out = append(out, Block{Type: "section", Text: mrkdwnP(ex)})
	}
	if a.Explanation != "" {
		const title = "*What it means*\n"
		out = append(out, Block{Type: "section",
			Text: mrkdwnP(title + EscapeLimit(a.Explanation, explain-len(title)))})
	}
	ctx := "Fingerprint `" + EscapeLimit(a.Fingerprint, 200) + "`"
	if link := alerttext.PanelLink(f.PanelURL, a); link != "" && len(link) <= 2000 {
		ctx += " · <" + Escape(link) + "|Open in the control panel>"
	}
	out = append(out, Block{Type: "context", Elements: []Text{mrkdwn(ctx)}})
	return out
}

// FieldFleetSummary is the alert field a fleet detector's rules set: "11 resets across 3
// replicas (web-1: 4, web-2: 4, web-3: 3)".
const FieldFleetSummary = "fleet_summary"

func field(name, value string) Text {
	return mrkdwn(fmt.Sprintf("*%s*\n%s", name, value))
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// slackTime shows t in each reader's own time zone, with UTC as the fallback text.
func slackTime(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time_secs}|%s>", t.Unix(), alerttext.Time(t))
}

// excerpt renders up to n lines in a code block, within one section's limit.
func excerpt(lines []string, n int) string {
	if len(lines) == 0 {
		return ""
	}
	const (
		open    = "*Excerpt*\n```\n"
		close   = "\n```"
		perLine = 500
	)
	var b strings.Builder
	b.WriteString(open)
	shown := 0
	for i, l := range lines {
		if i >= n {
			break
		}
		s := codeLine(l, perLine)
		if s == "" {
			s = " "
		}
		// Leave room for the closing fence and a "… N more lines" note.
		if b.Len()+len(s)+1+len(close)+40 > MaxSectionText {
			break
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(s)
		shown++
	}
	if shown == 0 {
		b.WriteString("(line too long to show)")
	}
	if rest := len(lines) - shown; rest > 0 {
		fmt.Fprintf(&b, "\n… %d more line%s", rest, plural(rest))
	}
	b.WriteString(close)
	return b.String()
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// more summarises the alerts that did not fit.
func more(rest []*sdk.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "… and %d more alert%s not shown here: ", len(rest), plural(len(rest)))
	for i, e := range rest {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(alerttext.Title(e.Alert))
	}
	b.WriteString(". The audit trail and the control panel have all of them.")
	return EscapeLimit(b.String(), MaxSectionText)
}

// fallbackText is the message's plain text: what notifications and old clients show.
func fallbackText(alerts []*sdk.Event, f Format) string {
	var b strings.Builder
	if m := mention(alerts, f); m != "" {
		b.WriteString(f.Mention)
		b.WriteByte(' ')
	}
	if len(alerts) == 1 {
		e := alerts[0]
		a := e.Alert
		b.WriteString(EscapeLimit(fmt.Sprintf("%s: count %s in %s, from %s", alerttext.Title(a),
			alerttext.Count(a), alerttext.Window(a), alerttext.Origin(e)), MaxFallbackText-b.Len()))
		return b.String()
	}
	var s strings.Builder
	fmt.Fprintf(&s, "%d alerts (%s): ", len(alerts), alerttext.Tally(alerts))
	for i, e := range alerts {
		if i > 0 {
			s.WriteString("; ")
		}
		s.WriteString(alerttext.Title(e.Alert))
	}
	b.WriteString(EscapeLimit(s.String(), MaxFallbackText-b.Len()))
	return b.String()
}

func textSize(blocks []Block) int {
	n := 0
	for _, b := range blocks {
		if b.Text != nil {
			n += len(b.Text.Text)
		}
		for _, t := range b.Fields {
			n += len(t.Text)
		}
		for _, t := range b.Elements {
			n += len(t.Text)
		}
	}
	return n
}
