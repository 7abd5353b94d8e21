package docker

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Checkpoint keys. A container's position is stored under its name, so that a container
// re-created under the same name (with a new ID) is recognised as the successor.
const (
	containerKeyPrefix = "container/"
	baselineKey        = "baseline"
)

func containerKey(name string) string { return containerKeyPrefix + name }

// position is where reading a container's log stands: the line delivered last. Lines are
// identified by Docker's timestamp (nanoseconds) and, for lines sharing one timestamp, by their
// rank among them in the log's order.
type position struct {
	// ID is the container the position belongs to.
	ID string `json:"id"`
	// TS is the timestamp of the last line delivered (Unix nanoseconds), or, when N is 0, the
	// time after which every line is wanted.
	TS int64 `json:"ts"`
	// N is how many lines stamped exactly TS were delivered so far (the last one delivered is
	// the Nth); 0 means none: deliver every line stamped after TS.
	N int `json:"n"`
	// From is the timestamp of the oldest line still being assembled from fragments when the
	// position was taken; reading resumes there so that line arrives whole. 0 when none.
	From int64 `json:"from,omitempty"`
	// Epoch and Seq number the lines for the file sinks (package logpos). Epoch names a
	// reading by its first line (Docker's timestamp in base 36 and the line's rank among those
	// so stamped); Seq is the number of the last line delivered in it, counting from 1 in the
	// log's order. The log's order after a given line never changes, so a reading that starts
	// at the same line numbers every line the same way, and a line delivered again after a
	// crash gets the number it had. Whatever breaks that (the position's own line gone from
	// the log) clears Epoch: the next line starts a new reading.
	Epoch string `json:"epoch,omitempty"`
	Seq   uint64 `json:"seq,omitempty"`
}

// stream is the log_position stream of the position's reading.
func (p position) stream() string {
	return shortID(p.ID) + "." + p.Epoch
}

func (p position) encode() []byte {
	b, _ := json.Marshal(p)
	return b
}

func decodePosition(b []byte) (position, error) {
	var p position
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("checkpoint %q: %w", b, err)
	}
	if p.ID == "" || p.TS < 0 || p.N < 0 {
		return p, fmt.Errorf("checkpoint %q: incomplete", b)
	}
	return p, nil
}

// since returns the Unix second to pass as the logs endpoint's `since`: one second before the
// earliest line that may still be needed. The endpoint's `since` is inclusive and whole seconds
// are all every daemon version accepts; the resume filter drops the lines already delivered.
func (p position) since() string {
	from := p.TS
	if p.From > 0 && p.From < from {
		from = p.From
	}
	if from <= 0 {
		return ""
	}
	return fmt.Sprint(from/int64(time.Second) - 1)
}

// advance moves the position past a delivered line stamped ts, the occ-th line so stamped,
// and numbers it; the first line of a reading names its epoch.
func (p *position) advance(ts int64, occ int) {
	p.TS, p.N = ts, occ
	if p.Epoch == "" {
		p.Epoch, p.Seq = strconv.FormatInt(ts, 36)+"."+strconv.Itoa(occ), 0
	}
	p.Seq++
}

// occurrenceWindow is how many distinct recent timestamps an occurrences counter remembers:
// lines sharing a timestamp are never far apart in a log.
const occurrenceWindow = 64

// occurrences numbers the lines of a log that share a timestamp: the first line stamped T is
// occurrence 1, the next one stamped T (adjacent or not) occurrence 2, and so on.
type occurrences struct {
	ts   [occurrenceWindow]int64
	n    [occurrenceWindow]int
	next int
	used int
}

// count returns the occurrence number of a line stamped ts and counts it.
func (o *occurrences) count(ts int64) int {
	for i := 0; i < o.used; i++ {
		j := (o.next - 1 - i + occurrenceWindow) % occurrenceWindow
		if o.ts[j] == ts {
			o.n[j]++
			return o.n[j]
		}
	}
	o.ts[o.next], o.n[o.next] = ts, 1
	o.next = (o.next + 1) % occurrenceWindow
	o.used = min(o.used+1, occurrenceWindow)
	return 1
}

// seekGiveUp is how far past the position a line may be stamped before the resume filter
// concludes that the position's own line is no longer in the log (rotated away) and delivers
// from there.
const seekGiveUp = 2 * time.Second

// resumeFilter drops the lines a re-read of a container's log returns that were delivered
// before. With N > 0 it looks for the position's own line (the Nth stamped TS) and delivers
// everything after it in the log's order, which is exact even when the log's timestamps are
// not in order (stdout and stderr are stamped by two goroutines in the daemon). With N == 0 it
// delivers the lines stamped after TS.
type resumeFilter struct {
	ts      int64
	n       int
	seeking bool
	// held are lines stamped after the position met before the position's own line; they were
	// delivered before it unless that line is gone from the log.
	held []logLine
	// lost is set when the position's own line was not found: what follows is not the
	// continuation of the reading the position numbered.
	lost bool
}

func newResumeFilter(p position) *resumeFilter {
	return &resumeFilter{ts: p.TS, n: p.N, seeking: p.N > 0}
}

// push feeds the next line of the re-read log, the occ-th stamped l.ts, and returns the
// lines to deliver.
func (f *resumeFilter) push(l logLine, occ int, out []logLine) []logLine {
	ts := l.ts.UnixNano()
	if !f.seeking {
		if f.n == 0 && ts <= f.ts {
			return out
		}
		f.n = -1 // past the position: deliver everything from here on
		return append(out, l)
	}
	switch {
	case ts == f.ts:
		if occ >= f.n {
			f.seeking, f.held, f.n = false, nil, -1
		}
		return out
	case ts < f.ts:
		return out
	case ts > f.ts+int64(seekGiveUp):
		out = append(out, f.held...)
		f.seeking, f.held, f.n, f.lost = false, nil, -1, true
		return append(out, l)
	default:
		f.held = append(f.held, l)
		return out
	}
}

// end is called when the re-read stream ends; it returns held lines when the position's own
// line never came.
func (f *resumeFilter) end(out []logLine) []logLine {
	if f.seeking {
		if len(f.held) > 0 {
			f.lost = true
		}
		out = append(out, f.held...)
		f.held = nil
	}
	return out
}

// checkpointName returns the container name of a checkpoint key.
func checkpointName(key string) (string, bool) {
	return strings.CutPrefix(key, containerKeyPrefix)
}
