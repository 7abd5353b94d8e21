package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Partition ownership among a group of detectors, through a JetStream key-value bucket whose
// entries live for one lease TTL unless renewed:
//
//	<group>.m.<member>  a detector's heartbeat (every renewal)
//	<group>.p.<N>       the lease of partition N, valued with its owner
//
// Invariant: a detector reads a partition only while it holds its lease: it takes a free
// lease with Create (which fails if the key exists), renews it with Update at the revision it
// last wrote (which fails if anyone else wrote since), and stops reading the partition as soon
// as a renewal fails or it gives the partition back. A detector that dies stops renewing; its leases expire after the TTL and
// the survivors take them. Each detector takes at most its fair share, ceil(partitions /
// live members), and gives back what exceeds it when another detector joins.

// leaseValue is what a partition's lease holds.
type leaseValue struct {
	Owner string    `json:"owner"`
	Since time.Time `json:"since"`
}

// leases is one detector's view of the bucket.
type leases struct {
	kv         jetstream.KeyValue
	group      string
	member     string
	partitions int
	// owned maps each partition held to the revision last written.
	owned map[int]uint64
	// rounds counts the rounds done. The first joinRounds only announce the member, so
	// detectors that start together see each other before taking partitions (rather than
	// the first taking all and giving some back).
	rounds int
}

// joinRounds is how many rounds (of lease_ttl/3) a new member only announces itself.
const joinRounds = 2

func memberKey(group, member string) string { return group + ".m." + member }
func leaseKey(group string, p int) string   { return group + ".p." + strconv.Itoa(p) }

// ensureBucket returns a bucket, creating it with a TTL of ttl (0: entries never expire).
func ensureBucket(ctx context.Context, js jetstream.JetStream, name string, ttl time.Duration, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, name)
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("lease bucket %s: %w", name, err)
	}
	kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: name, TTL: ttl, Replicas: replicas,
		Description: "tda fleet: which detector reads which partition, and how far it judged", History: 1})
	if errors.Is(err, jetstream.ErrBucketExists) {
		return js.KeyValue(ctx, name)
	}
	if err != nil {
		return nil, fmt.Errorf("create lease bucket %s: %w", name, err)
	}
	return kv, nil
}

// members counts the live detectors of the group (their heartbeats have not expired).
func (l *leases) members(ctx context.Context) (int, error) {
	lister, err := l.kv.ListKeysFiltered(ctx, l.group+".m.*")
	if err != nil {
		return 0, err
	}
	n := 0
	for range lister.Keys() {
		n++
	}
	return max(n, 1), nil
}

// round renews the heartbeat and the leases held, then takes free partitions up to the fair
// share. It returns the partitions lost and gained. On an error the caller keeps its
// partitions until the TTL: a renewal that did not reach the server may still hold.
func (l *leases) round(ctx context.Context, now time.Time) (lost, gained []int, err error) {
	if _, err := l.kv.Put(ctx, memberKey(l.group, l.member), []byte(now.UTC().Format(time.RFC3339Nano))); err != nil {
		return nil, nil, fmt.Errorf("heartbeat: %w", err)
	}
	for _, p := range sortedKeys(l.owned) {
		val, _ := json.Marshal(leaseValue{Owner: l.member, Since: now.UTC()})
		rev, err := l.kv.Update(ctx, leaseKey(l.group, p), val, l.owned[p])
		switch {
		case err == nil:
			l.owned[p] = rev
		case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyNotFound):
			// Someone else wrote the lease (ours expired), or it expired and was deleted.
			delete(l.owned, p)
			lost = append(lost, p)
		default:
			return lost, nil, fmt.Errorf("renew partition %d: %w", p, err)
		}
	}
	if l.rounds++; l.rounds <= joinRounds {
		return lost, nil, nil
	}
	n, err := l.members(ctx)
	if err != nil {
		return lost, nil, fmt.Errorf("list members: %w", err)
	}
	fair := (l.partitions + n - 1) / n
	// More than the fair share (a detector joined): give the highest partitions back, so the
	// newcomer takes them in its next round.
	for held := sortedKeys(l.owned); len(held) > fair; held = held[:len(held)-1] {
		p := held[len(held)-1]
		if err := l.kv.Delete(ctx, leaseKey(l.group, p), jetstream.LastRevision(l.owned[p])); err != nil {
			break
		}
		delete(l.owned, p)
		lost = append(lost, p)
	}
	// Start the scan at a member-dependent place so detectors starting together try
	// different partitions first.
	start := int(partitionOf(l.member, l.partitions))
	for i := 0; i < l.partitions && len(l.owned) < fair; i++ {
		p := (start + i) % l.partitions
		if _, ok := l.owned[p]; ok {
			continue
		}
		val, _ := json.Marshal(leaseValue{Owner: l.member, Since: now.UTC()})
		rev, err := l.kv.Create(ctx, leaseKey(l.group, p), val)
		if err == nil {
			l.owned[p] = rev
			gained = append(gained, p)
			continue
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return lost, gained, fmt.Errorf("take partition %d: %w", p, err)
		}
		// A lease that names this member is from its previous run (a restart within the
		// TTL): take it back rather than wait for it to expire.
		if e, err := l.kv.Get(ctx, leaseKey(l.group, p)); err == nil {
			var v leaseValue
			if json.Unmarshal(e.Value(), &v) == nil && v.Owner == l.member {
				if rev, err := l.kv.Update(ctx, leaseKey(l.group, p), val, e.Revision()); err == nil {
					l.owned[p] = rev
					gained = append(gained, p)
				}
			}
		}
	}
	return lost, gained, nil
}

// release deletes the leases held (a clean stop), so the survivors take them at once.
func (l *leases) release(ctx context.Context) {
	for p, rev := range l.owned {
		_ = l.kv.Delete(ctx, leaseKey(l.group, p), jetstream.LastRevision(rev))
	}
	_ = l.kv.Delete(ctx, memberKey(l.group, l.member))
	l.owned = map[int]uint64{}
}

// ownerships reads every partition's owner, for the status report.
func (l *leases) ownerships(ctx context.Context) (map[int]string, error) {
	lister, err := l.kv.ListKeysFiltered(ctx, l.group+".p.*")
	if err != nil {
		return nil, err
	}
	out := map[int]string{}
	for k := range lister.Keys() {
		p, err := strconv.Atoi(strings.TrimPrefix(k, l.group+".p."))
		if err != nil {
			continue
		}
		e, err := l.kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var v leaseValue
		if json.Unmarshal(e.Value(), &v) == nil {
			out[p] = v.Owner
		}
	}
	return out, nil
}

func sortedKeys[V any](m map[int]V) []int {
	ks := make([]int, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	return ks
}
