package file

import (
	"bytes"
	"regexp"
	"time"
)

// joiner gathers the lines of one multiline event (a log record with its stack trace). A line
// for which isStart is true begins a new event; any other line is appended to the event
// before it, joined with "\n". The joined event is capped at maxBytes (the rest is dropped and
// the event marked truncated) and at maxLines (a further line starts a new event).
type joiner struct {
	isStart  func([]byte) bool
	maxBytes int
	maxLines int

	active    bool
	buf       []byte
	lines     int
	truncated bool
	first     time.Time
}

// startsEvent reports whether line begins a new event, so that the pending one (if any) is
// complete and must be taken before line is added.
func (j *joiner) startsEvent(line []byte) bool {
	return !j.active || j.lines >= j.maxLines || j.isStart(line)
}

// add appends line to the pending event, beginning one when none is pending.
func (j *joiner) add(line []byte, truncated bool, at time.Time) {
	if !j.active {
		j.active = true
		j.buf = j.buf[:0]
		j.lines = 0
		j.truncated = false
		j.first = at
	} else if len(j.buf) < j.maxBytes {
		j.buf = append(j.buf, '\n')
	} else {
		j.truncated = true
	}
	j.lines++
	room := j.maxBytes - len(j.buf)
	if room < 0 {
		room = 0
	}
	if len(line) > room {
		line = line[:room]
		j.truncated = true
	}
	j.buf = append(j.buf, line...)
	j.truncated = j.truncated || truncated
}

// take ends the pending event and returns it; the bytes are valid until the next add.
func (j *joiner) take() (event []byte, truncated bool, first time.Time, ok bool) {
	if !j.active {
		return nil, false, time.Time{}, false
	}
	j.active = false
	return j.buf, j.truncated, j.first, true
}

// javaStart is the start-of-event test of the "java" preset: everything is a new event except
// the continuation lines of a Java stack trace, which belong to the record above them:
// indented lines ("\tat ...", "\t... 12 more", "\tSuppressed: ..."), "Caused by: ..." and an
// exception header such as "java.lang.IllegalStateException: order 42 is closed".
func javaStart(line []byte) bool {
	if len(line) == 0 {
		return true
	}
	switch line[0] {
	case ' ', '\t':
		return false
	}
	if bytes.HasPrefix(line, []byte("Caused by: ")) || bytes.HasPrefix(line, []byte("Suppressed: ")) {
		return false
	}
	return !isExceptionHeader(line)
}

// isExceptionHeader reports whether line starts with a qualified Java class name (at least two
// dot-separated identifiers) followed by ": " or the end of the line.
func isExceptionHeader(line []byte) bool {
	dots := 0
	start := true
	for i, c := range line {
		switch {
		case c == '.':
			if start {
				return false
			}
			dots++
			start = true
		case c == ':':
			return !start && dots > 0 && (i+1 == len(line) || line[i+1] == ' ')
		case c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			start = false
		case c >= '0' && c <= '9':
			if start {
				return false
			}
		default:
			return false
		}
	}
	return !start && dots > 0
}

// regexpStart returns a start-of-event test from a regular expression.
func regexpStart(re *regexp.Regexp) func([]byte) bool {
	return re.Match
}
