package runtime

import (
	"encoding/binary"
	"sort"
	"sync"
	"time"

	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
)

// deliveredKeep is how many delivered alerts a sink remembers (in memory and in the store):
// enough to cover what a restart re-reads since the last checkpoint and what the durable
// queue resends, bounded so that a long run keeps flat memory.
const deliveredKeep = 20000

// deliveredRetention is how long delivered-alert records are kept at most.
const deliveredRetention = 30 * 24 * time.Hour

// deliveredSet remembers the alerts a sink delivered, newest deliveredKeep of them, in the
// state store (bucket ["delivered", addr]: delivery key -> time), so a replay after a restart
// never pages twice. Invariant: seen and the ring hold the same keys, at most keep; the ring
// is circular, ring[next] is the oldest once it is full; the store holds the same keys after
// every committed record.
type deliveredSet struct {
	store *state.Store
	path  []string
	keep  int

	mu   sync.Mutex
	seen map[string]bool
	ring []string
	next int
}

func newDeliveredSet(store *state.Store, addr string) *deliveredSet {
	return &deliveredSet{store: store, path: []string{"delivered", addr}, keep: deliveredKeep, seen: map[string]bool{}}
}

// load reads the records, keeps the newest and deletes the others and the expired.
func (d *deliveredSet) load() error {
	if d.store == nil {
		return nil
	}
	type rec struct {
		key string
		at  int64
	}
	cutoff := time.Now().Add(-deliveredRetention).UnixNano()
	return d.store.Update(func(tx *state.Tx) error {
		var recs []rec
		var drop []string
		err := tx.ForEach(d.path, func(k, v []byte) error {
			var at int64
			if len(v) == 8 {
				at = int64(binary.BigEndian.Uint64(v))
			}
			if at < cutoff {
				drop = append(drop, string(k))
				return nil
			}
			recs = append(recs, rec{string(k), at})
			return nil
		})
		if err != nil {
			return err
		}
		sort.Slice(recs, func(i, j int) bool { return recs[i].at < recs[j].at })
		if len(recs) > d.keep {
			for _, r := range recs[:len(recs)-d.keep] {
				drop = append(drop, r.key)
			}
			recs = recs[len(recs)-d.keep:]
		}
		for _, k := range drop {
			if err := tx.Delete(d.path, []byte(k)); err != nil {
				return err
			}
		}
		keys := make([]string, len(recs))
		for i, r := range recs {
			keys[i] = r.key
		}
		d.record(keys)
		return nil
	})
}

// filter drops alerts already delivered.
func (d *deliveredSet) filter(b *host.Batch) *host.Batch {
	if b.KindCounts()[sdk.KindAlert] == 0 {
		return b
	}
	events := b.Events()
	d.mu.Lock()
	defer d.mu.Unlock()
	dup := false
	for i := range events {
		if a := events[i].Alert; a != nil && d.seen[a.DeliveryKey()] {
			dup = true
			break
		}
	}
	if !dup {
		return b
	}
	out := make([]sdk.Event, 0, len(events))
	for i := range events {
		if a := events[i].Alert; a != nil && d.seen[a.DeliveryKey()] {
			continue
		}
		out = append(out, events[i])
	}
	return host.NewBatch(out)
}

// keys returns the delivery keys of a batch's alerts.
func deliveryKeys(b *host.Batch) []string {
	if b == nil || b.KindCounts()[sdk.KindAlert] == 0 {
		return nil
	}
	var keys []string
	events := b.Events()
	for i := range events {
		if a := events[i].Alert; a != nil && events[i].Kind == sdk.KindAlert {
			keys = append(keys, a.DeliveryKey())
		}
	}
	return keys
}

// record marks keys as delivered in memory and returns the keys it evicted; put writes
// the same change into a transaction. The caller records in the store in the transaction
// that also removes the delivered entries from the queue, so a kill between the two can
// never happen.
func (d *deliveredSet) record(keys []string) (evicted []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, k := range keys {
		if d.seen[k] {
			continue
		}
		d.seen[k] = true
		if len(d.ring) < d.keep {
			d.ring = append(d.ring, k)
			continue
		}
		old := d.ring[d.next]
		delete(d.seen, old)
		evicted = append(evicted, old)
		d.ring[d.next] = k
		d.next = (d.next + 1) % d.keep
	}
	return evicted
}

func (d *deliveredSet) put(tx *state.Tx, keys, evicted []string) error {
	now := binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))
	for _, k := range keys {
		if err := tx.Put(d.path, []byte(k), now); err != nil {
			return err
		}
	}
	for _, k := range evicted {
		if err := tx.Delete(d.path, []byte(k)); err != nil {
			return err
		}
	}
	return nil
}

func (d *deliveredSet) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.ring)
}
