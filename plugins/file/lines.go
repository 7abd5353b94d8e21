package file

import "bytes"

// splitter cuts a file's bytes into lines. It is fed regions that always start where the
// previous call stopped consuming, so a line split across reads is seen whole the next time.
// Lines end with "\n" or "\r\n"; the terminator is not part of the line. A line longer than
// maxLine is cut to its first maxLine bytes (truncated) and the rest of it is skipped as it
// arrives, so a huge line never has to fit in memory.
type splitter struct {
	maxLine int
	// skipping is set while the rest of a truncated line is being discarded.
	skipping bool
}

// lineFunc receives one line. start and end are indexes into the region: start is where the
// line begins and end is where the next unread byte is after it (past the terminator, or past
// the discarded bytes of a truncated line). line is a sub-slice of the region.
type lineFunc func(line []byte, start, end int, truncated bool)

// split hands every complete line of region to fn and returns how many bytes it consumed;
// region[consumed:] is the start of an incomplete line, to be given again with more bytes.
func (s *splitter) split(region []byte, fn lineFunc) int {
	i := 0
	if s.skipping {
		j := bytes.IndexByte(region, '\n')
		if j < 0 {
			return len(region)
		}
		s.skipping = false
		i = j + 1
	}
	for i < len(region) {
		j := bytes.IndexByte(region[i:], '\n')
		if j < 0 {
			break
		}
		end := i + j
		line := region[i:end]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) > s.maxLine {
			fn(line[:s.maxLine:s.maxLine], i, end+1, true)
		} else {
			fn(line[:len(line):len(line)], i, end+1, false)
		}
		i = end + 1
	}
	rest := region[i:]
	// The rest has no newline. If it is already longer than a line may be (allowing for a
	// '\r' that may turn out to be half of "\r\n"), emit its head now and skip the remainder.
	if len(rest) > s.maxLine+1 || (len(rest) == s.maxLine+1 && rest[s.maxLine] != '\r') {
		fn(rest[:s.maxLine:s.maxLine], i, len(region), true)
		s.skipping = true
		return len(region)
	}
	return i
}

// flush hands the incomplete rest of region (after split) to fn as a line of its own and
// returns the bytes consumed: used when a partial line has waited long enough or its file
// has ended for good.
func (s *splitter) flush(region []byte, fn lineFunc) int {
	if len(region) == 0 || s.skipping {
		return len(region)
	}
	line := region
	if n := len(line); line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) > s.maxLine {
		fn(line[:s.maxLine:s.maxLine], 0, len(region), true)
	} else {
		fn(line[:len(line):len(line)], 0, len(region), false)
	}
	return len(region)
}
