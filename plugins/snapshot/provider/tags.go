package provider

import (
	"strings"
	"unicode"
)

// MaxTagValueLength is RDS's limit for a tag value.
const MaxTagValueLength = 256

// CleanTagValue makes v acceptable as an RDS tag value: letters, digits, white space and
// _ . : / = + - @ are kept, anything else becomes "_", and the result is cut to 256 characters.
func CleanTagValue(v string) string {
	var b strings.Builder
	n := 0
	for _, r := range v {
		if n == MaxTagValueLength {
			break
		}
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), unicode.IsSpace(r), strings.ContainsRune("_.:/=+-@", r):
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		n++
	}
	return b.String()
}
