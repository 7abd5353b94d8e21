package postgres

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzMetadata feeds arbitrary bytes as a snapshot's metadata file: listing never fails or
// panics because of one bad file, and a readable one is listed under its own identifier.
func FuzzMetadata(f *testing.F) {
	f.Add([]byte(`{"id":"tda-app-manual-20261129t225705z","database":"app","status":"available","time":"2026-11-29T22:57:05Z","tags":{"trigger":"manual","created_by":"tda"},"sha256":"00"}`))
	f.Add([]byte(`{"id":"x","status":"creating","pid":1}`))
	f.Add([]byte(`{"tags":null,"time":"not a time"}`))
	f.Add([]byte("\xff\x00{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "tda-app-manual-20261129t225705z.json"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := New(Config{Database: "app", Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		list, err := p.List(context.Background())
		if err != nil {
			t.Fatalf("one bad metadata file failed the listing: %v", err)
		}
		if len(list) > 1 || (len(list) == 1 && list[0].ID != "tda-app-manual-20261129t225705z") {
			t.Fatalf("one file listed as %+v", list)
		}
		_ = p.Delete(context.Background(), "tda-app-manual-20261129t225705z")
	})
}
