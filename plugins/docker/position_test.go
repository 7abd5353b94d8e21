package docker

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

func TestResumeFilter(t *testing.T) {
	sec := int64(time.Second)
	type l struct {
		ts   int64
		name string
	}
	tests := []struct {
		name string
		pos  position
		in   []l
		want []string
	}{
		{
			name: "after a time: lines stamped later",
			pos:  position{TS: 100},
			in:   []l{{99, "a"}, {100, "b"}, {101, "c"}, {100, "d"}},
			want: []string{"c", "d"},
		},
		{
			name: "from the beginning",
			pos:  position{},
			in:   []l{{1, "a"}, {2, "b"}},
			want: []string{"a", "b"},
		},
		{
			name: "after the position's own line",
			pos:  position{TS: 100, N: 1},
			in:   []l{{90, "a"}, {100, "b"}, {101, "c"}, {102, "d"}},
			want: []string{"c", "d"},
		},
		{
			name: "identical timestamps: the second of three was delivered last",
			pos:  position{TS: 100, N: 2},
			in:   []l{{100, "a"}, {100, "b"}, {100, "c"}, {101, "d"}},
			want: []string{"c", "d"},
		},
		{
			name: "out of order: a later-stamped line before the position's line was delivered",
			pos:  position{TS: 100, N: 1},
			in:   []l{{101, "stderr first"}, {100, "stdout"}, {99, "stamped earlier, logged later"}, {102, "e"}},
			want: []string{"stamped earlier, logged later", "e"},
		},
		{
			name: "position's line gone from the log: held lines follow",
			pos:  position{TS: 100, N: 1},
			in:   []l{{101, "a"}, {102, "b"}, {100 + 3*sec, "c"}},
			want: []string{"a", "b", "c"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newResumeFilter(tt.pos)
			var occ occurrences
			var got []string
			for _, in := range tt.in {
				for _, o := range f.push(logLine{ts: time.Unix(0, in.ts), line: []byte(in.name)}, occ.count(in.ts), nil) {
					got = append(got, string(o.line))
				}
			}
			for _, o := range f.end(nil) {
				got = append(got, string(o.line))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("delivered %q, want %q", got, tt.want)
			}
		})
	}
}

func TestResumeFilterEndFlushesHeldLines(t *testing.T) {
	f := newResumeFilter(position{TS: 100, N: 1})
	if out := f.push(logLine{ts: time.Unix(0, 150), line: []byte("x")}, 1, nil); len(out) != 0 {
		t.Fatalf("a line after the position but before its own line is held, got %d", len(out))
	}
	if out := f.end(nil); len(out) != 1 || string(out[0].line) != "x" {
		t.Fatalf("end must deliver held lines, got %v", out)
	}
}

// TestPositionRoundTrip replays a log through positions taken after every line: resuming
// from any of them yields exactly the rest of the log, even with identical and out-of-order
// timestamps.
func TestPositionRoundTrip(t *testing.T) {
	stamps := []int64{5, 5, 7, 6, 7, 7, 9, 8, 8, 12}
	var log []logLine
	for i, ts := range stamps {
		log = append(log, logLine{ts: time.Unix(0, ts), line: []byte(fmt.Sprint(i))})
	}
	pos := position{ID: "c"}
	var occ occurrences
	for i := range log {
		pos.advance(log[i].ts.UnixNano(), occ.count(log[i].ts.UnixNano()))
		round, err := decodePosition(pos.encode())
		if err != nil || round != pos {
			t.Fatalf("encode/decode: %+v -> %+v %v", pos, round, err)
		}
		f := newResumeFilter(round)
		var reread occurrences
		var got []string
		for _, l := range log {
			for _, o := range f.push(l, reread.count(l.ts.UnixNano()), nil) {
				got = append(got, string(o.line))
			}
		}
		for _, o := range f.end(nil) {
			got = append(got, string(o.line))
		}
		var want []string
		for _, l := range log[i+1:] {
			want = append(want, string(l.line))
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("after line %d (%+v): resumed with %q, want %q", i, pos, got, want)
		}
	}
}

func TestPositionSince(t *testing.T) {
	sec := int64(time.Second)
	tests := []struct {
		pos  position
		want string
	}{
		{position{}, ""},
		{position{TS: 10*sec + 5}, "9"},
		{position{TS: 10*sec + 5, From: 8 * sec}, "7"},
		{position{TS: 10 * sec, From: 12 * sec}, "9"},
	}
	for _, tt := range tests {
		if got := tt.pos.since(); got != tt.want {
			t.Errorf("%+v.since() = %q, want %q", tt.pos, got, tt.want)
		}
	}
}

func TestDecodePositionRejectsBadInput(t *testing.T) {
	for _, in := range []string{``, `{}`, `{"id":"x","ts":-1}`, `not json`, `{"id":"x","n":-2}`} {
		if _, err := decodePosition([]byte(in)); err == nil {
			t.Errorf("decodePosition(%q) accepted", in)
		}
	}
}

func TestOccurrences(t *testing.T) {
	var o occurrences
	got := []int{o.count(1), o.count(1), o.count(2), o.count(1), o.count(3), o.count(2)}
	if want := []int{1, 2, 1, 3, 1, 2}; !reflect.DeepEqual(got, want) {
		t.Fatalf("occurrences %v, want %v", got, want)
	}
	for i := int64(10); i < 10+occurrenceWindow; i++ {
		o.count(i)
	}
	if n := o.count(1); n != 1 {
		t.Fatalf("a timestamp older than the window starts over, got %d", n)
	}
}

// numberLog reads log from pos as the tailer does and returns each delivered line's
// log_position, by line text.
func numberLog(pos position, log []logLine) map[string]string {
	f := newResumeFilter(pos)
	var occ occurrences
	got := map[string]string{}
	renumbered := false
	add := func(lines []logLine) {
		if f.lost && !renumbered && len(lines) > 0 {
			pos.Epoch, renumbered = "", true
		}
		for _, l := range lines {
			pos.advance(l.ts.UnixNano(), l.occ)
			got[string(l.line)] = pos.stream() + ":" + fmt.Sprint(pos.Seq)
		}
	}
	for _, l := range log {
		l.occ = occ.count(l.ts.UnixNano())
		add(f.push(l, l.occ, nil))
	}
	add(f.end(nil))
	return got
}

// TestLinePositionsSurviveAResume: a line delivered again from any earlier checkpoint gets the
// log_position it had, so a file sink recognises it; a reading whose position's line is gone
// from the log starts a new stream, so no number is reused for another line.
func TestLinePositionsSurviveAResume(t *testing.T) {
	sec := int64(time.Second)
	stamps := []int64{5, 5, 7, 6, 7, 7, 9, 8, 8, 12, 4 * sec, 4 * sec, 9 * sec}
	var log []logLine
	for i, ts := range stamps {
		log = append(log, logLine{ts: time.Unix(0, ts), line: []byte(fmt.Sprint("line ", i))})
	}
	first := numberLog(position{ID: "0123456789abcdef"}, log)
	if len(first) != len(log) {
		t.Fatalf("numbered %d lines of %d", len(first), len(log))
	}
	seen := map[string]bool{}
	for _, v := range first {
		if seen[v] {
			t.Fatalf("position %s given twice in one reading: %v", v, first)
		}
		seen[v] = true
	}
	// Checkpoints after every line, as the tailer takes them.
	pos := position{ID: "0123456789abcdef"}
	var occ occurrences
	for i, l := range log {
		pos.advance(l.ts.UnixNano(), occ.count(l.ts.UnixNano()))
		cp, err := decodePosition(pos.encode())
		if err != nil {
			t.Fatal(err)
		}
		again := numberLog(cp, log)
		if len(again) != len(log)-i-1 {
			t.Fatalf("resumed after line %d: %d lines delivered, want %d", i, len(again), len(log)-i-1)
		}
		for line, p := range again {
			if first[line] != p {
				t.Fatalf("resumed after line %d: %q numbered %s, first numbered %s", i, line, p, first[line])
			}
		}
	}
	// The checkpoint's own line rotated away: the lines kept are delivered under a new stream.
	cp := position{ID: "0123456789abcdef"}
	var o2 occurrences
	for _, l := range log[:3] {
		cp.advance(l.ts.UnixNano(), o2.count(l.ts.UnixNano()))
	}
	rotated := numberLog(cp, log[9:])
	if len(rotated) != len(log)-9 {
		t.Fatalf("after rotation: %d lines, want %d", len(rotated), len(log)-9)
	}
	for line, p := range rotated {
		if p == first[line] || seen[p] {
			t.Fatalf("after rotation %q reuses position %s", line, p)
		}
	}
}
