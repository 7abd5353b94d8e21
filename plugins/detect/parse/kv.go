package parse

import "strconv"

// maxFieldLen bounds any field value taken from a line, so a huge or hostile line cannot
// make detection state grow.
const maxFieldLen = 256

func clip(s string) string {
	if len(s) > maxFieldLen {
		return s[:maxFieldLen]
	}
	return s
}

func isKeyByte(c byte) bool {
	return c == '_' || c == '.' || c == '-' || c == '@' ||
		(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || isDigit(c)
}

// ParseKV calls fn for every key=value pair in b (logfmt and the audit-line contract). Values
// may be double-quoted with backslash escapes; tokens that are not key=value pairs are
// skipped. It never fails: malformed input yields fewer pairs.
func ParseKV(b []byte, fn func(key, value string)) {
	i := 0
	for i < len(b) {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
			i++
		}
		ks := i
		for i < len(b) && isKeyByte(b[i]) {
			i++
		}
		if i == ks || i >= len(b) || b[i] != '=' {
			// Not a pair: skip the token (a quoted token as a whole).
			if i < len(b) && b[i] == '"' {
				i = skipQuoted(b, i)
			}
			for i < len(b) && b[i] != ' ' && b[i] != '\t' {
				if b[i] == '"' {
					i = skipQuoted(b, i)
					continue
				}
				i++
			}
			continue
		}
		key := string(b[ks:i])
		i++ // '='
		var val string
		if i < len(b) && b[i] == '"' {
			end := skipQuoted(b, i)
			raw := string(b[i:end])
			if u, err := strconv.Unquote(raw); err == nil {
				val = u
			} else if len(raw) >= 2 && raw[len(raw)-1] == '"' {
				val = raw[1 : len(raw)-1]
			} else {
				val = raw[1:]
			}
			i = end
		} else {
			vs := i
			for i < len(b) && b[i] != ' ' && b[i] != '\t' {
				i++
			}
			val = string(b[vs:i])
		}
		fn(key, clip(val))
	}
}

// skipQuoted returns the index just after the quoted string starting at b[i] == '"' (or the
// end of b when it is not closed).
func skipQuoted(b []byte, i int) int {
	i++
	for i < len(b) {
		switch b[i] {
		case '\\':
			i += 2
			continue
		case '"':
			return i + 1
		}
		i++
	}
	return len(b)
}
