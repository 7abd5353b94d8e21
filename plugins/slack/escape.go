package slack

import (
	"strings"
	"unicode/utf8"

	"github.com/tda-dev/tda/plugins/internal/alerttext"
)

// Escape makes text that tda did not author inert in Slack: it replaces &, < and > with their
// entities, so "<!channel>" or "<http://evil|bank>" in a log line renders as text instead of
// pinging a channel or drawing a link. It cleans control characters first (see
// alerttext.Clean).
func Escape(s string) string {
	return EscapeLimit(s, -1)
}

// EscapeLimit is Escape with a bound: the result is at most max bytes (max < 0: no bound),
// cut at a character boundary and never inside an entity, ending with "…" when it cut.
func EscapeLimit(s string, max int) string {
	s = alerttext.Clean(s)
	if max < 0 && !strings.ContainsAny(s, "&<>") {
		return s
	}
	const ellipsis = "…"
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i, r := range s {
		var piece string
		switch r {
		case '&':
			piece = "&amp;"
		case '<':
			piece = "&lt;"
		case '>':
			piece = "&gt;"
		default:
			if max < 0 {
				b.WriteRune(r)
				continue
			}
			piece = s[i : i+utf8.RuneLen(r)]
		}
		if max >= 0 && b.Len()+len(piece) > max-len(ellipsis) {
			// Stop here unless everything that is left fits exactly.
			if rest := escapedLen(s[i:]); b.Len()+rest <= max {
				b.WriteString(piece)
				continue
			}
			if b.Len()+len(ellipsis) <= max {
				b.WriteString(ellipsis)
			}
			return b.String()
		}
		b.WriteString(piece)
	}
	return b.String()
}

func escapedLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '&':
			n += 4
		case '<', '>':
			n += 3
		}
	}
	return n
}

// codeLine escapes a line for a ``` block: besides EscapeLimit, three backticks in a row get
// zero-width spaces between them so the line cannot close the block early.
func codeLine(s string, max int) string {
	if strings.Contains(s, "```") {
		s = strings.ReplaceAll(s, "```", "`\u200b`\u200b`")
	}
	return EscapeLimit(s, max)
}
