package startpages

import (
	"fmt"
	"os"
	"syscall"
)

// Release unmaps the resident pages of the executable's read-only regions in which no page
// differs from the file, and returns how many bytes were resident in them. Call it once
// start-up is over; the pages in use come back as they are touched.
func Release() (int64, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, fmt.Errorf("finding the executable: %w", err)
	}
	// A deleted executable (replaced by an upgrade, or a sealed memory file) is named
	// "PATH (deleted)" both here and in smaps.
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0, fmt.Errorf("reading the memory map: %w", err)
	}
	maps, err := parseSmaps(f)
	f.Close()
	if err != nil {
		return 0, err
	}
	var released int64
	for _, m := range maps {
		if !m.releasable(exe) {
			continue
		}
		// MADV_DONTNEED on a private file mapping drops this process's page table entries;
		// the page cache keeps the pages. A read-only region cannot be written, so it has
		// gained no copy of its own since smaps was read: only the file's pages go.
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, uintptr(m.start), uintptr(m.end-m.start),
			syscall.MADV_DONTNEED); errno != 0 {
			return released, fmt.Errorf("releasing %x-%x: %w", m.start, m.end, errno)
		}
		released += m.rss
	}
	return released, nil
}
