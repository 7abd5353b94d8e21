package ops

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
	"time"

	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/sdk"
)

// The override processor's audit records (plugins/detect/override).
const (
	eventOverrideEnabled  = "override_enabled"
	eventOverrideDisabled = "override_disabled"
	eventOverrideExpired  = "override_expired"
	// viaOperator is the "via" of an override an operator declared (tda override on, the
	// panel); anything else, a missing field included, was declared by an app's log line.
	viaOperator = "operator"
)

// overrides follows the override processors' audit records, per pipeline. The records come
// from Observe (never blocking the pipeline); a background writer persists the current
// overrides so that the CLI sees them while no agent runs.
type overrides struct {
	mu      sync.Mutex
	current map[string]OverrideInfo
	dirty   chan struct{}
}

func newOverrides() *overrides {
	return &overrides{current: map[string]OverrideInfo{}, dirty: make(chan struct{}, 1)}
}

// observe applies an audit record; it reports whether the record was an override change.
func (o *overrides) observe(pipeline string, e sdk.Event) bool {
	if e.Kind != sdk.KindAudit {
		return false
	}
	switch e.Field("event") {
	case eventOverrideEnabled:
		info := OverrideInfo{Actor: e.Field("actor"), Reason: e.Field("reason"), Origin: e.Field("origin"),
			Pipeline: pipeline, Via: e.Field("via")}
		info.Since, _ = time.Parse(time.RFC3339Nano, e.Field("since"))
		info.Until, _ = time.Parse(time.RFC3339Nano, e.Field("until"))
		if info.Origin == "" {
			info.Origin = e.Origin
		}
		if info.Until.IsZero() {
			return false
		}
		o.mu.Lock()
		o.current[pipeline] = info
		o.mu.Unlock()
	case eventOverrideDisabled, eventOverrideExpired:
		o.mu.Lock()
		delete(o.current, pipeline)
		o.mu.Unlock()
	default:
		return false
	}
	select {
	case o.dirty <- struct{}{}:
	default:
	}
	return true
}

// byOperator returns the operator's override in force at now that lasts longest. Only it
// stands in for an operator: it lifts "blocked" and lets migrations and restores go ahead.
// An override an app's log line declared suppresses alerts of overridable rules, nothing
// more: whoever can write a line into a log must not be able to lift the interlock.
func (o *overrides) byOperator(now time.Time) *OverrideInfo {
	return o.find(now, func(info OverrideInfo) bool { return info.Via == viaOperator })
}

// active returns the override in force at now that lasts longest.
func (o *overrides) active(now time.Time) *OverrideInfo {
	return o.find(now, func(OverrideInfo) bool { return true })
}

func (o *overrides) find(now time.Time, ok func(OverrideInfo) bool) *OverrideInfo {
	o.mu.Lock()
	defer o.mu.Unlock()
	var best *OverrideInfo
	names := make([]string, 0, len(o.current))
	for p := range o.current {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		info := o.current[p]
		if !now.Before(info.Until) || !ok(info) {
			continue
		}
		if best == nil || info.Until.After(best.Until) {
			c := info
			best = &c
		}
	}
	return best
}

func (o *overrides) snapshot() map[string]OverrideInfo {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[string]OverrideInfo, len(o.current))
	for k, v := range o.current {
		out[k] = v
	}
	return out
}

// load reads the persisted overrides.
func (o *overrides) load(store *state.Store) error {
	return store.View(func(tx *state.Tx) error {
		return tx.ForEach(bucketOverride, func(k, v []byte) error {
			var info OverrideInfo
			if err := json.Unmarshal(v, &info); err != nil {
				return nil // a corrupt record is not an override in force
			}
			o.mu.Lock()
			o.current[string(k)] = info
			o.mu.Unlock()
			return nil
		})
	})
}

// persist writes the current overrides whenever they change, until ctx ends.
func (o *overrides) persist(ctx context.Context, store *state.Store, onError func(error)) {
	write := func() {
		cur := o.snapshot()
		err := store.Update(func(tx *state.Tx) error {
			if err := tx.DeleteBucket(bucketOverride); err != nil {
				return err
			}
			for p, info := range cur {
				if err := putJSON(tx, bucketOverride, []byte(p), info); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil && onError != nil {
			onError(err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			select {
			case <-o.dirty:
				write()
			default:
			}
			return
		case <-o.dirty:
			write()
		}
	}
}
