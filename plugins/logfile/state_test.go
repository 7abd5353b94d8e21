package logfile

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadState: whatever the record holds (it is a file anyone can damage), loading it
// never panics, and a record it accepts names only plain file names with sizes that are not
// negative.
func FuzzLoadState(f *testing.F) {
	f.Add([]byte(`{"version":1,"dir":"/capture","last_id":3,"files":{"web.log":{"size":42,"mark":{"stream":"c1.a","seq":7}}}}`))
	f.Add([]byte(`{"version":1,"dir":"/elsewhere","files":{"web.log":{"size":1}}}`))
	f.Add([]byte(`{"version":1,"files":{"../x.log":{"size":1}}}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":1,"files":{"a":null}}`))
	f.Add([]byte(`not json`))
	f.Add([]byte(`{"version":1,"files":{"..":{"size":0}}}`))
	f.Add([]byte(`{"version":1,"files":{".":{"size":0}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), stateFile)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := loadState(path, "/capture")
		if c == nil || c.Files == nil {
			t.Fatalf("loadState returned no usable record (err %v)", err)
		}
		if err != nil && len(c.Files) != 0 {
			t.Fatalf("a refused record still names files: %v", c.Files)
		}
		for name, fst := range c.Files {
			if fst == nil || fst.Size < 0 || name != filepath.Base(name) || name == "." || name == ".." || name == "" {
				t.Fatalf("accepted entry %q: %+v", name, fst)
			}
		}
	})
}
