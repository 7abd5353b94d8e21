package file

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"
)

// fingerprintBytes is how many bytes from the start of a file make its fingerprint. A file
// shorter than that is fingerprinted over what it has, and the fingerprint is extended as
// the file grows (its checkpoint entry is then re-keyed).
const fingerprintBytes = 1024

// markerBytes is how many bytes just before a saved offset are hashed into the offset marker,
// which tells whether the file still holds the same bytes there (as Fluent Bit's offset
// marker does).
const markerBytes = 32

// fileID is a file's device and inode.
type fileID struct {
	Dev uint64
	Ino uint64
}

func (id fileID) String() string { return fmt.Sprintf("%x:%x", id.Dev, id.Ino) }

// fingerprint is a hash of the first Len bytes of a file.
type fingerprint struct {
	Len  int
	Hash uint64
}

func hashBytes(b []byte) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(b)
	return h.Sum64()
}

func fingerprintOf(b []byte) fingerprint {
	if len(b) > fingerprintBytes {
		b = b[:fingerprintBytes]
	}
	return fingerprint{Len: len(b), Hash: hashBytes(b)}
}

// entryKey is the checkpoint key of a file identity: device, inode and fingerprint, so a
// recycled inode with other content is a different entry.
func entryKey(id fileID, fp fingerprint) string {
	return fmt.Sprintf("file:%x:%x:%d:%016x", id.Dev, id.Ino, fp.Len, fp.Hash)
}

// entry is the value stored for one file identity.
type entry struct {
	V      int    `json:"v"`
	Path   string `json:"path"`
	Dev    uint64 `json:"dev"`
	Ino    uint64 `json:"ino"`
	FPLen  int    `json:"fp_len"`
	FP     string `json:"fp"`
	Offset int64  `json:"offset"`
	// Marker is the hash of the MarkerLen bytes before Offset.
	MarkerLen int    `json:"marker_len"`
	Marker    string `json:"marker"`
	// Skip says the bytes at Offset are the rest of a truncated line, to be skipped up to the
	// next newline.
	Skip bool `json:"skip,omitempty"`
	// Seen is when tda last read from or saw the file.
	Seen time.Time `json:"seen"`
}

func (e *entry) id() fileID { return fileID{Dev: e.Dev, Ino: e.Ino} }

func (e *entry) fingerprint() (fingerprint, error) {
	h, err := strconv.ParseUint(e.FP, 16, 64)
	if err != nil {
		return fingerprint{}, fmt.Errorf("fingerprint %q: %w", e.FP, err)
	}
	return fingerprint{Len: e.FPLen, Hash: h}, nil
}

func (e *entry) marker() (uint64, error) {
	if e.MarkerLen == 0 {
		return 0, nil
	}
	return strconv.ParseUint(e.Marker, 16, 64)
}

func encodeEntry(e *entry) []byte {
	e.V = 1
	b, _ := json.Marshal(e)
	return b
}

func decodeEntry(b []byte) (*entry, error) {
	var e entry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, err
	}
	if e.V != 1 {
		return nil, fmt.Errorf("unknown checkpoint version %d", e.V)
	}
	if _, err := e.fingerprint(); err != nil {
		return nil, err
	}
	if _, err := e.marker(); err != nil {
		return nil, fmt.Errorf("marker: %w", err)
	}
	return &e, nil
}

// tail holds the last markerBytes bytes before a position in a file.
type tail struct {
	n int
	b [markerBytes]byte
}

// advanced returns the tail after the bytes in data were appended.
func (t tail) advanced(data []byte) tail {
	if len(data) >= markerBytes {
		var out tail
		out.n = markerBytes
		copy(out.b[:], data[len(data)-markerBytes:])
		return out
	}
	keep := markerBytes - len(data)
	if keep > t.n {
		keep = t.n
	}
	var out tail
	copy(out.b[:], t.b[t.n-keep:t.n])
	copy(out.b[keep:], data)
	out.n = keep + len(data)
	return out
}

func (t *tail) bytes() []byte { return t.b[:t.n] }

func (t *tail) hash() uint64 { return hashBytes(t.bytes()) }
