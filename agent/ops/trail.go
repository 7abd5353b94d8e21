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
	// changes are what the trail learnt about each incident since takeChanges last ran:
	// bounded by the incidents kept, and their entities by maxPendingEntities overall.
	changes         map[string]*trailChange
	pendingEntities int
}

// trailChange is what the trail learnt about one incident since the last takeChanges: a new
// alert record (Alert), the newest count of its updates, and the entities they named.
type trailChange struct {
	Fingerprint string
	Alert       bool
	Count       int64
	// CountAt is the time of the update that carried Count; LastSeen the newest update's
	// (updates are dated by the incident's newest event).
	CountAt  time.Time
	LastSeen time.Time
	Entities *entitySet
}

// maxPendingEntities bounds the entity values the trail holds between two takeChanges over
// all incidents; beyond it an incident's entities are marked truncated.
const maxPendingEntities = 100000

// Limits of the trail reader.
const (
	MaxIncidents = 20000
	MaxLineBytes = 4 << 20
)

// NewTrail returns a reader of the audit trail at path (nothing is read until Refresh).
func NewTrail(path string) *Trail {
	return &Trail{path: path, incidents: map[string]*Incident{}, changes: map[string]*trailChange{}}
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
	return t.readAt(f, offset)
}

// readAt consumes r from offset and moves t.offset past the complete lines it read: an
// unterminated tail is read again, whole, by the next call. Everything Refresh makes of the
// file's content goes through it (and consume).
func (t *Trail) readAt(r io.ReadSeeker, offset int64) error {
	if _, err := r.Seek(offset, io.SeekStart); err != nil {
		return fmt.Errorf("audit trail: %w", err)
	}
	n, err := t.consume(r)
	t.offset = offset + n
	return err
}

// readBufferBytes is the reader's buffer: most trail lines fit in it, and a longer one (up to
// MaxLineBytes) is assembled from several reads. Each read of the trail allocates it, so it is
// kept small.
const readBufferBytes = 8 << 10

// consume reads complete lines from r and returns how many bytes they (with their newlines)
// took; an unterminated tail is left for the next read.
func (t *Trail) consume(r io.Reader) (int64, error) {
	br := bufio.NewReaderSize(r, readBufferBytes)
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

// kindAlert finds alert lines without decoding the others (audit records, logs);
// incidentUpdate finds the rules' incident updates among the audit records.
var (
	kindAlert      = []byte(`"kind":"alert"`)
	incidentUpdate = []byte(`"` + sdk.EventIncidentUpdate + `"`)
)

// auditRecord is the part of an audit line an incident update needs.
type auditRecord struct {
	TS     string            `json:"ts"`
	Kind   string            `json:"kind"`
	Fields map[string]string `json:"fields"`
}

func (t *Trail) line(b []byte) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return
	}
	if !bytes.Contains(b, kindAlert) {
		if bytes.Contains(b, incidentUpdate) {
			t.update(b)
			return
		}
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
	// The count never goes back: a resolved record carries the window's peak, updates the
	// live total, and the total is at least the peak.
	in.Count, in.Threshold, in.Window, in.alertCount = max(in.Count, a.Count), a.Threshold, a.Window, a.Count
	if a.State == sdk.StateFiring {
		in.Fired = true
	}
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
	t.change(a.Fingerprint).Alert = true
	if len(t.incidents) > MaxIncidents+MaxIncidents/4 {
		t.evict()
	}
}

func (t *Trail) change(fp string) *trailChange {
	c, ok := t.changes[fp]
	if !ok {
		c = &trailChange{Fingerprint: fp}
		t.changes[fp] = c
	}
	return c
}

// update takes an incident update: the count moves the incident's count on, the entities
// wait for takeChanges.
func (t *Trail) update(b []byte) {
	var r auditRecord
	if err := json.Unmarshal(b, &r); err != nil {
		t.malformed++
		return
	}
	u, ok := sdk.ParseIncidentUpdate(&sdk.Event{Kind: r.Kind, Fields: r.Fields})
	if !ok {
		return
	}
	at := parseTime(r.TS) // the time of the incident's newest event
	if in, ok := t.incidents[u.Fingerprint]; ok {
		in.Count = max(in.Count, u.Count)
		if at.After(in.LastSeen) {
			in.LastSeen = at
		}
	} else if len(t.changes) >= MaxIncidents+MaxIncidents/4 {
		return // an update of an incident the trail does not hold, and no room to wait
	}
	c := t.change(u.Fingerprint)
	if u.Count > c.Count {
		c.Count, c.CountAt = u.Count, at
	}
	if at.After(c.LastSeen) {
		c.LastSeen = at
	}
	if len(u.Entities) == 0 && !u.Truncated {
		return
	}
	if c.Entities == nil {
		c.Entities = newEntitySet(Entities{})
	}
	if u.Truncated {
		c.Entities.truncated = true
	}
	for f, vals := range u.Entities {
		if t.pendingEntities >= maxPendingEntities {
			c.Entities.truncated = true
			break
		}
		before := c.Entities.total
		c.Entities.add(f, vals)
		t.pendingEntities += c.Entities.total - before
	}
}

// takeChanges returns what the trail learnt since the last call, sorted by fingerprint, and
// forgets it.
func (t *Trail) takeChanges() []trailChange {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]trailChange, 0, len(t.changes))
	for _, c := range t.changes {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Fingerprint < out[j].Fingerprint })
	clear(t.changes)
	t.pendingEntities = 0
	return out
}

// incident returns a copy of one incident the trail holds.
func (t *Trail) incident(fp string) (Incident, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	in, ok := t.incidents[fp]
	if !ok {
		return Incident{}, false
	}
	c := *in
	c.Excerpt = append([]string(nil), in.Excerpt...)
	return c, true
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
		if c, ok := t.changes[in.Fingerprint]; ok && c.Entities != nil {
			t.pendingEntities -= c.Entities.total
		}
		delete(t.changes, in.Fingerprint)
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
