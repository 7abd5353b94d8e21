package file

import (
	"bufio"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// registry remembers, in the instance's private data directory, every file identity tda
// began reading and when. Checkpoints say how far a file was read, but they are stored only
// after delivery: a file tda began reading and that was rotated away before its first
// checkpoint was committed would otherwise be unknown after a crash. Records are appended
// and synced when a file is taken up, and dropped after forget_after.
type registry struct {
	path    string
	f       *os.File
	records map[string]registryRecord // by checkpoint key
}

type registryRecord struct {
	Path  string    `json:"path"`
	Dev   uint64    `json:"dev"`
	Ino   uint64    `json:"ino"`
	FPLen int       `json:"fp_len"`
	FP    string    `json:"fp"`
	Since time.Time `json:"since"`
}

const registryFile = "file-identities.jsonl"

// openRegistry loads the registry in dir, dropping records older than keep, and rewrites it
// compacted. An empty dir means no registry.
func openRegistry(dir string, keep time.Duration, now time.Time) (*registry, error) {
	r := &registry{records: map[string]registryRecord{}}
	if dir == "" {
		return r, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return r, err
	}
	r.path = filepath.Join(dir, registryFile)
	if f, err := os.Open(r.path); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var rec registryRecord
			if json.Unmarshal(sc.Bytes(), &rec) != nil || now.Sub(rec.Since) > keep {
				continue // a torn last record, or too old
			}
			r.records[rec.key()] = rec
		}
		_ = f.Close()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return r, err
	}
	tmp := r.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return r, err
	}
	w := bufio.NewWriter(f)
	for _, rec := range r.records {
		b, _ := json.Marshal(rec)
		_, _ = w.Write(append(b, '\n'))
	}
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return r, err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return r, err
	}
	if err := os.Rename(tmp, r.path); err != nil {
		_ = f.Close()
		return r, err
	}
	r.f = f
	return r, nil
}

func (rec registryRecord) key() string {
	fp, _ := (&entry{FP: rec.FP, FPLen: rec.FPLen}).fingerprint()
	return entryKey(fileID{Dev: rec.Dev, Ino: rec.Ino}, fp)
}

// add records that tda began reading a file, durably, unless it is recorded already.
func (r *registry) add(path string, id fileID, fp fingerprint, since time.Time) error {
	key := entryKey(id, fp)
	if _, ok := r.records[key]; ok {
		return nil
	}
	rec := registryRecord{Path: path, Dev: id.Dev, Ino: id.Ino, FPLen: fp.Len, FP: hex64(fp.Hash), Since: since.UTC()}
	r.records[key] = rec
	if r.f == nil {
		return nil
	}
	b, _ := json.Marshal(rec)
	if _, err := r.f.Write(append(b, '\n')); err != nil {
		return err
	}
	return r.f.Sync()
}

func (r *registry) close() {
	if r.f != nil {
		_ = r.f.Close()
	}
}
