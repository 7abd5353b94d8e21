package startpages

import (
	"os"
	"strings"
	"testing"
)

func TestParseSmapsChoosesCleanReadOnlyRegionsOfTheExecutable(t *testing.T) {
	f, err := os.Open("testdata/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	maps, err := parseSmaps(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(maps) != 12 {
		t.Fatalf("%d regions, want 12", len(maps))
	}
	const exe = "/usr/local/bin/tda"
	tests := []struct {
		start      uint64
		releasable bool
		why        string
	}{
		{0x00400000, true, "code, clean"},
		{0x0151f000, true, "read-only data, clean"},
		{0x027aa000, false, "writable data of the executable"},
		{0x02882000, false, "anonymous (bss)"},
		{0x048db000, false, "read-only but written before it was protected (relocated): its copy would be lost"},
		{0x048dc000, false, "nothing resident"},
		{0x048dd000, true, "dirty in the page cache (a binary just written), no copy of its own"},
		{0xe3f90000000, false, "the heap"},
		{0x7f48a805d000, false, "vdso"},
		{0x7f48a8000000, false, "another executable (a path with spaces)"},
	}
	byStart := map[uint64]mapping{}
	for _, m := range maps {
		byStart[m.start] = m
	}
	for _, tt := range tests {
		m, ok := byStart[tt.start]
		if !ok {
			t.Errorf("no region at %x", tt.start)
			continue
		}
		if got := m.releasable(exe); got != tt.releasable {
			t.Errorf("%x (%s): releasable = %v, want %v (%+v)", tt.start, tt.why, got, tt.releasable, m)
		}
	}
	if m := byStart[0x00400000]; m.rss != 12852<<10 || m.end != 0x0151f000 || m.perms != "r-xp" {
		t.Errorf("code region read as %+v", m)
	}
	if m := byStart[0x7f48a8000000]; m.path != "/usr/local/bin/tda.old (deleted)" {
		t.Errorf("path with spaces read as %q", m.path)
	}
}

func TestParseSmapsRefusesWhatItCannotRead(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"field before a region", "Rss: 4 kB\n", "before any region"},
		{"bad range", "0040-zz r-xp 0 fe:00 1 /bin/tda\n", "address range"},
		{"reversed range", "2000-1000 r-xp 0 fe:00 1 /bin/tda\n", "address range"},
		{"short header", "1000-2000 r-xp 0\n", "fields"},
		{"bad permissions", "1000-2000 rx 0 fe:00 1 /bin/tda\n", "permissions"},
		{"size without unit", "1000-2000 r-xp 0 fe:00 1 /bin/tda\nRss: 4\n", "size"},
		{"negative size", "1000-2000 r-xp 0 fe:00 1 /bin/tda\nRss: -4 kB\n", "size"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseSmaps(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
}

func FuzzParseSmaps(f *testing.F) {
	if b, err := os.ReadFile("testdata/smaps"); err == nil {
		f.Add(string(b))
	}
	f.Add("1000-2000 r-xp 0 fe:00 1 /bin/tda\nRss: 4 kB\nAnonymous: 0 kB\n")
	f.Fuzz(func(t *testing.T, in string) {
		maps, err := parseSmaps(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, m := range maps {
			if m.end < m.start || len(m.perms) != 4 || m.rss < 0 || m.anonymous < 0 {
				t.Fatalf("accepted an impossible region %+v", m)
			}
			if m.releasable(m.path) && (strings.Contains(m.perms, "w") || m.anonymous != 0) {
				t.Fatalf("would release a region with pages of its own: %+v", m)
			}
		}
	})
}
