package ops

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/tda-dev/tda/sdk"
)

// Trail reads the audit trail (the JSON-lines file of a jsonl sink) incrementally and keeps
// the latest record of every incident. It follows the file across the sink's rotation
// (path -> path.1) and truncation, skips malformed and oversized lines, and holds at most
// MaxIncidents incidents (the least recently updated go first).
type Trail struct {
	path string

	mu        sync.Mutex
	started   bool
	ino       uint64
	offset    int64
	skipping  bool // inside an oversized line: drop bytes until its newline
	incidents map[string]*Incident
	malformed int
	oversized int
}

// Limits of the trail reader.
const (
	MaxIncidents = 20000
	MaxLineBytes = 4 << 20
)

// NewTrail returns a reader of the audit trail at path (nothing is read until Refresh).
func NewTrail(path string) *Trail {
	return &Trail{path: path, incidents: map[string]*Incident{}}
}

// Path returns the file the trail reads.
func (t *Trail) Path() string { return t.path }

// Skipped returns how many lines were malformed and how many too long.
func (t *Trail) Skipped() (malformed, oversized int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.malformed, t.oversized
}

// Refresh reads what was appended since the last call. A missing file is an empty trail.
func (t *Trail) Refresh() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.started {
		t.started = true
		// The newest rotated file holds the recent past.
		if err := t.readWhole(t.path + ".1"); err != nil {
			return err
		}
	}
	st, err := os.Stat(t.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit trail: %w", err)
	}
	ino := inode(st)
	if t.ino != 0 && ino != t.ino {
		// Rotated: finish the old file (now path.1) if it is the one we were reading.
		if old, err := os.Stat(t.path + ".1"); err == nil && inode(old) == t.ino {
			if err := t.readFrom(t.path+".1", t.offset); err != nil {
				return err
			}
		}
		t.offset, t.skipping = 0, false
	}
	if st.Size() < t.offset {
		t.offset, t.skipping = 0, false // truncated
	}
	t.ino = ino
	if st.Size() == t.offset {
		return nil // nothing new
	}
	return t.readFrom(t.path, t.offset)
}

func (t *Trail) readWhole(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit trail: %w", err)
	}
	defer f.Close()
	_, err = t.consume(f)
	t.skipping = false
	return err
}

func (t *Trail) readFrom(path string, offset int64) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit trail: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return fmt.Errorf("audit trail: %w", err)
	}
	n, err := t.consume(f)
	t.offset = offset + n
	return err
}

// consume reads complete lines from r and returns how many bytes they (with their newlines)
// took; an unterminated tail is left for the next read.
func (t *Trail) consume(r io.Reader) (int64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var used int64
	var long []byte // a line longer than the reader's buffer, being assembled
	for {
		part, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			used += int64(len(long) + len(part))
			switch {
			case t.skipping:
				t.skipping = false
			case len(long)+len(part) > MaxLineBytes:
				t.oversized++
			case long != nil:
				t.line(append(long, part...))
			default:
				t.line(part)
			}
			long = nil
		case errors.Is(err, bufio.ErrBufferFull):
			if t.skipping {
				used += int64(len(part))
				continue
			}
			long = append(long, part...)
			if len(long) > MaxLineBytes {
				t.oversized++
				t.skipping = true
				used += int64(len(long))
				long = nil
			}
		case errors.Is(err, io.EOF):
			if t.skipping {
				used += int64(len(part))
			}
			return used, nil
		default:
			return used, fmt.Errorf("audit trail: %w", err)
		}
	}
}

// record is the part of an alert line the trail keeps (sdk.Event's canonical JSON).
type record struct {
	TS             string   `json:"ts"`
	Kind           string   `json:"kind"`
	Rule           string   `json:"rule"`
	Severity       string   `json:"severity"`
	State          string   `json:"state"`
	Key            string   `json:"key"`
	Count          int64    `json:"count"`
	Threshold      int64    `json:"threshold"`
	Window         string   `json:"window"`
	FirstSeen      string   `json:"first_seen"`
	LastSeen       string   `json:"last_seen"`
	Origin         string   `json:"origin"`
	Source         string   `json:"source"`
	Excerpt        []string `json:"excerpt"`
	Fingerprint    string   `json:"fingerprint"`
	SuppressedBy   string   `json:"suppressed_by"`
	OverrideReason string   `json:"override_reason"`
	Explanation    string   `json:"explanation"`
	Realert        int      `json:"realert"`
}

// kindAlert finds alert lines without decoding the others (audit records, logs).
var kindAlert = []byte(`"kind":"alert"`)

func (t *Trail) line(b []byte) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return
	}
	if !bytes.Contains(b, kindAlert) {
		if !json.Valid(b) {
			t.malformed++
		}
		return
	}
	var a record
	if err := json.Unmarshal(b, &a); err != nil {
		t.malformed++
		return
	}
	if a.Kind != sdk.KindAlert || a.Fingerprint == "" {
		return
	}
	in, ok := t.incidents[a.Fingerprint]
	if !ok {
		in = &Incident{Fingerprint: a.Fingerprint}
		t.incidents[a.Fingerprint] = in
	}
	in.Rule, in.Severity, in.State, in.Key = a.Rule, a.Severity, a.State, a.Key
	in.Count, in.Threshold, in.Window = a.Count, a.Threshold, a.Window
	if ts := parseTime(a.FirstSeen); !ts.IsZero() {
		in.FirstSeen = ts
	}
	if ts := parseTime(a.LastSeen); !ts.IsZero() {
		in.LastSeen = ts
	}
	in.Updated = parseTime(a.TS)
	in.Origin, in.Source = a.Origin, a.Source
	if len(a.Excerpt) > 0 {
		in.Excerpt = a.Excerpt
	}
	if a.Explanation != "" {
		in.Explanation = a.Explanation
	}
	in.SuppressedBy, in.OverrideReason, in.Realert = a.SuppressedBy, a.OverrideReason, a.Realert
	in.Records++
	if len(t.incidents) > MaxIncidents+MaxIncidents/4 {
		t.evict()
	}
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return ts.UTC()
}

// evict keeps the MaxIncidents most recently updated incidents, preferring to drop resolved
// ones.
func (t *Trail) evict() {
	all := make([]*Incident, 0, len(t.incidents))
	for _, in := range t.incidents {
		all = append(all, in)
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Open() != all[j].Open() {
			return all[i].Open()
		}
		return all[i].Updated.After(all[j].Updated)
	})
	for _, in := range all[MaxIncidents:] {
		delete(t.incidents, in.Fingerprint)
	}
}

// Incidents returns copies of every incident, most recently updated first.
func (t *Trail) Incidents() []Incident {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Incident, 0, len(t.incidents))
	for _, in := range t.incidents {
		c := *in
		c.Excerpt = append([]string(nil), in.Excerpt...)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Updated.Equal(out[j].Updated) {
			return out[i].Updated.After(out[j].Updated)
		}
		return out[i].Fingerprint < out[j].Fingerprint
	})
	return out
}

func inode(st os.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Ino
	}
	return 0
}
