package snapshot

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/tda-dev/tda/plugins/snapshot/retention"
	"github.com/tda-dev/tda/sdk"
)

// OpenIncidentsFile is the file, in the instance's data directory, that lists the incidents
// the snapshot sink has seen open and not yet resolved. Retention pins the last snapshot from
// before each (see retention.Options.Open); the sink's prunes and `tda snapshot list` and
// `prune` read the same file.
const OpenIncidentsFile = "open-incidents.json"

// MaxOpenIncidents bounds the incidents remembered; past it the ones that began first are
// forgotten (and the agent log says so).
const MaxOpenIncidents = 1000

// OpenIncident is one incident that pins its recovery snapshot.
type OpenIncident struct {
	Fingerprint string    `json:"fingerprint"`
	Rule        string    `json:"rule"`
	Began       time.Time `json:"began"`
}

// openIncidents is the set of open incidents of one snapshot target.
//
// Invariant: memory holds every incident noted, and the file holds what memory holds once
// note returns without error. An update writes a new file beside the old one and renames it
// over it, so a crash or a full disk leaves the old list whole, never a torn one. When the
// write fails, memory keeps the update (this process's prunes keep their pins) and the error
// goes back to the sink, whose batch the agent retries: the next note writes again.
type openIncidents struct {
	path string // empty: no data directory, memory only

	mu     sync.Mutex
	loaded bool
	dirty  bool // memory is ahead of the file
	byFP   map[string]OpenIncident
}

func newOpenIncidents(dataDir string) *openIncidents {
	oi := &openIncidents{byFP: map[string]OpenIncident{}}
	if dataDir != "" {
		oi.path = filepath.Join(dataDir, OpenIncidentsFile)
	}
	return oi
}

// loadLocked reads the file once. oi.mu is held.
func (oi *openIncidents) loadLocked() error {
	if oi.loaded || oi.path == "" {
		oi.loaded = true
		return nil
	}
	data, err := os.ReadFile(oi.path)
	if errors.Is(err, fs.ErrNotExist) {
		oi.loaded = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the open incidents %s: %w", oi.path, err)
	}
	var list []OpenIncident
	if err := json.Unmarshal(data, &list); err != nil {
		return fmt.Errorf("the open incidents file %s is damaged (%v): repair or remove it; until then nothing is pruned and the snapshot sink retries", oi.path, err)
	}
	for _, in := range list {
		if in.Fingerprint != "" {
			oi.byFP[in.Fingerprint] = in
		}
	}
	oi.loaded = true
	return nil
}

// list returns the open incidents, oldest first.
func (oi *openIncidents) list() ([]OpenIncident, error) {
	oi.mu.Lock()
	defer oi.mu.Unlock()
	if err := oi.loadLocked(); err != nil {
		return nil, err
	}
	return oi.sortedLocked(), nil
}

func (oi *openIncidents) sortedLocked() []OpenIncident {
	out := make([]OpenIncident, 0, len(oi.byFP))
	for _, in := range oi.byFP {
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Began.Equal(out[j].Began) {
			return out[i].Began.Before(out[j].Began)
		}
		return out[i].Fingerprint < out[j].Fingerprint
	})
	return out
}

// note records the alerts of a batch: a firing or suppressed alert of a severity in
// when_severity opens its incident (from its first event), a resolved one closes it. It
// returns the incidents forgotten to keep the bound.
func (oi *openIncidents) note(events []sdk.Event, severities []string) (forgotten int, err error) {
	oi.mu.Lock()
	defer oi.mu.Unlock()
	if err := oi.loadLocked(); err != nil {
		return 0, err
	}
	next := make(map[string]OpenIncident, len(oi.byFP))
	for k, v := range oi.byFP {
		next[k] = v
	}
	changed := false
	for i := range events {
		a := events[i].Alert
		if events[i].Kind != sdk.KindAlert || a == nil || a.Fingerprint == "" || !slices.Contains(severities, a.Severity) {
			continue
		}
		switch a.State {
		case sdk.StateFiring, sdk.StateSuppressed:
			began := a.FirstSeen
			if began.IsZero() {
				began = events[i].Time
			}
			if old, ok := next[a.Fingerprint]; ok && !began.Before(old.Began) {
				continue
			}
			next[a.Fingerprint] = OpenIncident{Fingerprint: a.Fingerprint, Rule: a.Rule, Began: began.UTC()}
			changed = true
		case sdk.StateResolved:
			if _, ok := next[a.Fingerprint]; ok {
				delete(next, a.Fingerprint)
				changed = true
			}
		}
	}
	if !changed && !oi.dirty {
		return 0, nil
	}
	oi.byFP = next
	list := oi.sortedLocked()
	if n := len(list) - MaxOpenIncidents; n > 0 {
		for _, in := range list[:n] {
			delete(next, in.Fingerprint)
		}
		forgotten, list = n, list[n:]
	}
	if err := oi.writeLocked(list); err != nil {
		oi.dirty = true
		return forgotten, err
	}
	oi.dirty = false
	return forgotten, nil
}

// writeLocked replaces the file with list. oi.mu is held.
func (oi *openIncidents) writeLocked(list []OpenIncident) error {
	if oi.path == "" {
		return nil
	}
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(oi.path), 0o700); err != nil {
		return fmt.Errorf("record the open incidents: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(oi.path), OpenIncidentsFile+".*")
	if err != nil {
		return fmt.Errorf("record the open incidents: %w", err)
	}
	_, werr := tmp.Write(append(data, '\n'))
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), oi.path)
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("record the open incidents in %s: %w", oi.path, werr)
	}
	return nil
}

// retentionIncidents turns the open incidents into what retention pins.
func retentionIncidents(list []OpenIncident) []retention.Incident {
	out := make([]retention.Incident, len(list))
	for i, in := range list {
		out[i] = retention.Incident{Name: in.Rule + " " + in.Fingerprint, Began: in.Began}
	}
	return out
}

// OpenIncidents returns the incidents that pin their recovery snapshot, oldest first.
func (m *Manager) OpenIncidents() ([]OpenIncident, error) { return m.incidents.list() }

// NoteAlerts records the incidents a batch of alerts opens and resolves (see
// OpenIncidentsFile).
func (m *Manager) NoteAlerts(events []sdk.Event) error {
	forgotten, err := m.incidents.note(events, m.settings.WhenSeverity)
	if forgotten > 0 {
		m.log.Warn("more open incidents than remembered; the ones that began first no longer pin a snapshot",
			"forgotten", forgotten, "max", MaxOpenIncidents)
	}
	return err
}

// retentionOptions are the options of retention.Apply for this target, with the open
// incidents' pins.
func (m *Manager) retentionOptions() (retention.Options, error) {
	list, err := m.incidents.list()
	if err != nil {
		return retention.Options{}, err
	}
	return retention.Options{DeleteFailed: m.prov.Capabilities().DeletesFailed, Open: retentionIncidents(list)}, nil
}
