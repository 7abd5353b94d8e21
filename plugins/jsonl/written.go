package jsonl

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"

	"github.com/tda-dev/tda/plugins/internal/logpos"
	"github.com/tda-dev/tda/sdk"
)

// Bounds of what the sink remembers of its own output. A replay after a crash sends again
// what followed the agent's last commit (about one checkpoint interval), so the newest
// records are what matter; the agent's own delivered-alert record covers older ones.
const (
	scanWindow = 8 << 20 // bytes read back from the end of the output on start
	maxAlerts  = 1 << 16 // alert delivery keys remembered
	maxOrigins = 1 << 14 // origins whose last log_position is remembered
)

// written remembers which records the output holds that the agent may send again after a
// crash: alert records by delivery key (fingerprint, state, reminder number) and, per origin,
// the log_position of the last line. It is rebuilt from the file itself on start, so it can
// never disagree with what is on disk.
type written struct {
	alerts map[string]struct{}
	order  []string // alert keys, oldest first, for eviction
	head   int
	marks  map[string]logpos.Mark
}

func newWritten() *written {
	return &written{alerts: map[string]struct{}{}, marks: map[string]logpos.Mark{}}
}

// record is the part of an output line the sink reads back.
type record struct {
	Kind        string `json:"kind"`
	Origin      string `json:"origin"`
	State       string `json:"state"`
	Fingerprint string `json:"fingerprint"`
	Realert     int    `json:"realert"`
	Fields      struct {
		Position string `json:"log_position"`
	} `json:"fields"`
}

// Only lines holding one of these can matter to a replay; the others are not decoded.
var (
	alertKind  = []byte(`"kind":"alert"`)
	positioned = []byte(`"` + logpos.Field + `":`)
)

// scanFiles reads back the newest scanWindow bytes of output: the end of the previous file
// (path.1) when the current one is shorter than that, then the current one up to size.
func (w *written) scanFiles(path string, f *os.File, size int64) error {
	if size < scanWindow {
		if old, err := os.Open(path + ".1"); err == nil {
			st, serr := old.Stat()
			if serr == nil {
				serr = w.scan(old, st.Size(), scanWindow-size)
			}
			old.Close()
			if serr != nil {
				return serr
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return w.scan(f, size, scanWindow)
}

// scan reads the complete lines among the last window bytes of r's first size bytes.
func (w *written) scan(r io.ReaderAt, size, window int64) error {
	start := max(size-window, 0)
	br := bufio.NewReaderSize(io.NewSectionReader(r, start, size-start), 256<<10)
	if start > 0 {
		// The window starts inside a line: skip to the next one.
		for {
			_, err := br.ReadSlice('\n')
			if err == nil {
				break
			}
			if !errors.Is(err, bufio.ErrBufferFull) {
				return ignoreEOF(err)
			}
		}
	}
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return ignoreEOF(err)
		}
		if bytes.Contains(line, alertKind) || bytes.Contains(line, positioned) {
			var rec record
			if json.Unmarshal(line, &rec) == nil {
				w.noteRecord(&rec)
			}
		}
		line = line[:0]
	}
}

func ignoreEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

func (w *written) noteRecord(r *record) {
	switch r.Kind {
	case sdk.KindAlert:
		a := sdk.Alert{Fingerprint: r.Fingerprint, State: r.State, Realert: r.Realert}
		w.addAlert(a.DeliveryKey())
	case sdk.KindLog:
		if stream, seq, ok := logpos.Parse(r.Fields.Position); ok {
			w.setMark(r.Origin, logpos.Mark{Stream: stream, Seq: seq})
		}
	}
}

// has reports whether e is already in the output, given the marks of the batch being written.
func (w *written) has(e *sdk.Event, batchAlerts map[string]struct{}, batchMarks map[string]logpos.Mark) bool {
	switch {
	case e.Kind == sdk.KindAlert && e.Alert != nil:
		key := e.Alert.DeliveryKey()
		if _, ok := w.alerts[key]; ok {
			return true
		}
		if _, ok := batchAlerts[key]; ok {
			return true
		}
		batchAlerts[key] = struct{}{}
	case e.Kind == sdk.KindLog:
		stream, seq, ok := logpos.Parse(e.Field(logpos.Field))
		if !ok {
			return false
		}
		mark, ok := batchMarks[e.Origin]
		if !ok {
			mark = w.marks[e.Origin]
		}
		if mark.Written(stream, seq) {
			return true
		}
		batchMarks[e.Origin] = logpos.Mark{Stream: stream, Seq: seq}
	}
	return false
}

// commit remembers what a written batch added.
func (w *written) commit(batchAlerts map[string]struct{}, batchMarks map[string]logpos.Mark) {
	for k := range batchAlerts {
		w.addAlert(k)
	}
	for origin, m := range batchMarks {
		w.setMark(origin, m)
	}
}

func (w *written) addAlert(key string) {
	if _, ok := w.alerts[key]; ok {
		return
	}
	if len(w.order) < maxAlerts {
		w.order = append(w.order, key)
	} else {
		delete(w.alerts, w.order[w.head])
		w.order[w.head] = key
		w.head = (w.head + 1) % maxAlerts
	}
	w.alerts[key] = struct{}{}
}

// setMark records an origin's last position. Past maxOrigins the marks start over: lines of
// a forgotten origin sent again are written again, never skipped.
func (w *written) setMark(origin string, m logpos.Mark) {
	if _, ok := w.marks[origin]; !ok && len(w.marks) >= maxOrigins {
		clear(w.marks)
	}
	w.marks[origin] = m
}
