package startpages

import (
	"os"
	"testing"
)

// residentExe is the resident size of the executable's read-only regions of this process.
func residentExe(t *testing.T) int64 {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	maps, err := parseSmaps(f)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, m := range maps {
		if m.path == exe && m.perms[1] != 'w' {
			n += m.rss
		}
	}
	return n
}

// TestReleaseUnmapsStartupPagesAndTheProcessGoesOn releases the test binary's pages, then
// keeps running code and reading tables of the binary (the test framework, fmt, the
// parser): what was in use comes back intact.
func TestReleaseUnmapsStartupPagesAndTheProcessGoesOn(t *testing.T) {
	before := residentExe(t)
	released, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	if released <= 0 || released > before+(1<<20) {
		t.Fatalf("released %d bytes of %d resident", released, before)
	}
	after := residentExe(t) // parses smaps again: code and tables paged back in
	if after >= before {
		t.Fatalf("resident executable pages %d after releasing, %d before", after, before)
	}
	t.Logf("executable resident %d KiB -> released %d KiB -> %d KiB back in use", before>>10, released>>10, after>>10)
	// The parse after the release saw the same regions as before it.
	f, err := os.Open("testdata/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if maps, err := parseSmaps(f); err != nil || len(maps) != 12 {
		t.Fatalf("parsing after the release: %d regions, %v", len(maps), err)
	}
	// A second release finds only what came back.
	again, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	if again > after+(1<<20) {
		t.Fatalf("second release freed %d bytes, more than the %d back in use", again, after)
	}
}
