package file

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// referenceLines is the plain definition the splitter must agree with.
func referenceLines(data []byte, maxLine int) (lines []string, truncated []bool) {
	segs := bytes.Split(data, []byte("\n"))
	for i, seg := range segs {
		last := i == len(segs)-1
		if last && len(seg) == 0 {
			break
		}
		if n := len(seg); n > 0 && seg[n-1] == '\r' {
			seg = seg[:n-1]
		}
		tr := len(seg) > maxLine
		if tr {
			seg = seg[:maxLine]
		}
		lines = append(lines, string(seg))
		truncated = append(truncated, tr)
	}
	return lines, truncated
}

func FuzzSplitter(f *testing.F) {
	f.Add([]byte("a\nbb\r\nccc"), uint8(3), uint8(2))
	f.Add([]byte("0123456789\r\n\r\n\n\x00\xff\n"), uint8(4), uint8(1))
	f.Add([]byte(strings.Repeat("x", 40)+"\r"), uint8(39), uint8(7))
	f.Add([]byte("\r\r\n\r"), uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, maxLine uint8, chunk uint8) {
		max := int(maxLine%64) + 1
		step := int(chunk%16) + 1
		s := splitter{maxLine: max}
		var got []string
		var gotTr []bool
		fn := func(line []byte, start, end int, truncated bool) {
			if start < 0 || end < start || len(line) > max {
				t.Fatalf("bad line %q start %d end %d", line, start, end)
			}
			got = append(got, string(line))
			gotTr = append(gotTr, truncated)
		}
		var carry []byte
		total := 0
		for off := 0; off < len(data); off += step {
			region := append(append([]byte(nil), carry...), data[off:min(off+step, len(data))]...)
			n := s.split(region, fn)
			if n < 0 || n > len(region) {
				t.Fatalf("consumed %d of %d", n, len(region))
			}
			total += n
			carry = region[n:]
			if len(carry) > max+1 {
				t.Fatalf("carry of %d bytes exceeds max_line_bytes+1 (%d)", len(carry), max+1)
			}
		}
		total += s.flush(carry, fn)
		if total != len(data) {
			t.Fatalf("consumed %d of %d bytes", total, len(data))
		}
		want, wantTr := referenceLines(data, max)
		if strings.Join(got, "\x01") != strings.Join(want, "\x01") || len(got) != len(want) {
			t.Fatalf("lines %q, want %q", got, want)
		}
		for i := range gotTr {
			if gotTr[i] != wantTr[i] {
				t.Fatalf("line %d truncated=%v, want %v", i, gotTr[i], wantTr[i])
			}
		}
	})
}

func FuzzJoiner(f *testing.F) {
	f.Add("S one\n\tat x\nS two\nmore\nmore", uint8(50), uint8(3), false)
	f.Add("2026-11-29 ERROR x\njava.lang.IllegalStateException: closed\n\tat a.b(C.java:1)\nCaused by: x.Y: z\n", uint8(200), uint8(10), true)
	f.Add("a.b\n.c\nx.y:\nv1.2: z\n", uint8(5), uint8(1), true)
	f.Fuzz(func(t *testing.T, input string, maxBytes, maxLines uint8, java bool) {
		isStart := func(l []byte) bool { return len(l) > 0 && l[0] == 'S' }
		if java {
			isStart = javaStart
		}
		j := joiner{isStart: isStart, maxBytes: int(maxBytes) + 1, maxLines: int(maxLines%20) + 1}
		lines := strings.Split(input, "\n")
		var events []string
		var anyTruncated bool
		take := func() {
			ev, tr, _, ok := j.take()
			if !ok {
				return
			}
			if len(ev) > j.maxBytes {
				t.Fatalf("event of %d bytes exceeds %d", len(ev), j.maxBytes)
			}
			if n := bytes.Count(ev, []byte("\n")) + 1; n > j.maxLines {
				t.Fatalf("event of %d lines exceeds %d", n, j.maxLines)
			}
			anyTruncated = anyTruncated || tr
			events = append(events, string(ev))
		}
		for _, l := range lines {
			if j.startsEvent([]byte(l)) {
				take()
			}
			j.add([]byte(l), false, time.Time{})
		}
		take()
		if !anyTruncated && strings.Join(events, "\n") != input {
			t.Fatalf("events %q do not join back to %q", events, input)
		}
		for i, ev := range events {
			first := strings.SplitN(ev, "\n", 2)[0]
			if i > 0 && !anyTruncated && !isStart([]byte(first)) && strings.Count(events[i-1], "\n")+1 < j.maxLines {
				t.Fatalf("event %q begins with a continuation line", ev)
			}
		}
	})
}
