// Package logpos is the contract between a source that can number its lines and the file
// sinks that use the numbers to never write a line twice: a source puts the field
// "log_position" on each log event, "<stream>:<seq>", where stream names one unbroken reading
// of one origin (for a container: its short ID and the reading's epoch) and seq counts the
// lines of that stream from 1, in the order they are delivered. A source gives a line the same
// position every time it delivers it again (after a crash, the lines since its last committed
// checkpoint), and starts a new stream whenever it cannot promise that.
package logpos

import (
	"strconv"
	"strings"
)

// Field is the event field holding a line's position.
const Field = "log_position"

// Format returns the field's value for the seq-th line of stream.
func Format(stream string, seq uint64) string {
	return stream + ":" + strconv.FormatUint(seq, 10)
}

// Parse splits a field value; ok is false when it is not "<non-empty stream>:<seq ≥ 1>".
func Parse(v string) (stream string, seq uint64, ok bool) {
	i := strings.LastIndexByte(v, ':')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.ParseUint(v[i+1:], 10, 64)
	if err != nil || n == 0 {
		return "", 0, false
	}
	return v[:i], n, true
}

// Mark is the position of the last line a sink wrote for one origin.
type Mark struct {
	Stream string `json:"stream"`
	Seq    uint64 `json:"seq"`
}

// Written reports whether a line at (stream, seq) was written already: it belongs to the
// mark's stream and does not come after it. A line of another stream never was.
func (m Mark) Written(stream string, seq uint64) bool {
	return m.Stream != "" && stream == m.Stream && seq <= m.Seq
}
