package ops

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/tda-dev/tda/agent/state"
)

// Buckets of the state store that the operations own.
var (
	bucketAudit      = []string{"ops", "audit"}
	bucketMigrations = []string{"ops", "migrations"}
	bucketAcks       = []string{"ops", "acks"}
	bucketOverride   = []string{"ops", "override"}
	bucketRestores   = []string{"ops", "restores"}
)

func seqKey(n uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return b[:]
}

// idKey turns a decimal id ("12") into its key; ok is false for anything else.
func idKey(id string) ([]byte, bool) {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil || n == 0 {
		return nil, false
	}
	return seqKey(n), true
}

func putJSON(tx *state.Tx, bucket []string, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Put(bucket, key, b)
}

func getJSON(tx *state.Tx, bucket []string, key []byte, v any) (bool, error) {
	b, err := tx.Get(bucket, key)
	if err != nil || b == nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("corrupt record %x in %v: %w", key, bucket, err)
	}
	return true, nil
}

// appendAudit adds an entry to the audit log inside tx and returns it with its id.
func appendAudit(tx *state.Tx, e AuditEntry) (AuditEntry, error) {
	n, err := tx.NextSequence(bucketAudit)
	if err != nil {
		return e, err
	}
	e.ID = n
	return e, putJSON(tx, bucketAudit, seqKey(n), e)
}

// lastMatching scans a sequence-keyed bucket in order and returns the values of the last
// limit records that match, newest first, holding no more than limit of them at a time.
func lastMatching(tx *state.Tx, bucket []string, limit int, match func(v []byte) (bool, error)) ([][]byte, error) {
	ring := make([][]byte, 0, limit)
	next := 0
	err := tx.ForEach(bucket, func(_, v []byte) error {
		ok, err := match(v)
		if err != nil || !ok {
			return err
		}
		c := append([]byte(nil), v...)
		if len(ring) < limit {
			ring = append(ring, c)
		} else {
			ring[next] = c
			next = (next + 1) % limit
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, len(ring))
	for i := len(ring) - 1; i >= 0; i-- {
		out = append(out, ring[(next+i)%len(ring)])
	}
	return out, nil
}
