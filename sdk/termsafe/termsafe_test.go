package termsafe

import (
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"alice", "alice"},
		{"zoë 日本", "zoë 日本"},
		{"a\nbob  approved  8", `a\nbob  approved  8`},
		{"\x1b]0;pwned\x07x", `\x1b]0;pwned\ax`},
		{"tab\there", `tab\there`},
		{"r\u202eevil", `r\u202eevil`},
		{"\u2067iso\u2069", `\u2067iso\u2069`},
		{"bad\xffbyte", `bad\xffbyte`},
		{"\u009bcsi", `\u009bcsi`}, {"\x9bcsi", `\x9bcsi`},
		{"del\x7f", `del\x7f`},
	} {
		if got := String(c.in); got != c.want {
			t.Errorf("String(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func FuzzString(f *testing.F) {
	for _, s := range []string{"a\nb", "\x1b[2J", "ok", "\u202e", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := String(s)
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 out of %q: %q", s, out)
		}
		for _, r := range out {
			if unsafe(r) {
				t.Fatalf("String(%q) = %q still holds %U", s, out, r)
			}
		}
		if clean(s) && out != s {
			t.Fatalf("clean text changed: %q -> %q", s, out)
		}
	})
}

func TestPrintable(t *testing.T) {
	for s, want := range map[string]bool{
		"deploy of 1.4.2, ticket OPS-17": true, "zoë 日本": true, "": true,
		"a\nbob approved 8": false, "\x1b]0;x\x07": false, "tab\there": false, "r\u202eevil": false,
		"\x9b": false, "bad\xff": false, "del\x7f": false,
	} {
		if got := Printable(s); got != want {
			t.Errorf("Printable(%q) = %v, want %v", s, got, want)
		}
	}
}
