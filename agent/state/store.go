// Package state is the agent's embedded store (bbolt) under data_dir: source checkpoints,
// processor snapshots, durable sink queues, delivered-alert records, the audit log and
// approvals. Buckets are addressed by paths such as ["checkpoints", "source.file.hosts"].
package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// FileName is the store's file inside data_dir.
const FileName = "tda.db"

// ErrLocked means another process (usually a running agent) holds the store.
var ErrLocked = errors.New("the state store is in use by another tda process")

// Store is the agent's state store.
type Store struct {
	db   *bolt.DB
	path string
}

// Options tune Open.
type Options struct {
	// Timeout is how long to wait for the file lock (default 1s).
	Timeout time.Duration
	// ReadOnly opens the store for reading only (shared lock).
	ReadOnly bool
}

// Open opens (creating when needed) the store in dataDir.
func Open(dataDir string, opts Options) (*Store, error) {
	if opts.Timeout == 0 {
		opts.Timeout = time.Second
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(dataDir, 0o750); err != nil {
			return nil, fmt.Errorf("create data_dir %s: %w", dataDir, err)
		}
	}
	path := filepath.Join(dataDir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.Timeout, ReadOnly: opts.ReadOnly})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("%w: %s (stop the other agent, or use its API)", ErrLocked, path)
		}
		return nil, fmt.Errorf("open state store %s: %w", path, err)
	}
	return &Store{db: db, path: path}, nil
}

// Path returns the store's file path.
func (s *Store) Path() string { return s.path }

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// Update runs fn in a read-write transaction, committed (and fsynced) when fn returns nil.
func (s *Store) Update(fn func(*Tx) error) error {
	return s.db.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(*Tx) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx}) })
}

// Tx is a transaction.
type Tx struct{ tx *bolt.Tx }

// bucket returns the bucket at path, creating it in writable transactions; nil when it does
// not exist in a read-only one.
func (t *Tx) bucket(path []string) (*bolt.Bucket, error) {
	if len(path) == 0 {
		return nil, errors.New("empty bucket path")
	}
	var b *bolt.Bucket
	for i, name := range path {
		var next *bolt.Bucket
		if i == 0 {
			next = t.tx.Bucket([]byte(name))
		} else {
			next = b.Bucket([]byte(name))
		}
		if next == nil {
			if !t.tx.Writable() {
				return nil, nil
			}
			var err error
			if i == 0 {
				next, err = t.tx.CreateBucketIfNotExists([]byte(name))
			} else {
				next, err = b.CreateBucketIfNotExists([]byte(name))
			}
			if err != nil {
				return nil, fmt.Errorf("bucket %v: %w", path[:i+1], err)
			}
		}
		b = next
	}
	return b, nil
}

// Get returns a copy of the value of key in the bucket at path, or nil.
func (t *Tx) Get(path []string, key []byte) ([]byte, error) {
	b, err := t.bucket(path)
	if err != nil || b == nil {
		return nil, err
	}
	v := b.Get(key)
	if v == nil {
		return nil, nil
	}
	return append([]byte(nil), v...), nil
}

// Put stores value under key in the bucket at path.
func (t *Tx) Put(path []string, key, value []byte) error {
	b, err := t.bucket(path)
	if err != nil {
		return err
	}
	return b.Put(key, value)
}

// Delete removes key from the bucket at path.
func (t *Tx) Delete(path []string, key []byte) error {
	b, err := t.bucket(path)
	if err != nil || b == nil {
		return err
	}
	return b.Delete(key)
}

// ForEach calls fn for every key in the bucket at path, in key order. The slices are only
// valid during the call.
func (t *Tx) ForEach(path []string, fn func(k, v []byte) error) error {
	b, err := t.bucket(path)
	if err != nil || b == nil {
		return err
	}
	return b.ForEach(func(k, v []byte) error {
		if v == nil { // nested bucket
			return nil
		}
		return fn(k, v)
	})
}

// First returns the first key and value of the bucket at path (copies), or nils.
func (t *Tx) First(path []string) ([]byte, []byte, error) {
	b, err := t.bucket(path)
	if err != nil || b == nil {
		return nil, nil, err
	}
	k, v := b.Cursor().First()
	if k == nil {
		return nil, nil, nil
	}
	return append([]byte(nil), k...), append([]byte(nil), v...), nil
}

// Count returns the number of keys in the bucket at path.
func (t *Tx) Count(path []string) (int, error) {
	b, err := t.bucket(path)
	if err != nil || b == nil {
		return 0, err
	}
	return b.Stats().KeyN, nil
}

// DeleteBucket removes the bucket at path and everything in it.
func (t *Tx) DeleteBucket(path []string) error {
	if len(path) == 0 {
		return nil
	}
	parent := path[:len(path)-1]
	name := []byte(path[len(path)-1])
	if len(parent) == 0 {
		if t.tx.Bucket(name) == nil {
			return nil
		}
		return t.tx.DeleteBucket(name)
	}
	b, err := t.bucket(parent)
	if err != nil || b == nil {
		return err
	}
	if b.Bucket(name) == nil {
		return nil
	}
	return b.DeleteBucket(name)
}

// NextSequence returns the next value of the bucket's sequence.
func (t *Tx) NextSequence(path []string) (uint64, error) {
	b, err := t.bucket(path)
	if err != nil {
		return 0, err
	}
	if b == nil {
		return 0, errors.New("read-only transaction")
	}
	return b.NextSequence()
}

// ErrStop ends a Scan early without an error.
var ErrStop = errors.New("stop scan")

// Scan calls fn for the keys of the bucket at path after `after` (from the first key when
// after is nil), in key order, until fn returns ErrStop or another error (returned). The
// slices are only valid during the call.
func (t *Tx) Scan(path []string, after []byte, fn func(k, v []byte) error) error {
	b, err := t.bucket(path)
	if err != nil || b == nil {
		return err
	}
	c := b.Cursor()
	var k, v []byte
	if after == nil {
		k, v = c.First()
	} else {
		k, v = c.Seek(after)
		if k != nil && string(k) == string(after) {
			k, v = c.Next()
		}
	}
	for ; k != nil; k, v = c.Next() {
		if v == nil { // nested bucket
			continue
		}
		if err := fn(k, v); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}
