package logfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/tda-dev/tda/plugins/internal/logpos"
)

// stateFile is the name of the sink's record of what it acknowledged, in its private data
// directory.
const stateFile = "logfile.state"

// stateVersion is the layout of the record; a record of another version is not trusted.
const stateVersion = 1

// committed is what the sink acknowledged: the length of every file it writes as of the last
// acknowledged batch, the position of the last line written per file, and that batch's
// delivery id.
//
// Invariant: the record is replaced only after the data it describes is on disk (fsynced), so
// bytes of a file past its recorded size were never acknowledged, and a position in it names
// a line that is in the file.
type committed struct {
	Version int `json:"version"`
	// Dir is the absolute directory the files are in: a record of another directory (dir
	// changed in the config) describes none of the files here.
	Dir    string                `json:"dir"`
	LastID uint64                `json:"last_id"`
	Files  map[string]*fileState `json:"files"`
}

type fileState struct {
	Size int64       `json:"size"`
	Mark logpos.Mark `json:"mark"`
}

// loadState reads the record of the files in dir; a missing one reads as empty. A record
// that cannot be read, or that describes another directory, is reported and treated as
// missing: the sink then trusts the files as they are, which can repeat lines but never
// drops any.
func loadState(path, dir string) (*committed, error) {
	c := &committed{Version: stateVersion, Dir: dir, Files: map[string]*fileState{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read %s: %w", path, err)
	}
	var got committed
	if err := json.Unmarshal(b, &got); err != nil {
		return c, fmt.Errorf("%s is damaged (%v); the files are taken as they are", path, err)
	}
	if got.Version != stateVersion {
		return c, fmt.Errorf("%s has version %d, not %d; the files are taken as they are", path, got.Version, stateVersion)
	}
	if got.Dir != dir {
		return c, fmt.Errorf("%s describes the files of %s, not of %s (dir changed?); the files are taken as they are", path, got.Dir, dir)
	}
	for name, f := range got.Files {
		if f == nil || f.Size < 0 || name != filepath.Base(name) || name == "." || name == ".." {
			return c, fmt.Errorf("%s holds a bad entry %q; the files are taken as they are", path, name)
		}
	}
	if got.Files == nil {
		got.Files = map[string]*fileState{}
	}
	return &got, nil
}

// save replaces the record at path: written to a temporary file, flushed, renamed over the
// old one and the directory flushed, so a crash leaves either the old record or the new one.
func (c *committed) save(path string, sync bool) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if sync {
		return syncDir(filepath.Dir(path))
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// lastNewline returns the offset just after the file's last '\n' within its first size bytes
// (0 if none).
func lastNewline(f *os.File, size int64) (int64, error) {
	buf := make([]byte, 64*1024)
	for end := size; end > 0; {
		start := max(end-int64(len(buf)), 0)
		n, err := f.ReadAt(buf[:end-start], start)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := n - 1; i >= 0; i-- {
			if buf[i] == '\n' {
				return start + int64(i) + 1, nil
			}
		}
		end = start
	}
	return 0, nil
}
