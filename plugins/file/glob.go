package file

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/bmatcuk/doublestar/v4"
)

// pattern is one glob of `paths`, split into the static directory it starts from and the
// segments below it.
type pattern struct {
	raw  string
	base string
	rest string
	segs []string
	// deep is set when a segment can span directories (`**`, or braces holding a `/`): the
	// walk then descends everywhere below base and matches whole relative paths.
	deep bool
}

func parsePattern(raw string) (pattern, error) {
	clean := filepath.ToSlash(filepath.Clean(raw))
	if !doublestar.ValidatePattern(clean) {
		return pattern{}, doublestar.ErrBadPattern
	}
	base, rest := doublestar.SplitPattern(clean)
	p := pattern{raw: raw, base: filepath.FromSlash(base), rest: rest}
	if rest == "" {
		return pattern{}, errors.New("the pattern names a directory, not files")
	}
	p.segs = strings.Split(rest, "/")
	for _, s := range p.segs {
		if strings.Contains(s, "**") || strings.Count(s, "{") != strings.Count(s, "}") {
			p.deep = true
		}
	}
	return p, nil
}

// matcher finds the files that `paths` and `exclude` select.
type matcher struct {
	patterns []pattern
	excludes []string
	gzip     bool
}

func newMatcher(paths, excludes []string, gzip bool) (*matcher, error) {
	m := &matcher{gzip: gzip}
	for _, raw := range paths {
		p, err := parsePattern(raw)
		if err != nil {
			return nil, &patternError{raw, err}
		}
		m.patterns = append(m.patterns, p)
	}
	for _, raw := range excludes {
		clean := filepath.ToSlash(filepath.Clean(raw))
		if !doublestar.ValidatePattern(clean) {
			return nil, &patternError{raw, doublestar.ErrBadPattern}
		}
		if !strings.Contains(raw, "/") {
			clean = raw
		}
		m.excludes = append(m.excludes, clean)
	}
	return m, nil
}

type patternError struct {
	pattern string
	err     error
}

func (e *patternError) Error() string { return "pattern " + e.pattern + ": " + e.err.Error() }

// excluded reports whether path is left out by `exclude` or, unless gzip files are read,
// because it is a gzip file.
func (m *matcher) excluded(path string) bool {
	if !m.gzip && strings.HasSuffix(path, ".gz") {
		return true
	}
	slash := filepath.ToSlash(path)
	for _, ex := range m.excludes {
		target := slash
		if !strings.Contains(ex, "/") {
			target = filepath.Base(path)
		}
		if ok, _ := doublestar.Match(ex, target); ok {
			return true
		}
	}
	return false
}

// matches reports whether path is selected by `paths` and not excluded.
func (m *matcher) matches(path string) bool {
	if m.excluded(path) {
		return false
	}
	slash := filepath.ToSlash(filepath.Clean(path))
	for _, p := range m.patterns {
		base := filepath.ToSlash(p.base)
		var rel string
		switch {
		case base == ".":
			rel = slash
		case base == "/":
			rel = strings.TrimPrefix(slash, "/")
		case strings.HasPrefix(slash, base+"/"):
			rel = slash[len(base)+1:]
		default:
			continue
		}
		if ok, _ := doublestar.Match(p.rest, rel); ok {
			return true
		}
	}
	return false
}

// scanResult is what one pass over the patterns found.
type scanResult struct {
	// files are the selected regular files (symlinks resolved for the type check), sorted.
	files []string
	// dirs are the directories whose changes can add or remove a selected file.
	dirs []string
	// errs are problems an operator should hear about (e.g. permission denied).
	errs []error
}

// scan walks the file system for every pattern.
func (m *matcher) scan() scanResult {
	w := walker{m: m, files: map[string]bool{}, dirs: map[string]bool{}, visited: map[fileID]bool{}}
	for _, p := range m.patterns {
		w.walkPattern(p)
	}
	res := scanResult{errs: w.errs}
	for f := range w.files {
		res.files = append(res.files, f)
	}
	for d := range w.dirs {
		res.dirs = append(res.dirs, d)
	}
	sort.Strings(res.files)
	sort.Strings(res.dirs)
	return res
}

type walker struct {
	m       *matcher
	files   map[string]bool
	dirs    map[string]bool
	visited map[fileID]bool
	errs    []error
}

func (w *walker) walkPattern(p pattern) {
	info, err := os.Stat(p.base)
	if err != nil || !info.IsDir() {
		// Watch the nearest directory that exists, so its creation is noticed.
		for d := p.base; ; {
			parent := filepath.Dir(d)
			if st, err := os.Stat(parent); err == nil && st.IsDir() {
				w.dirs[parent] = true
				break
			}
			if parent == d {
				break
			}
			d = parent
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			w.errs = append(w.errs, err)
		}
		return
	}
	clear(w.visited)
	w.walkDir(p, p.base, "", 0, info)
}

func (w *walker) walkDir(p pattern, dir, rel string, depth int, info fs.FileInfo) {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		id := fileID{Dev: uint64(st.Dev), Ino: st.Ino}
		if w.visited[id] {
			return // a symlink loop
		}
		w.visited[id] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			w.errs = append(w.errs, err)
		}
		return
	}
	w.dirs[dir] = true
	for _, e := range entries {
		name := e.Name()
		full := filepath.Join(dir, name)
		childRel := name
		if rel != "" {
			childRel = rel + "/" + name
		}
		isDir := e.IsDir()
		isFile := e.Type().IsRegular()
		var childInfo fs.FileInfo
		if e.Type()&fs.ModeSymlink != 0 {
			st, err := os.Stat(full)
			if err != nil {
				continue // dangling link
			}
			isDir, isFile, childInfo = st.IsDir(), st.Mode().IsRegular(), st
		}
		if p.deep {
			if isDir {
				if childInfo == nil {
					if childInfo, err = e.Info(); err != nil {
						continue
					}
				}
				w.walkDir(p, full, childRel, depth+1, childInfo)
			} else if isFile {
				if ok, _ := doublestar.Match(p.rest, childRel); ok && !w.m.excluded(full) {
					w.files[full] = true
				}
			}
			continue
		}
		if ok, _ := doublestar.Match(p.segs[depth], name); !ok {
			continue
		}
		last := depth == len(p.segs)-1
		switch {
		case last && isFile:
			if !w.m.excluded(full) {
				w.files[full] = true
			}
		case !last && isDir:
			if childInfo == nil {
				if childInfo, err = e.Info(); err != nil {
					continue
				}
			}
			w.walkDir(p, full, childRel, depth+1, childInfo)
		}
	}
}
