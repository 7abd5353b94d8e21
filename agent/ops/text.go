package ops

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/tda-dev/tda/sdk/termsafe"
)

// NormalizeName returns a person's name as tda compares, records and shows it: Unicode NFKC
// (full-width and compatibility letters become plain ones), without format characters
// (category Cf: zero-width spaces and joiners, bidirectional marks, soft hyphens), case-folded,
// and trimmed. Names that only look different are then equal: "Alice", "alice\u200b" and
// "ａｌｉｃｅ" are all "alice". Control characters are not removed here: callers refuse them
// (checkName) before normalising.
func NormalizeName(s string) string {
	s = norm.NFKC.String(s)
	s = strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, s)
	// Folding can produce text NFKC would change again (rare, e.g. some Greek letters): a
	// second pass makes the result stable, so normalising twice changes nothing.
	s = norm.NFKC.String(cases.Fold().String(s))
	return strings.TrimSpace(s)
}

// sameName reports whether a and b name the same person.
func sameName(a, b string) bool { return NormalizeName(a) == NormalizeName(b) }

// checkName refuses a name with control characters or invalid UTF-8, which normalising would
// not make safe to show.
func checkName(s string) error {
	if !utf8.ValidString(s) {
		return errorf(KindInvalid, "the acting person's name is not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return errorf(KindInvalid, "the acting person's name holds the control character %q: give a plain name", r)
		}
	}
	return nil
}

// checkLine refuses text an operator typed (a reason, a comment, a name to restore into) that
// holds a control character, a bidirectional override or invalid UTF-8: such text could forge
// a row of a terminal table, retitle a terminal, or show reordered in the panel and the audit
// log. what names the field in the message.
func checkLine(what, s string) error {
	if termsafe.Printable(s) {
		return nil
	}
	return errorf(KindInvalid, "the %s holds a control character or a line break (shown escaped: %s): write it on one line as plain text",
		what, termsafe.String(clip(s, 80)))
}

// checkLines applies checkLine to pairs of field name and value.
func checkLines(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if err := checkLine(pairs[i], pairs[i+1]); err != nil {
			return err
		}
	}
	return nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
