package parse

import (
	"strconv"
	"time"
)

// Hand-written timestamp parsers: time.Parse costs several times more and allocates for zone
// offsets. Every function returns the time in UTC and how many bytes it consumed.

func digits(b []byte, n int) (int, bool) {
	if len(b) < n {
		return 0, false
	}
	v := 0
	for i := 0; i < n; i++ {
		c := b[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func validClock(mo, d, h, mi, s int) bool {
	return mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && s <= 60
}

// makeTime builds a time from wall-clock parts. With hasZone the offset (seconds east of UTC)
// applies; otherwise loc does.
func makeTime(y, mo, d, h, mi, s, ns int, hasZone bool, offset int, loc *time.Location) time.Time {
	if hasZone || loc == nil || loc == time.UTC {
		t := time.Date(y, time.Month(mo), d, h, mi, s, ns, time.UTC)
		if offset != 0 {
			t = t.Add(-time.Duration(offset) * time.Second)
		}
		return t
	}
	return time.Date(y, time.Month(mo), d, h, mi, s, ns, loc).UTC()
}

// fraction parses up to 9 digits of a fractional second after '.' or ','.
func fraction(b []byte) (ns, n int) {
	if len(b) < 2 || (b[0] != '.' && b[0] != ',') || !isDigit(b[1]) {
		return 0, 0
	}
	i := 1
	scale := 100000000
	for i < len(b) && isDigit(b[i]) {
		if scale > 0 {
			ns += int(b[i]-'0') * scale
			scale /= 10
		}
		i++
	}
	return ns, i
}

// zone parses Z, ±HH:MM, ±HHMM or ±HH. It returns the offset in seconds east of UTC.
func zone(b []byte) (offset, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	if b[0] == 'Z' || b[0] == 'z' {
		return 0, 1, true
	}
	if b[0] != '+' && b[0] != '-' {
		return 0, 0, false
	}
	sign := 1
	if b[0] == '-' {
		sign = -1
	}
	hh, ok := digits(b[1:], 2)
	if !ok || hh > 23 {
		return 0, 0, false
	}
	n = 3
	mm := 0
	if len(b) >= 6 && b[3] == ':' {
		if mm, ok = digits(b[4:], 2); !ok {
			return 0, 0, false
		}
		n = 6
	} else if len(b) >= 5 && isDigit(b[3]) {
		if mm, ok = digits(b[3:], 2); !ok {
			return 0, 0, false
		}
		n = 5
	}
	if mm > 59 {
		return 0, 0, false
	}
	return sign * (hh*3600 + mm*60), n, true
}

// ParseISO parses an ISO 8601 / RFC 3339 timestamp at the start of b:
// YYYY-MM-DD[T ]HH:MM:SS[.,fraction][Z|±HH:MM|±HHMM]. Without a zone, loc applies.
func ParseISO(b []byte, loc *time.Location) (time.Time, int, bool) {
	if len(b) < 19 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != ' ') ||
		b[13] != ':' || b[16] != ':' {
		return time.Time{}, 0, false
	}
	y, ok1 := digits(b, 4)
	mo, ok2 := digits(b[5:], 2)
	d, ok3 := digits(b[8:], 2)
	h, ok4 := digits(b[11:], 2)
	mi, ok5 := digits(b[14:], 2)
	s, ok6 := digits(b[17:], 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || !validClock(mo, d, h, mi, s) {
		return time.Time{}, 0, false
	}
	n := 19
	ns, fn := fraction(b[n:])
	n += fn
	off, zn, hasZone := zone(b[n:])
	n += zn
	return makeTime(y, mo, d, h, mi, s, ns, hasZone, off, loc), n, true
}

var months = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

func month(b []byte) int {
	if len(b) < 3 {
		return 0
	}
	for i, m := range months {
		if b[0] == m[0] && b[1] == m[1] && b[2] == m[2] {
			return i + 1
		}
	}
	return 0
}

// ParseCLF parses the access-log time inside the brackets: Werkzeug's `29/Nov/2026 15:03:26`
// (local time, no zone) or the common log format's `22/Aug/2026:11:10:23 +0200`.
func ParseCLF(b []byte, loc *time.Location) (time.Time, bool) {
	if len(b) < 20 || b[2] != '/' || b[6] != '/' || (b[11] != ' ' && b[11] != ':') ||
		b[14] != ':' || b[17] != ':' {
		return time.Time{}, false
	}
	d, ok1 := digits(b, 2)
	mo := month(b[3:])
	y, ok2 := digits(b[7:], 4)
	h, ok3 := digits(b[12:], 2)
	mi, ok4 := digits(b[15:], 2)
	s, ok5 := digits(b[18:], 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5) || !validClock(mo, d, h, mi, s) {
		return time.Time{}, false
	}
	rest := b[20:]
	ns, fn := fraction(rest)
	rest = rest[fn:]
	off, hasZone := 0, false
	if len(rest) > 1 && rest[0] == ' ' {
		var zn int
		off, zn, hasZone = zone(rest[1:])
		if hasZone && zn != len(rest)-1 {
			hasZone = false
		}
	}
	return makeTime(y, mo, d, h, mi, s, ns, hasZone, off, loc), true
}

// ParseAny parses a timestamp value from JSON or logfmt: RFC 3339 / ISO 8601, the access-log
// forms, or a Unix epoch in seconds, milliseconds or nanoseconds (with an optional fraction).
func ParseAny(s string, loc *time.Location) (time.Time, bool) {
	b := []byte(s)
	if t, n, ok := ParseISO(b, loc); ok && n == len(b) {
		return t, true
	}
	if t, ok := ParseCLF(b, loc); ok {
		return t, true
	}
	if len(s) == 0 || !isDigit(s[0]) {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 {
		return time.Time{}, false
	}
	switch {
	case f >= 1e17: // nanoseconds
		return time.Unix(0, int64(f)).UTC(), true
	case f >= 1e14: // microseconds
		return time.UnixMicro(int64(f)).UTC(), true
	case f >= 1e11: // milliseconds
		return time.UnixMilli(int64(f)).UTC(), true
	default:
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), true
	}
}
