package ops

import (
	"crypto/sha256"
	"strings"
)

// idAlphabet is lower-case base32 without the letters people misread (i, l, o, u): an id
// survives being read aloud, typed, and put in a URL.
const idAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// IncidentIDLen is the length of an incident id; a collision with another incident's id
// (about one in 10^12 per pair) makes the newer one longer.
const IncidentIDLen = 8

// incidentID derives the id of a fingerprint, n characters long (n <= 51).
func incidentID(fingerprint string, n int) string {
	sum := sha256.Sum256([]byte(fingerprint))
	var b strings.Builder
	var acc, bits uint
	for _, c := range sum {
		acc = acc<<8 | uint(c)
		bits += 8
		for bits >= 5 && b.Len() < n {
			bits -= 5
			b.WriteByte(idAlphabet[(acc>>bits)&31])
		}
		acc &= 1<<bits - 1
		if b.Len() == n {
			break
		}
	}
	return b.String()
}
