// Package termsafe makes text that came from outside (log lines, API input) safe to print on a
// terminal: a control character can move the cursor, retitle the window, fake a table row with
// a newline, or reorder what is shown (bidirectional overrides). Such characters are shown as
// Go escapes instead (\n, \x1b, \u202e), so a reader sees them and nothing they would do.
package termsafe

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// String returns s with every control, bidirectional-formatting and invalid byte escaped.
// Text without any comes back as it is, without allocating.
func String(s string) string {
	if clean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatUint(uint64(s[i])|0x100, 16)[1:])
		case unsafe(r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func clean(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || c >= 0x80 {
			return cleanSlow(s[i:])
		}
	}
	return true
}

func cleanSlow(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || unsafe(r) {
			return false
		}
		i += size
	}
	return true
}

// unsafe reports the runes that act on a terminal instead of showing: C0 and C1 controls,
// DEL, and the bidirectional embeddings, overrides and isolates.
func unsafe(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true
	}
	return false
}

// Printable reports whether s is valid UTF-8 without any character String would escape: text
// that prints on one line as it is. Inputs that must not carry terminal codes or line breaks
// (a reason, a comment, a name) are refused when it is false.
func Printable(s string) bool { return clean(s) }
