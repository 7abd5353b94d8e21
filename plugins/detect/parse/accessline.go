package parse

import (
	"bytes"
	"time"
)

// maxAccessTries bounds how many "HTTP/" occurrences of one line are examined.
const maxAccessTries = 4

var httpProto = []byte("HTTP/")

// findAccess finds an access line in the common log format of Werkzeug and gunicorn anywhere
// in line, inside whatever logging prefix wraps it:
//
//	host ident user [time] "METHOD target HTTP/x.y" status size ...
//
// It anchors on the quoted request followed by a status, then reads backwards: the optional
// [time], then the ident "-" and the user, then the host (an X-Forwarded-For chain `a, b` as
// well). Formats without time or without host are accepted. A header time already found (the
// logging prefix's, usually more precise) is kept. It never allocates; a line without "HTTP/"
// costs one byte search.
func findAccess(line []byte, loc *time.Location, h *header) bool {
	// The request is quoted: a line without a quote is rejected by one byte scan.
	off := bytes.IndexByte(line, '"')
	if off < 0 {
		return false
	}
	for tries := 0; tries < maxAccessTries; tries++ {
		i := bytes.Index(line[off:], httpProto)
		if i < 0 {
			return false
		}
		i += off
		off = i + len(httpProto)
		if accessAt(line, i, loc, h) {
			return true
		}
	}
	return false
}

// accessAt checks for an access line whose request protocol starts at line[i] ("HTTP/").
func accessAt(line []byte, i int, loc *time.Location, h *header) bool {
	if i < 4 || line[i-1] != ' ' {
		return false
	}
	// `HTTP/1.1" 401 ` : version, closing quote, status.
	j := i + len(httpProto)
	for n := 0; j < len(line) && n < 5 && (isDigit(line[j]) || line[j] == '.'); n++ {
		j++
	}
	if j+5 > len(line) || line[j] != '"' || line[j+1] != ' ' {
		return false
	}
	status, ok := digits(line[j+2:], 3)
	if !ok || (j+5 < len(line) && line[j+5] != ' ' && line[j+5] != '\r' && line[j+5] != '\n') {
		return false
	}
	q := bytes.LastIndexByte(line[:i-1], '"')
	if q < 0 {
		return false
	}
	req := line[q+1 : j]
	sp := bytes.IndexByte(req, ' ')
	if sp <= 0 || sp > 16 || !isMethod(req[:sp]) {
		return false
	}
	method := req[:sp]
	if q+1+sp+1 > i-1 {
		return false // no target: `"GET HTTP/1.1"`
	}
	target := line[q+1+sp+1 : i-1]

	// Read backwards from the opening quote: [time], user, ident, host.
	var at time.Time
	atOK, zoned := false, false
	hs, he := -1, -1
	end := q
	if end > 0 {
		if line[end-1] != ' ' {
			return false
		}
		end--
		if end > 1 && line[end-1] == ']' {
			lo := end - 48
			if lo < 0 {
				lo = 0
			}
			if ob := bytes.LastIndexByte(line[lo:end-1], '['); ob >= 0 {
				ob += lo
				if t, ok := ParseCLF(line[ob+1:end-1], loc); ok {
					at, atOK = t, true
					zoned = end-1-ob > 26 && (line[end-6] == '+' || line[end-6] == '-')
					end = ob
					if end > 0 {
						if line[end-1] != ' ' {
							return false
						}
						end--
					}
				}
			}
		}
		if !atOK {
			// urllib3's client log, `http://api:5000 "POST /login HTTP/1.1" 401 3`, is a
			// request this app sent, not one it served.
			if ts := bytes.LastIndexByte(line[:end], ' ') + 1; bytes.Contains(line[ts:end], []byte("://")) {
				return false
			}
		}
		hs, he = hostBefore(line, end)
	}

	h.access = true
	h.method = method
	h.path = requestPath(target)
	h.status = status
	h.msg = req
	if hs >= 0 {
		h.ip = line[hs:he]
	} else {
		h.ip = nil
	}
	if zoned || !atOK {
		h.format = FormatGunicorn
	} else {
		h.format = FormatWerkzeug
	}
	if !h.hasTime && atOK {
		h.t, h.hasTime = at, true
	}
	return true
}

// hostBefore finds the host field before line[end] (a space or the end of the text before
// the request): `host - user`, or a lone address. A forwarded chain `a, b` is taken whole.
// It returns -1, -1 when there is none.
func hostBefore(line []byte, end int) (int, int) {
	if end <= 0 {
		return -1, -1
	}
	us := bytes.LastIndexByte(line[:end], ' ') + 1 // user (or the host itself)
	hs, he := -1, -1
	if us >= 3 && line[us-2] == '-' && (us == 3 || line[us-3] == ' ') {
		// ident "-" before the user: the host ends before it.
		he = us - 3
		if he <= 0 {
			return -1, -1
		}
		hs = bytes.LastIndexByte(line[:he], ' ') + 1
	} else if isAddrToken(line[us:end]) {
		hs, he = us, end
	} else {
		return -1, -1
	}
	// Earlier entries of an X-Forwarded-For chain: "a, b".
	for n := 0; n < maxChainHops && hs >= 2 && line[hs-1] == ' ' && line[hs-2] == ','; n++ {
		hs = bytes.LastIndexByte(line[:hs-1], ' ') + 1
	}
	if hs >= he {
		return -1, -1
	}
	return hs, he
}

// isAddrToken reports whether b looks like an address field: only address and chain bytes.
func isAddrToken(b []byte) bool {
	if len(b) == 0 || len(b) > 64 {
		return false
	}
	dot := false
	for _, c := range b {
		if !isChainByte(c) || c == ' ' {
			return false
		}
		dot = dot || c == '.' || c == ':'
	}
	return dot
}

func isMethod(b []byte) bool {
	for _, c := range b {
		if (c < 'A' || c > 'Z') && c != '-' && c != '_' {
			return false
		}
	}
	return len(b) > 0
}

// requestPath returns the path of a request target: without query string, and without the
// scheme and host of an absolute-form target.
func requestPath(target []byte) []byte {
	if bytes.HasPrefix(target, []byte("http://")) || bytes.HasPrefix(target, []byte("https://")) {
		rest := target[bytes.IndexByte(target, ':')+3:]
		if s := bytes.IndexByte(rest, '/'); s >= 0 {
			target = rest[s:]
		} else {
			target = []byte("/")
		}
	}
	for i, c := range target {
		if c == '?' || c == '#' {
			return target[:i]
		}
	}
	return target
}

// cleanHost returns the address in a host field that a logging prefix may be glued to
// (`INFO:werkzeug:127.0.0.1`, `INFO:werkzeug:::1`), or the field as it is.
func cleanHost(b []byte) []byte {
	if _, ok := ParseHost(b); ok {
		return b
	}
	for k := 0; k < len(b); k++ {
		if b[k] == ':' {
			if _, ok := ParseHost(b[k+1:]); ok {
				return b[k+1:]
			}
		}
	}
	return b
}
