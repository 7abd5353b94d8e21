// Package startpages gives back the pages of the tda executable that only start-up used.
//
// Start-up runs the package initialisation of every library linked into tda (the AWS SDK,
// gRPC, the Docker and NATS clients, ...), decodes the config and describes the plugins: code
// and tables spread over most of the binary, which the kernel maps in 64 KiB steps around
// each page touched. A running agent or plugin process then uses a fraction of them, but
// the pages stay mapped and counted in its resident memory (about 10 MiB of the 37 MiB
// binary in each process). Release unmaps them; the pages still in use come back on the
// next access from the page cache (a minor fault, no disk read), the others stay with the
// page cache, which the kernel reclaims under pressure.
package startpages

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// mapping is one region of a process's address space, from /proc/PID/smaps.
type mapping struct {
	start, end uint64
	perms      string
	path       string
	rss        int64 // bytes resident
	// anonymous is the bytes of the region that exist only in this process's memory:
	// copies written over the file's pages (copy on write, relocations). Dirty file pages
	// (Private_Dirty without Anonymous: a binary written moments ago, not yet on disk) are
	// the page cache's and come back from it.
	anonymous int64
}

// releasable reports whether unmapping the region's pages loses nothing: a private
// read-only mapping of the executable that holds no copy of a page of its own (Anonymous
// 0 kB). Invariant: only such a region is ever released, so whatever comes back on the
// next access is what was there.
func (m mapping) releasable(exe string) bool {
	return m.path == exe && !strings.Contains(m.perms, "w") && m.perms[3] == 'p' &&
		m.anonymous == 0 && m.rss > 0 && m.end > m.start
}

// parseSmaps reads the regions of /proc/PID/smaps. A region whose header cannot be read
// ends the parse with an error: nothing is released on a guess.
func parseSmaps(r io.Reader) ([]mapping, error) {
	var out []mapping
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		if key, ok := strings.CutSuffix(fields[0], ":"); ok && isFieldName(key) {
			if len(out) == 0 {
				return nil, fmt.Errorf("smaps line %d: %q before any region", line, key)
			}
			m := &out[len(out)-1]
			switch key {
			case "Rss", "Anonymous":
				n, err := kilobytes(fields[1:])
				if err != nil {
					return nil, fmt.Errorf("smaps line %d: %s: %w", line, key, err)
				}
				if key == "Rss" {
					m.rss = n
				} else {
					m.anonymous = n
				}
			}
			continue
		}
		m, err := parseHeader(fields)
		if err != nil {
			return nil, fmt.Errorf("smaps line %d: %w", line, err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading smaps: %w", err)
	}
	return out, nil
}

// isFieldName tells a field line ("Rss:", "VmFlags:") from a region header, whose first
// field is an address range.
func isFieldName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// parseHeader reads "start-end perms offset dev inode [path]".
func parseHeader(f []string) (mapping, error) {
	if len(f) < 5 {
		return mapping{}, fmt.Errorf("region header with %d fields", len(f))
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	if !ok {
		return mapping{}, fmt.Errorf("address range %q", f[0])
	}
	start, err1 := strconv.ParseUint(lo, 16, 64)
	end, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil || end < start {
		return mapping{}, fmt.Errorf("address range %q", f[0])
	}
	if len(f[1]) != 4 {
		return mapping{}, fmt.Errorf("permissions %q", f[1])
	}
	m := mapping{start: start, end: end, perms: f[1]}
	if len(f) > 5 {
		// A path may contain spaces ("/memfd:tda (deleted)").
		m.path = strings.Join(f[5:], " ")
	}
	return m, nil
}

// kilobytes reads "123 kB".
func kilobytes(f []string) (int64, error) {
	if len(f) != 2 || f[1] != "kB" {
		return 0, fmt.Errorf("size %q", strings.Join(f, " "))
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || n < 0 || n > 1<<40 {
		return 0, fmt.Errorf("size %q", f[0])
	}
	return n << 10, nil
}
