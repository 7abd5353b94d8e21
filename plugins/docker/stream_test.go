package docker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func stamp(ns int) string {
	return t0.Add(time.Duration(ns)).Format(timestampLayout)
}

// frame builds one frame of the multiplexed log stream.
func frame(kind byte, payload string) []byte {
	h := make([]byte, 8, 8+len(payload))
	h[0] = kind
	binary.BigEndian.PutUint32(h[4:], uint32(len(payload)))
	return append(h, payload...)
}

// message is what the daemon sends for one log message: "TIMESTAMP SP content".
func message(ns int, content string) string { return stamp(ns) + " " + content }

// fragments cuts a line the way Docker's log copier does (16 KiB pieces sharing one
// timestamp) and returns the messages.
func fragments(ns int, line, eol string) []string {
	var out []string
	for len(line) > fragmentBytes {
		out = append(out, message(ns, line[:fragmentBytes]))
		line = line[fragmentBytes:]
	}
	return append(out, message(ns, line+eol))
}

type gotLine struct {
	ns        int
	stream    string
	line      string
	continued bool
	err       string
}

func decodeAll(t *testing.T, r io.Reader, tty bool, maxLine int) []gotLine {
	t.Helper()
	d := newDecoder(r, tty, maxLine)
	var out []gotLine
	for {
		l, err := d.next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		out = append(out, gotLine{ns: int(l.ts.Sub(t0)), stream: l.stream, line: string(l.line),
			continued: l.continued, err: l.daemonErr})
	}
}

func TestDecodeMultiplexed(t *testing.T) {
	long := strings.Repeat("a", fragmentBytes) + strings.Repeat("b", fragmentBytes) + "tail"
	var in bytes.Buffer
	in.Write(frame(frameStdout, message(1, "hello\n")))
	in.Write(frame(frameStderr, message(2, "oops\n")))
	for _, m := range fragments(3, long, "\n") {
		in.Write(frame(frameStdout, m))
		// Lines of the other stream may arrive between the fragments.
		in.Write(frame(frameStderr, message(4, "between\n")))
	}
	in.Write(frame(frameStdin, "ignored"))
	in.Write(frame(frameSystemErr, "Error grabbing logs: log file is corrupt\n"))
	in.Write(frame(frameStdout, message(5, "with \xff invalid UTF-8 and \r\n")))
	in.Write(frame(frameStdout, message(6, "\n")))
	in.Write(frame(frameStdout, "no timestamp at all\n"))
	in.Write(frame(frameStdout, message(7, "last line without newline")))

	got := decodeAll(t, &in, false, 1<<20)
	want := []gotLine{
		{ns: 1, stream: "stdout", line: "hello"},
		{ns: 2, stream: "stderr", line: "oops"},
		{ns: 4, stream: "stderr", line: "between"},
		{ns: 4, stream: "stderr", line: "between"},
		{ns: 3, stream: "stdout", line: long},
		{ns: 4, stream: "stderr", line: "between"},
		{err: "Error grabbing logs: log file is corrupt"},
		{ns: 5, stream: "stdout", line: "with \xff invalid UTF-8 and \r"},
		{ns: 6, stream: "stdout", line: ""},
		{ns: 6, stream: "stdout", line: "no timestamp at all"},
		{ns: 7, stream: "stdout", line: "last line without newline"},
	}
	compareLines(t, got, want)
}

func compareLines(t *testing.T, got, want []gotLine) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(got), len(want), show(got))
	}
	for i := range want {
		g, w := got[i], want[i]
		if w.err != "" {
			if g.err != w.err {
				t.Errorf("line %d: daemon error %q, want %q", i, g.err, w.err)
			}
			continue
		}
		if g != w {
			t.Errorf("line %d:\n got %s\nwant %s", i, show([]gotLine{g}), show([]gotLine{w}))
		}
	}
}

func show(ls []gotLine) string {
	var b strings.Builder
	for _, l := range ls {
		s := l.line
		if len(s) > 60 {
			s = fmt.Sprintf("%s...(%d bytes)", s[:40], len(s))
		}
		fmt.Fprintf(&b, "{ns=%d %s %q continued=%v err=%q}\n", l.ns, l.stream, s, l.continued, l.err)
	}
	return b.String()
}

func TestDecodeRawTTY(t *testing.T) {
	long := strings.Repeat("x", 100<<10) + "!"
	exact := strings.Repeat("e", fragmentBytes)
	var in strings.Builder
	in.WriteString(message(1, "first\r\n"))
	for _, m := range fragments(2, long, "\r\n") {
		in.WriteString(m)
	}
	// A line of exactly one fragment's length ends with its newline in the next message.
	in.WriteString(message(3, exact))
	in.WriteString(message(3, "\r\n"))
	// Content that merely reaches 16 KiB, not followed by a timestamp, goes on.
	in.WriteString(message(4, exact+"more\r\n"))
	in.WriteString(message(5, "plain newline\n"))
	in.WriteString(message(6, "cut off at the end"))
	want := []gotLine{
		{ns: 1, stream: "stdout", line: "first"},
		{ns: 2, stream: "stdout", line: long},
		{ns: 3, stream: "stdout", line: exact},
		{ns: 4, stream: "stdout", line: exact + "more"},
		{ns: 5, stream: "stdout", line: "plain newline"},
		{ns: 6, stream: "stdout", line: "cut off at the end"},
	}
	readers := map[string]func(string) io.Reader{
		"whole":    func(s string) io.Reader { return strings.NewReader(s) },
		"one-byte": func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
		"half":     func(s string) io.Reader { return iotest.HalfReader(strings.NewReader(s)) },
	}
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			compareLines(t, decodeAll(t, mk(in.String()), true, 1<<20), want)
		})
	}
}

func TestDecodeSplitsLinesLongerThanTheMaximum(t *testing.T) {
	line := strings.Repeat("0123456789", 5000) // 50,000 bytes
	max := 20000
	want := []gotLine{
		{ns: 9, stream: "stdout", line: line[:max], continued: true},
		{ns: 9, stream: "stdout", line: line[max : 2*max], continued: true},
		{ns: 9, stream: "stdout", line: line[2*max:]},
	}
	var mux bytes.Buffer
	var raw strings.Builder
	for _, m := range fragments(9, line, "\n") {
		mux.Write(frame(frameStdout, m))
		raw.WriteString(m)
	}
	t.Run("multiplexed", func(t *testing.T) { compareLines(t, decodeAll(t, &mux, false, max), want) })
	t.Run("tty", func(t *testing.T) { compareLines(t, decodeAll(t, strings.NewReader(raw.String()), true, max), want) })
}

func TestDecodeCorruptFrame(t *testing.T) {
	in := append(frame(frameStdout, message(1, "ok\n")), 9, 0, 0, 0, 0, 0, 0, 1, 'x')
	d := newDecoder(bytes.NewReader(in), false, 1<<20)
	if l, err := d.next(); err != nil || string(l.line) != "ok" {
		t.Fatalf("first line: %q %v", l.line, err)
	}
	if _, err := d.next(); err == nil || !strings.Contains(err.Error(), "corrupt log stream") {
		t.Fatalf("corrupt header: %v", err)
	}
}

func TestDecodePendingSince(t *testing.T) {
	var in bytes.Buffer
	fr := fragments(1, strings.Repeat("p", fragmentBytes+10), "\n")
	in.Write(frame(frameStdout, fr[0]))
	in.Write(frame(frameStderr, message(2, "meanwhile\n")))
	in.Write(frame(frameStdout, fr[1]))
	d := newDecoder(&in, false, 1<<20)
	l, err := d.next()
	if err != nil || l.stream != "stderr" {
		t.Fatalf("first line %+v %v", l, err)
	}
	since, ok := d.pendingSince()
	if !ok || !since.Equal(t0.Add(1)) {
		t.Fatalf("pendingSince = %v %v, want the cut line's time", since, ok)
	}
	if _, err := d.next(); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.pendingSince(); ok {
		t.Fatalf("nothing should be pending after the line completed")
	}
}

func TestParseTimestamp(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-03-01T12:00:00.000000001Z", t0.Add(1), true},
		{"2026-02-29T12:00:00.000000000Z", time.Time{}, false}, // not a leap year
		{"2026-03-01T12:00:00.5+01:00", t0.Add(-time.Hour + 500*time.Millisecond), true},
		{"2026-03-01T12:00:00Z", t0, true},
		{"2026-13-01T12:00:00.000000000Z", time.Time{}, false},
		{"logemitter", time.Time{}, false},
		{"", time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := parseTimestamp([]byte(tt.in))
		if ok != tt.ok || (ok && !got.Equal(tt.want)) {
			t.Errorf("parseTimestamp(%q) = %v %v, want %v %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzDecodeMultiplexed feeds arbitrary bytes as a multiplexed stream: the decoder must not
// panic or loop, and never invents content.
func FuzzDecodeMultiplexed(f *testing.F) {
	var seed bytes.Buffer
	seed.Write(frame(frameStdout, message(1, "hello\n")))
	seed.Write(frame(frameStderr, message(2, "partial")))
	seed.Write(frame(frameStderr, message(2, " end\n")))
	f.Add(seed.Bytes())
	f.Add(frame(frameSystemErr, "Error grabbing logs\n"))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 3, 'a', 'b'})
	f.Fuzz(func(t *testing.T, in []byte) {
		d := newDecoder(bytes.NewReader(in), false, 1024)
		total := 0
		for i := 0; ; i++ {
			l, err := d.next()
			if err != nil {
				break
			}
			if i > len(in) {
				t.Fatalf("more lines than input bytes")
			}
			if len(l.line) > 1024 {
				t.Fatalf("line of %d bytes exceeds the maximum", len(l.line))
			}
			total += len(l.line) + len(l.daemonErr)
		}
		if total > len(in) {
			t.Fatalf("decoded %d bytes from %d", total, len(in))
		}
	})
}

// FuzzDecodeRawTTY checks the TTY parser: lines encoded as the daemon sends them come back
// unchanged however the stream is chunked, and arbitrary bytes never crash it.
func FuzzDecodeRawTTY(f *testing.F) {
	f.Add("one\ntwo\n\nthree", uint16(0), []byte("2026-03-01T12:00:00.000000001Z x\r\n"))
	f.Add("short", uint16(17000), []byte("garbage without prefix\n"))
	f.Add("", uint16(16384), []byte{})
	f.Fuzz(func(t *testing.T, text string, pad uint16, garbage []byte) {
		lines := strings.Split(text, "\n")
		if pad > 0 {
			lines = append(lines, strings.Repeat("p", int(pad)))
		}
		var in strings.Builder
		var want []gotLine
		for i, l := range lines {
			l = strings.ReplaceAll(l, "\r", "")
			for _, m := range fragments(i, l, "\r\n") {
				in.WriteString(m)
			}
			want = append(want, gotLine{ns: i, stream: "stdout", line: l})
		}
		got := decodeAll(t, iotest.HalfReader(strings.NewReader(in.String())), true, 1<<20)
		compareLines(t, got, want)

		d := newDecoder(iotest.OneByteReader(bytes.NewReader(garbage)), true, 1024)
		total := 0
		for {
			l, err := d.next()
			if err != nil {
				break
			}
			total += len(l.line)
		}
		if total > len(garbage) {
			t.Fatalf("decoded %d bytes from %d", total, len(garbage))
		}
	})
}
