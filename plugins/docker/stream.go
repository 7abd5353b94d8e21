package docker

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Docker's log copier cuts a line that does not end within this many bytes into several
// messages (the json-file driver stores each as its own record); the logs endpoint sends each
// message with its own timestamp prefix. The decoder joins them again.
const fragmentBytes = 16 << 10

// maxFrameBytes bounds one multiplexed frame; the daemon's frames hold one message (at most a
// fragment plus its timestamp), so anything near this size is a corrupt stream.
const maxFrameBytes = 64 << 20

// Stream kinds of the multiplexed log stream (github.com/docker/docker/pkg/stdcopy).
const (
	frameStdin     = 0
	frameStdout    = 1
	frameStderr    = 2
	frameSystemErr = 3
)

// logLine is one line read from a container's log.
type logLine struct {
	// ts is Docker's timestamp of the line (of its first fragment when it was cut). It is also
	// the line's identity for resuming.
	ts     time.Time
	stream string
	line   []byte
	// continued is set on a piece of a line longer than the decoder's maximum: the line goes on
	// in the next piece of the same stream.
	continued bool
	// occ numbers the lines sharing ts (1 for the first), set by the reader.
	occ int
	// daemonErr holds a message the daemon sent on its error stream ("Error grabbing logs: ...")
	// instead of a line.
	daemonErr string
}

// pendingLine is a line whose fragments have not all arrived yet.
type pendingLine struct {
	active bool
	ts     time.Time
	buf    []byte
}

// decoder turns the body of GET /containers/{id}/logs?timestamps=1 into lines: it demultiplexes
// stdout and stderr (or reads a TTY container's raw stream), strips the timestamp prefix of each
// message and re-joins the fragments of long lines.
type decoder struct {
	r       *bufio.Reader
	tty     bool
	maxLine int
	// pending holds a partly received line per stream (index frameStdout, frameStderr).
	pending [3]pendingLine
	// lastTS is the timestamp of the last message, used for a message whose prefix is missing.
	lastTS time.Time
	frame  []byte
	out    []logLine
	hdr    [8]byte
	// Raw (TTY) parser state.
	rawState int
	rawHead  []byte
	raw      []byte
	rawTS    time.Time
	rawLimit int
}

func newDecoder(r io.Reader, tty bool, maxLine int) *decoder {
	return &decoder{r: bufio.NewReaderSize(r, 32<<10), tty: tty, maxLine: maxLine}
}

// next returns the next line. At the end of the stream it returns the lines still pending
// (a last line without newline) and then io.EOF.
func (d *decoder) next() (logLine, error) {
	for len(d.out) == 0 {
		var err error
		if d.tty {
			err = d.readRaw()
		} else {
			err = d.readFrame()
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				d.flushPending()
				if len(d.out) > 0 {
					break
				}
			}
			return logLine{}, err
		}
	}
	l := d.out[0]
	d.out[0] = logLine{}
	d.out = d.out[1:]
	if len(d.out) == 0 {
		d.out = d.out[:0:0]
	}
	return l, nil
}

// buffered reports whether lines or bytes already read from the stream are waiting, so the
// next call of next does not wait for the daemon.
func (d *decoder) buffered() bool {
	return len(d.out) > 0 || d.r.Buffered() > 0
}

// pendingSince returns the timestamp of the oldest line still being assembled, if any.
func (d *decoder) pendingSince() (time.Time, bool) {
	var min time.Time
	found := false
	for i := range d.pending {
		p := &d.pending[i]
		if p.active && (!found || p.ts.Before(min)) {
			min, found = p.ts, true
		}
	}
	return min, found
}

func (d *decoder) flushPending() {
	for _, k := range []int{frameStdout, frameStderr} {
		p := &d.pending[k]
		if p.active {
			d.emit(k, p.buf, p.ts)
			*p = pendingLine{}
		}
	}
}

func streamName(k int) string {
	if k == frameStderr {
		return "stderr"
	}
	return "stdout"
}

// emit queues a line, cutting it into pieces of maxLine bytes when it is longer.
func (d *decoder) emit(k int, line []byte, ts time.Time) {
	for len(line) > d.maxLine {
		piece := append([]byte(nil), line[:d.maxLine]...)
		d.out = append(d.out, logLine{ts: ts, stream: streamName(k), line: piece, continued: true})
		line = line[d.maxLine:]
	}
	d.out = append(d.out, logLine{ts: ts, stream: streamName(k), line: append([]byte(nil), line...)})
}

// message handles one log message "TIMESTAMP SP CONTENT" of stream k. complete reports whether
// the content ended the line (it ended with a newline, which is not part of content).
func (d *decoder) message(k int, ts time.Time, content []byte, complete bool) {
	p := &d.pending[k]
	if !complete {
		if !p.active {
			*p = pendingLine{active: true, ts: ts, buf: p.buf[:0]}
		}
		p.buf = append(p.buf, content...)
		// A line longer than the maximum leaves in pieces as it arrives, so memory stays bounded.
		for len(p.buf) >= d.maxLine {
			piece := append([]byte(nil), p.buf[:d.maxLine]...)
			d.out = append(d.out, logLine{ts: p.ts, stream: streamName(k), line: piece, continued: true})
			rest := copy(p.buf, p.buf[d.maxLine:])
			p.buf = p.buf[:rest]
		}
		return
	}
	if p.active {
		p.buf = append(p.buf, content...)
		d.emit(k, p.buf, p.ts)
		buf := p.buf[:0]
		if cap(buf) > 4*fragmentBytes {
			buf = nil
		}
		*p = pendingLine{buf: buf}
		return
	}
	d.emit(k, content, ts)
}

// readFrame reads one frame of the multiplexed stream: [stream, 0, 0, 0, size(4, big endian)].
func (d *decoder) readFrame() error {
	if _, err := io.ReadFull(d.r, d.hdr[:]); err != nil {
		return err
	}
	k := int(d.hdr[0])
	size := binary.BigEndian.Uint32(d.hdr[4:])
	if k > frameSystemErr || size > maxFrameBytes {
		return fmt.Errorf("corrupt log stream: frame header % x", d.hdr)
	}
	if cap(d.frame) < int(size) {
		d.frame = make([]byte, size)
	}
	payload := d.frame[:size]
	if _, err := io.ReadFull(d.r, payload); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	switch k {
	case frameStdin:
		return nil
	case frameSystemErr:
		d.out = append(d.out, logLine{daemonErr: string(bytes.TrimRight(payload, "\n"))})
		return nil
	}
	for len(payload) > 0 {
		ts, rest, ok := cutTimestamp(payload)
		if !ok {
			ts, rest = d.lastTS, payload
		}
		d.lastTS = ts
		// One frame holds one message; should a daemon ever pack several, each line after the
		// first carries its own timestamp prefix.
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			d.message(k, ts, rest, false)
			return nil
		}
		d.message(k, ts, rest[:i], true)
		payload = rest[i+1:]
	}
	return nil
}

// Raw (TTY) stream parser states.
const (
	rawPrefix   = iota // reading a message's "TIMESTAMP " prefix
	rawContent         // reading a message's content
	rawBoundary        // a message reached fragmentBytes: is the next one its continuation?
)

// readRaw feeds the next chunk of a TTY container's raw stream to the parser. Without frames,
// the end of a fragment is known only by its length: a message whose content reaches
// fragmentBytes without a newline and is followed by a timestamp prefix continues in that next
// message.
func (d *decoder) readRaw() error {
	if _, err := d.r.Peek(1); err != nil {
		d.endRaw()
		return err
	}
	chunk, _ := d.r.Peek(d.r.Buffered())
	d.feedRaw(chunk)
	_, _ = d.r.Discard(len(chunk))
	return nil
}

func (d *decoder) feedRaw(chunk []byte) {
	for len(chunk) > 0 {
		switch d.rawState {
		case rawPrefix, rawBoundary:
			// Collect up to the first space, at most a timestamp's length.
			i := bytes.IndexByte(chunk, ' ')
			room := maxPrefixBytes - len(d.rawHead)
			if i < 0 || i >= room {
				n := min(len(chunk), room)
				d.rawHead = append(d.rawHead, chunk[:n]...)
				chunk = chunk[n:]
				if len(d.rawHead) < maxPrefixBytes && !bytes.ContainsRune(d.rawHead, '\n') {
					continue // wait for more
				}
				d.rawNoPrefix()
				continue
			}
			d.rawHead = append(d.rawHead, chunk[:i]...)
			chunk = chunk[i+1:]
			ts, ok := parseTimestamp(d.rawHead)
			if !ok {
				d.rawHead = append(d.rawHead, ' ')
				d.rawNoPrefix()
				continue
			}
			if d.rawState == rawBoundary {
				// Docker's cut: the fragment read so far is a partial message.
				d.message(frameStdout, d.rawTS, d.raw, false)
			} else if len(d.raw) > 0 {
				d.message(frameStdout, d.rawTS, d.raw, false)
			}
			d.raw, d.rawHead = d.raw[:0], d.rawHead[:0]
			d.rawTS, d.lastTS = ts, ts
			d.rawState, d.rawLimit = rawContent, fragmentBytes
		case rawContent:
			want := len(chunk)
			if d.rawLimit > 0 {
				want = min(want, d.rawLimit-len(d.raw))
			}
			if i := bytes.IndexByte(chunk[:want], '\n'); i >= 0 {
				d.raw = append(d.raw, chunk[:i]...)
				chunk = chunk[i+1:]
				d.message(frameStdout, d.rawTS, trimCR(d.raw), true)
				d.raw = d.raw[:0]
				d.rawState = rawPrefix
				continue
			}
			d.raw = append(d.raw, chunk[:want]...)
			chunk = chunk[want:]
			if d.rawLimit > 0 && len(d.raw) >= d.rawLimit {
				d.rawState = rawBoundary
			} else if len(d.raw) >= d.maxLine {
				d.message(frameStdout, d.rawTS, d.raw, false)
				d.raw = d.raw[:0]
			}
		}
	}
}

// rawNoPrefix handles bytes collected where a prefix was expected but that are not one: they
// are content (of the message being continued, or of a new one with the previous time).
func (d *decoder) rawNoPrefix() {
	head := d.rawHead
	d.rawHead = nil
	if d.rawState == rawPrefix {
		d.rawTS = d.lastTS
		d.raw = d.raw[:0]
	}
	d.rawState, d.rawLimit = rawContent, 0
	d.feedRaw(head)
}

// endRaw completes what the raw parser holds when the stream ends.
func (d *decoder) endRaw() {
	if len(d.rawHead) > 0 {
		d.rawHead = append(d.rawHead, '\n')
		d.rawNoPrefix()
	}
	if d.rawState != rawPrefix {
		d.message(frameStdout, d.rawTS, trimCR(d.raw), false)
		d.raw = d.raw[:0]
		d.rawState = rawPrefix
	}
}

// maxPrefixBytes is the longest timestamp prefix looked for ("2006-01-02T15:04:05.999999999+07:00").
const maxPrefixBytes = 40

func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}

// timestampLayout is the daemon's prefix (jsonmessage.RFC3339NanoFixed, always UTC from the
// json-file and local drivers).
const timestampLayout = "2006-01-02T15:04:05.000000000Z07:00"

// cutTimestamp splits "TIMESTAMP SP rest" into the time and rest.
func cutTimestamp(b []byte) (time.Time, []byte, bool) {
	i := bytes.IndexByte(b, ' ')
	if i <= 0 || i > 40 {
		return time.Time{}, b, false
	}
	ts, ok := parseTimestamp(b[:i])
	if !ok {
		return time.Time{}, b, false
	}
	return ts, b[i+1:], true
}

// parseTimestamp parses the daemon's timestamp prefix. The fixed-width UTC form the daemon
// writes is parsed by hand (it is on the path of every line); anything else goes through
// time.Parse.
func parseTimestamp(b []byte) (time.Time, bool) {
	if len(b) == 30 && b[4] == '-' && b[7] == '-' && b[10] == 'T' && b[13] == ':' && b[16] == ':' &&
		b[19] == '.' && b[29] == 'Z' {
		year, ok1 := digits(b[0:4])
		month, ok2 := digits(b[5:7])
		day, ok3 := digits(b[8:10])
		hour, ok4 := digits(b[11:13])
		minute, ok5 := digits(b[14:16])
		sec, ok6 := digits(b[17:19])
		nsec, ok7 := digits(b[20:29])
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && month >= 1 && month <= 12 && day >= 1 &&
			day <= 31 && hour < 24 && minute < 60 && sec < 61 {
			t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
			if t.Day() == day {
				return t, true
			}
		}
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
