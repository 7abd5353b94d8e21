package file

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/sdk"
)

// cursor is a position in a file as far as lines go: every byte before pos belongs to a line
// that was handed on (or to the skipped rest of a truncated line).
type cursor struct {
	pos  int64
	skip bool
	tail tail // the bytes just before pos
}

// tailedFile is one file identity being read.
type tailedFile struct {
	path string // where it was found; the events' origin
	real string // path with symlinks resolved
	id   fileID
	fp   fingerprint
	f    *os.File
	isGz bool         // gzip-compressed: read once, decompressed; offsets count decompressed bytes
	gz   *gzip.Reader // open decompressor positioned at readPos

	readPos int64  // next byte to read
	cur     cursor // after the last complete line seen
	commit  cursor // after the last line emitted (behind cur while a multiline record is pending)
	split   splitter
	join    *joiner
	joinAt  time.Time // when the pending record last grew

	// carry holds the bytes between cur.pos and readPos (an incomplete line) unless
	// carryInArena says they sit at the end of the current batch's arena.
	carry        []byte
	carryInArena bool

	atEOF     bool      // the last read reached the end
	partialAt time.Time // when an incomplete last line was first seen waiting at the end
	grewAt    time.Time // when bytes were last read
	rotated   bool      // no longer at a matched path: drain, then retire
	finished  bool      // follow = false: read to the end
	dirty     bool
	lastUse   time.Time
	// discoveredAt is when tda started reading this file.
	discoveredAt time.Time

	key        string // checkpoint key of the current identity
	emittedKey string // key of the last checkpoint emitted for this file
	emittedPos int64  // offset in the last checkpoint emitted (-1: none)
	cpPending  bool   // a checkpoint is due in the next batch
}

// shadow is a file that holds a copy of the start of a file being read, as copytruncate
// leaves beside it: it is not read (its lines are read from the original), and when the
// original is truncated its unread rest is read from the copy.
type shadow struct {
	of   *tailedFile
	size int64
}

// orphan is a stored checkpoint entry whose file is not being read.
type orphan struct {
	key       string
	e         *entry
	fp        fingerprint
	marker    uint64
	goneSince time.Time
	// registered is set for a file known only from the registry (begun, never checkpointed):
	// it is read from its start, and has no stored entry to delete.
	registered bool
}

// tailer is one run of the source.
type tailer struct {
	o   options
	m   *matcher
	log hclog.Logger
	out sdk.Output
	now func() time.Time

	files   map[fileID]*tailedFile // every file being read, active or draining
	byPath  map[string]*tailedFile // active files by the path they were found at
	byReal  map[string]*tailedFile // active files by resolved path
	orphans map[string]*orphan     // stored entries of files not being read, by key
	known   map[string]bool        // paths that had a checkpoint: never "seen for the first time"
	skipped map[fileID]bool        // gzip files left alone
	shadows map[fileID]shadow      // copies of files being read (copytruncate), not read themselves
	open    int

	dirty   []*tailedFile
	waiting map[*tailedFile]struct{} // files with a partial line or a pending multiline record
	drain   map[*tailedFile]struct{} // rotated files being read to their end

	b       batch
	deletes []string

	avgLine float64   // average line length seen, in bytes
	reg     *registry // identities tda began reading (nil: none kept)

	n            *notifier
	polling      bool
	lastRescan   time.Time
	rescanWanted bool
	nextFull     time.Time // next periodic rescan (or poll)
	status       string
	started      bool

	// returned receives the memory of emitted batches the agent is done with, when it hands
	// it back (sdk.Recycler); the next batches reuse it. Bounded: what does not fit is left
	// to the garbage collector.
	returnedArenas chan []byte
	returnedEvents chan []sdk.Event
}

// returnedBatches bounds the handed-back batches kept for reuse: about the batches the
// agent holds at once (in flight and for replay) come back, and a few are enough to
// allocate nothing while reading.
const returnedBatches = 1

func newTailer(o options, m *matcher, logger hclog.Logger, out sdk.Output) *tailer {
	return &tailer{o: o, m: m, log: logger, out: out, now: time.Now, avgLine: 128,
		files: map[fileID]*tailedFile{}, byPath: map[string]*tailedFile{}, byReal: map[string]*tailedFile{},
		orphans: map[string]*orphan{}, known: map[string]bool{}, skipped: map[fileID]bool{}, shadows: map[fileID]shadow{}, waiting: map[*tailedFile]struct{}{}, drain: map[*tailedFile]struct{}{},
		status: "\x00", returnedArenas: make(chan []byte, returnedBatches),
		returnedEvents: make(chan []sdk.Event, returnedBatches)}
}

func (t *tailer) close() {
	if t.n != nil {
		t.n.close()
	}
	if t.reg != nil {
		t.reg.close()
	}
	for _, f := range t.files {
		t.closeFile(f)
	}
}

// rescanMinGap spaces out rescans triggered by directory events.
const rescanMinGap = 100 * time.Millisecond

// drainPoll is how often rotated files are checked for late writes.
const drainPoll = 250 * time.Millisecond

func (t *tailer) run(ctx context.Context) error {
	t.loadCheckpoints()
	if t.o.follow {
		if t.o.poll {
			t.polling = true
		} else if n, err := newNotifier(t.log); err != nil {
			t.log.Warn("file notifications are not available; polling instead", "error", err,
				"poll_interval", t.o.pollInterval)
			t.polling = true
		} else {
			t.n = n
		}
	}
	if err := t.rescan(); err != nil {
		return err
	}
	t.started = true
	t.adoptOrphans()
	t.pruneOrphans()
	for {
		if err := t.readDirty(ctx); err != nil {
			return err
		}
		t.expire()
		if err := t.flush(ctx); err != nil {
			return err
		}
		if !t.o.follow {
			if len(t.dirty) == 0 {
				return nil
			}
			continue
		}
		if len(t.dirty) > 0 {
			continue
		}
		if err := t.wait(ctx); err != nil {
			return nil
		}
	}
}

// wait sleeps until a notification, the next deadline, or cancellation, then marks what
// needs reading.
func (t *tailer) wait(ctx context.Context) error {
	now := t.now()
	deadline := t.nextFull
	if t.rescanWanted {
		deadline = earliest(deadline, t.lastRescan.Add(rescanMinGap))
	}
	for f := range t.waiting {
		if f.join != nil && f.join.active {
			deadline = earliest(deadline, f.joinAt.Add(t.o.multilineTimeout))
		}
		if !f.partialAt.IsZero() && t.o.partialTimeout > 0 {
			deadline = earliest(deadline, f.partialAt.Add(t.o.partialTimeout))
		}
	}
	if len(t.drain) > 0 {
		deadline = earliest(deadline, now.Add(drainPoll))
	}
	d := deadline.Sub(now)
	if d < time.Millisecond {
		d = time.Millisecond
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	var wake chan struct{}
	if t.n != nil {
		wake = t.n.wake
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-wake:
	case <-timer.C:
	}
	t.collect()
	return nil
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// collect turns notifications and due timers into dirty files and rescans.
func (t *tailer) collect() {
	now := t.now()
	if t.n != nil {
		writes, rescan, overflow := t.n.take()
		unknown := false
		for p := range writes {
			if f := t.byPath[p]; f != nil {
				t.markDirty(f)
			} else if f := t.byReal[p]; f != nil {
				t.markDirty(f)
			} else {
				unknown = true
				if t.m.matches(p) {
					rescan = true
				}
			}
		}
		if unknown {
			// A write to a file renamed away (still draining) has its new name.
			for f := range t.drain {
				t.markDirty(f)
			}
		}
		if overflow {
			t.log.Warn("the file notification queue overflowed; checking every file")
			for _, f := range t.files {
				t.markDirty(f)
			}
			rescan = true
		}
		if rescan {
			t.rescanWanted = true
		}
	}
	if !now.Before(t.nextFull) || (t.rescanWanted && now.Sub(t.lastRescan) >= rescanMinGap) {
		if err := t.rescan(); err != nil {
			t.log.Error("rescan failed", "error", err)
		}
	}
	for f := range t.drain {
		t.markDirty(f)
	}
}

func (t *tailer) markDirty(f *tailedFile) {
	if !f.dirty {
		f.dirty = true
		t.dirty = append(t.dirty, f)
	}
}

// loadCheckpoints turns the stored entries into orphans until their files are found.
func (t *tailer) loadCheckpoints() {
	for key, val := range t.out.Checkpoints() {
		e, err := decodeEntry(val)
		if err != nil {
			t.log.Warn("ignoring an unreadable checkpoint entry", "key", key, "error", err)
			t.deletes = append(t.deletes, key)
			continue
		}
		fp, _ := e.fingerprint()
		marker, _ := e.marker()
		t.orphans[key] = &orphan{key: key, e: e, fp: fp, marker: marker, goneSince: t.now()}
		t.known[e.Path] = true
	}
	if t.reg == nil {
		return
	}
	for key, rec := range t.reg.records {
		id := fileID{Dev: rec.Dev, Ino: rec.Ino}
		fp, _ := (&entry{FP: rec.FP, FPLen: rec.FPLen}).fingerprint()
		covered := false
		for _, o := range t.orphans {
			if o.e.id() == id && (o.fp.Len >= fp.Len || o.e.Since.Equal(rec.Since)) {
				covered = true
				break
			}
		}
		if covered {
			continue
		}
		e := &entry{V: 1, Path: rec.Path, Dev: rec.Dev, Ino: rec.Ino, FPLen: rec.FPLen, FP: rec.FP,
			Seen: rec.Since, Since: rec.Since}
		t.orphans[key] = &orphan{key: key, e: e, fp: fp, goneSince: t.now(), registered: true}
		t.known[rec.Path] = true
	}
}

// register notes durably that tda began reading f.
func (t *tailer) register(f *tailedFile) {
	if t.reg == nil || !t.o.follow {
		return
	}
	if err := t.reg.add(f.path, f.id, f.fp, f.discoveredAt); err != nil {
		t.log.Warn("cannot record a file being read in the data directory", "path", f.path, "error", err)
	}
}

// rescan matches the patterns again: it finds new files, notices rotated and deleted ones,
// and checks every active file's size in case a notification was missed.
func (t *tailer) rescan() error {
	now := t.now()
	t.lastRescan = now
	t.rescanWanted = false
	if t.polling {
		t.nextFull = now.Add(t.o.pollInterval)
	} else {
		t.nextFull = now.Add(t.o.rescanInterval)
	}
	res := t.m.scan()
	t.reportScan(res)
	type found struct {
		path string
		st   os.FileInfo
	}
	byID := map[fileID]found{}
	var order []fileID
	for _, p := range res.files {
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		id := idOf(st)
		if _, dup := byID[id]; dup {
			continue // the same file through another path (a symlink)
		}
		byID[id] = found{p, st}
		order = append(order, id)
	}
	if !t.o.follow && !t.started {
		have := map[string]bool{}
		for _, fd := range byID {
			have[fd.path] = true
		}
		if err := t.checkLiteralPaths(have); err != nil {
			return err
		}
	}
	// Active files whose path no longer holds them were rotated away or deleted.
	for path, f := range t.byPath {
		if fd, ok := byID[f.id]; ok {
			if fd.path != path {
				t.move(f, fd.path)
			}
			if fd.st.Size() < f.readPos && f.f != nil && !f.isGz {
				// Truncated: handle it before a copy of it is taken for a new file.
				t.truncated(f)
			}
			continue
		}
		t.rotate(f, "the file was renamed away or deleted")
	}
	for _, id := range order {
		fd := byID[id]
		if f := t.files[id]; f != nil {
			if f.rotated {
				// Renamed back under a matched path.
				t.setRotated(f, false)
				t.move(f, fd.path)
			}
			if fd.st.Size() != f.readPos {
				t.markDirty(f)
			}
			continue
		}
		if t.skipped[id] || fd.st.Size() == 0 {
			// An empty file is taken up once it has bytes: until then it has no lines, and
			// it may be a copy that is about to be written.
			continue
		}
		if sh, ok := t.shadows[id]; ok {
			if t.files[sh.of.id] == sh.of && !sh.of.rotated && fd.st.Size() == sh.size {
				continue
			}
			delete(t.shadows, id)
		}
		t.discover(fd.path, id, fd.st)
	}
	if t.n != nil {
		dirs := map[string]bool{}
		for _, d := range res.dirs {
			dirs[d] = true
		}
		for _, f := range t.byPath {
			if f.real != "" && f.real != f.path {
				dirs[filepath.Dir(f.real)] = true
			}
		}
		if err := t.n.watchDirs(dirs); err != nil && !t.polling {
			t.log.Warn("cannot watch every directory for changes (raise fs.inotify.max_user_watches); polling instead",
				"error", err, "poll_interval", t.o.pollInterval)
			t.polling = true
			t.nextFull = now.Add(t.o.pollInterval)
		}
	}
	t.pruneOrphans()
	return nil
}

// checkLiteralPaths fails a one-shot read when a pattern without wildcards names a file that
// does not exist: the operator asked for that file.
func (t *tailer) checkLiteralPaths(have map[string]bool) error {
	for _, p := range t.m.patterns {
		if strings.ContainsAny(p.raw, "*?[{") {
			continue
		}
		path := filepath.Join(p.base, p.rest)
		if !have[path] {
			if _, err := os.Stat(path); err != nil {
				return err
			}
			return errors.New(path + ": not a regular file, or excluded")
		}
	}
	return nil
}

func (t *tailer) reportScan(res scanResult) {
	reason := ""
	if len(res.errs) > 0 {
		reason = res.errs[0].Error()
		if errors.Is(res.errs[0], fs.ErrPermission) {
			reason += " (give the user tda runs as read access to the log directory, e.g. the adm group)"
		}
	}
	if reason == t.status {
		return
	}
	t.status = reason
	if reason != "" {
		t.log.Warn("cannot read part of the paths", "error", reason)
		t.out.SetStatus(sdk.Status{Healthy: false, Reason: reason})
	} else if t.started {
		t.out.SetStatus(sdk.Status{Healthy: true})
	}
}

func idOf(st os.FileInfo) fileID {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return fileID{Dev: uint64(s.Dev), Ino: s.Ino}
	}
	return fileID{}
}

func (t *tailer) move(f *tailedFile, path string) {
	if t.byPath[f.path] == f {
		delete(t.byPath, f.path)
	}
	if t.byReal[f.real] == f {
		delete(t.byReal, f.real)
	}
	f.path = path
	f.real = realPath(path)
	t.byPath[path] = f
	t.byReal[f.real] = f
	t.markDirty(f)
}

func realPath(p string) string {
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		return p
	}
	if abs, err := filepath.Abs(r); err == nil {
		return abs
	}
	return r
}

// rotate marks an active file as gone from its path: it is read to its end and retired once
// it stayed unchanged for rotate_wait.
func (t *tailer) rotate(f *tailedFile, why string) {
	if t.byPath[f.path] == f {
		delete(t.byPath, f.path)
	}
	if t.byReal[f.real] == f {
		delete(t.byReal, f.real)
	}
	if f.f == nil {
		t.log.Warn("a closed file was rotated away; lines written after it was closed are lost (raise max_open_files)",
			"path", f.path)
		t.retire(f)
		return
	}
	t.log.Debug("draining rotated file", "path", f.path, "why", why)
	t.setRotated(f, true)
	// Rotations of this path that happened while tda was behind (blocked by backpressure)
	// were never seen at the path: read them too.
	t.adoptUnseen(f.path, f.discoveredAt)
	f.grewAt = t.now()
	t.markDirty(f)
}

// retire stops reading a file: what is pending is emitted and its checkpoint entry stays as
// an orphan until it is found again or forgotten.
func (t *tailer) retire(f *tailedFile) {
	t.flushPartial(f)
	t.flushRecord(f)
	t.closeFile(f)
	if t.files[f.id] == f {
		delete(t.files, f.id)
	}
	if t.byPath[f.path] == f {
		delete(t.byPath, f.path)
	}
	if t.byReal[f.real] == f {
		delete(t.byReal, f.real)
	}
	delete(t.waiting, f)
	t.setRotated(f, false)
	f.finished = true
	t.touch(f)
	if !t.o.follow {
		return
	}
	// The orphan describes the position the last emitted checkpoint will hold.
	key := entryKey(f.id, f.fp)
	e := t.entryFor(f)
	t.orphans[key] = &orphan{key: key, e: e, fp: f.fp, marker: f.commit.tail.hash(), goneSince: t.now()}
}

func (t *tailer) setRotated(f *tailedFile, rotated bool) {
	f.rotated = rotated
	if rotated {
		t.drain[f] = struct{}{}
	} else {
		delete(t.drain, f)
	}
}

func (t *tailer) closeFile(f *tailedFile) {
	if f.f != nil {
		_ = f.f.Close()
		f.f = nil
		t.open--
	}
}

// pruneOrphans deletes the entries of files gone for longer than forget_after.
func (t *tailer) pruneOrphans() {
	now := t.now()
	for key, o := range t.orphans {
		gone := o.goneSince
		if !t.started && o.e.Seen.Before(gone) {
			gone = o.e.Seen
		}
		if now.Sub(gone) >= t.o.forgetAfter {
			t.log.Debug("forgetting the checkpoint of a file gone for long", "path", o.e.Path, "gone_since", gone)
			delete(t.orphans, key)
			if !o.registered {
				t.deletes = append(t.deletes, key)
			}
		}
	}
}

// discover starts reading a file whose identity is not being read yet.
func (t *tailer) discover(path string, id fileID, st os.FileInfo) {
	fh, err := t.openFile(path)
	if err != nil {
		t.log.Warn("cannot open file", "path", path, "error", err)
		return
	}
	fst, err := fh.Stat()
	if err != nil || idOf(fst) != id {
		_ = fh.Close()
		t.open--
		t.rescanWanted = true // replaced between stat and open
		return
	}
	size := fst.Size()
	gz := isGzip(fh)
	if gz && !t.o.gzip {
		t.skipped[id] = true
		_ = fh.Close()
		t.open--
		return
	}
	f := t.newFile(path, realPath(path), id, fh)
	f.isGz = gz
	head := make([]byte, min(size, fingerprintBytes))
	n, _ := fh.ReadAt(head, 0)
	head = head[:n]
	f.fp = fingerprintOf(head)

	if l := t.copyOf(path, fh, head, size); l != nil {
		t.log.Debug("not reading a copy of a file being read", "path", path, "copy_of", l.path)
		t.shadows[id] = shadow{of: l, size: size}
		t.closeFile(f)
		return
	}
	switch o := t.findOrphan(fh, id, head, size); {
	case o != nil:
		t.resumeAt(f, o, size)
	case !t.started && t.o.readFromEnd && !t.known[path]:
		t.startAtEnd(f, size)
	default:
		t.log.Info("following file from the beginning", "path", path)
	}
	f.key = entryKey(f.id, f.fp)
	t.files[id] = f
	t.byPath[path] = f
	t.byReal[f.real] = f
	t.register(f)
	t.markDirty(f)
}

func (t *tailer) newFile(path, real string, id fileID, fh *os.File) *tailedFile {
	f := &tailedFile{path: path, real: real, id: id, f: fh, emittedPos: -1,
		split: splitter{maxLine: t.o.maxLine}, lastUse: t.now(), discoveredAt: t.now()}
	if t.o.multiline {
		f.join = &joiner{isStart: t.o.isStart, maxBytes: t.o.maxLine, maxLines: t.o.multilineLines}
	}
	return f
}

// rotatedName reports whether name looks like a rotated copy of base: base followed by a
// separator and a suffix, as logrotate names them (app.log.1, app.log-20261130).
func rotatedName(name, base string) bool {
	if len(name) <= len(base)+1 || !strings.HasPrefix(name, base) {
		return false
	}
	switch name[len(base)] {
	case '.', '-', '_':
		return true
	}
	return false
}

// copyOf returns the active file in the same directory of which the file at path is a copy:
// named like a rotated copy of it, same first bytes, not longer, and the same bytes at its
// end as the original at that offset.
func (t *tailer) copyOf(path string, fh *os.File, head []byte, size int64) *tailedFile {
	if size == 0 || !t.o.follow {
		return nil
	}
	dir := filepath.Dir(path)
	hashes := map[int]uint64{}
	for _, l := range t.byPath {
		if l.f == nil || l.isGz || l.fp.Len == 0 || l.fp.Len > len(head) || l.path == path ||
			filepath.Dir(l.path) != dir || !rotatedName(filepath.Base(path), filepath.Base(l.path)) {
			continue
		}
		h, ok := hashes[l.fp.Len]
		if !ok {
			h = hashBytes(head[:l.fp.Len])
			hashes[l.fp.Len] = h
		}
		if h != l.fp.Hash {
			continue
		}
		st, err := l.f.Stat()
		if err != nil || st.Size() < size {
			continue
		}
		n := min(size, markerBytes)
		a, b := make([]byte, n), make([]byte, n)
		if _, err := fh.ReadAt(a, size-n); err != nil {
			continue
		}
		if _, err := l.f.ReadAt(b, size-n); err != nil {
			continue
		}
		if string(a) == string(b) {
			return l
		}
	}
	return nil
}

// findOrphan returns the stored entry this file continues: the same identity (device, inode
// and fingerprint), or a copy of the entry's file (same fingerprint, and the same bytes before
// the saved offset) in the same directory, such as the copy copytruncate leaves.
func (t *tailer) findOrphan(fh *os.File, id fileID, head []byte, size int64) *orphan {
	var copyOf *orphan
	for _, o := range t.orphans {
		if o.fp.Len > len(head) || hashBytes(head[:o.fp.Len]) != o.fp.Hash {
			continue
		}
		if o.e.id() == id {
			return o
		}
		if copyOf == nil && size >= o.e.Offset && o.e.Offset > int64(o.fp.Len) &&
			filepath.Dir(o.e.Path) == filepath.Dir(fh.Name()) && markerMatches(fh, o.e.Offset, o.e.MarkerLen, o.marker) {
			copyOf = o
		}
	}
	return copyOf
}

func markerMatches(fh *os.File, offset int64, n int, want uint64) bool {
	if n == 0 {
		return true
	}
	if offset < int64(n) {
		return false
	}
	buf := make([]byte, n)
	if _, err := fh.ReadAt(buf, offset-int64(n)); err != nil {
		return false
	}
	return hashBytes(buf) == want
}

// resumeAt continues f from a stored entry, or from its start when the bytes before the
// stored offset are no longer the same.
func (t *tailer) resumeAt(f *tailedFile, o *orphan, size int64) {
	delete(t.orphans, o.key)
	if !o.registered {
		f.emittedKey = o.key
		f.emittedPos = o.e.Offset
	}
	if !o.e.Since.IsZero() {
		f.discoveredAt = o.e.Since
	}
	if o.fp.Len < f.fp.Len && o.e.id() == f.id {
		// Keep the stored key until the fingerprint can be extended at the next checkpoint.
		f.fp = o.fp
	}
	if f.isGz {
		// A compressed file does not change: its fingerprint is enough.
		f.cur = cursor{pos: o.e.Offset, skip: o.e.Skip}
		f.commit, f.readPos = f.cur, o.e.Offset
		f.split.skipping = o.e.Skip
		return
	}
	if o.e.Offset > size || !markerMatches(f.f, o.e.Offset, o.e.MarkerLen, o.marker) {
		t.log.Warn("the file changed under its saved offset; reading it again from the start",
			"path", f.path, "offset", o.e.Offset, "size", size)
		f.cpPending = true
		return
	}
	var buf []byte
	if o.e.MarkerLen > 0 {
		buf = make([]byte, o.e.MarkerLen)
		_, _ = f.f.ReadAt(buf, o.e.Offset-int64(o.e.MarkerLen))
	}
	c := cursor{pos: o.e.Offset, skip: o.e.Skip, tail: tail{}.advanced(buf)}
	f.cur, f.commit, f.readPos = c, c, o.e.Offset
	f.split.skipping = o.e.Skip
	if o.e.id() != f.id || o.e.Path != f.path {
		t.log.Info("resuming a file found under another name or as a copy", "path", f.path,
			"was", o.e.Path, "offset", o.e.Offset)
		f.cpPending = true
	}
	t.log.Info("following file from its checkpoint", "path", f.path, "offset", o.e.Offset)
}

// startAtEnd positions a file seen for the first time at its end (read_from = "end"). A last
// line still being written is skipped up to its newline.
func (t *tailer) startAtEnd(f *tailedFile, size int64) {
	if f.isGz {
		// An archive present at start is history: leave it.
		f.finished = true
		t.closeFile(f)
		return
	}
	c := cursor{pos: size}
	if size > 0 {
		n := min(size, markerBytes)
		buf := make([]byte, n)
		if _, err := f.f.ReadAt(buf, size-n); err == nil {
			c.tail = c.tail.advanced(buf)
			c.skip = buf[n-1] != '\n'
		}
	}
	f.cur, f.commit, f.readPos = c, c, size
	f.split.skipping = c.skip
	f.cpPending = true // so a restart does not jump over lines written meanwhile
	t.touch(f)
	t.log.Info("following file from its end", "path", f.path, "offset", size)
}

// adoptOrphans looks, once at start, for the files of stored entries that no pattern matches
// any more: a file renamed by rotation while tda was down (app.log -> app.log.1), or the copy
// copytruncate left. They are read from the saved offset to their end, then retired. Files
// rotated away while tda was down that it never saw (two rotations during the downtime) are
// read whole.
func (t *tailer) adoptOrphans() {
	if len(t.orphans) == 0 {
		return
	}
	var list []*orphan
	for _, o := range t.orphans {
		list = append(list, o)
	}
	// Stored entries first (they hold offsets), then files known only as begun; oldest first.
	sort.Slice(list, func(i, j int) bool {
		if list[i].registered != list[j].registered {
			return !list[i].registered
		}
		return list[i].e.Seen.Before(list[j].e.Seen)
	})
	// For each stream (path), when tda began reading its newest known file: rotations
	// written after that and never seen are unread.
	seen := map[string]time.Time{}
	for _, o := range list {
		since := o.e.Since
		if since.IsZero() {
			since = o.e.Seen
		}
		if since.After(seen[o.e.Path]) {
			seen[o.e.Path] = since
		}
		if t.orphans[o.key] == nil {
			continue
		}
		for _, c := range t.rotations(o.e.Path) {
			if t.files[c.id] == nil && t.adoptFile(c.path, c.id, o) {
				break
			}
		}
	}
	paths := make([]string, 0, len(seen))
	for p := range seen {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		t.adoptUnseen(p, seen[p])
	}
}

// mtimeSlack allows for file modification times, which the kernel takes from a coarse clock
// that can lag the time tda reads by some milliseconds.
const mtimeSlack = time.Second

// rotation is a file named as a rotation of a path.
type rotation struct {
	path  string
	id    fileID
	mtime time.Time
}

// rotations lists the regular files beside path named as its rotations (app.log.1,
// app.log-20261130), and path itself, oldest first.
func (t *tailer) rotations(path string) []rotation {
	dir, base := filepath.Dir(path), filepath.Base(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []rotation
	for _, de := range entries {
		name := de.Name()
		if (name != base && !rotatedName(name, base)) || (!t.o.gzip && strings.HasSuffix(name, ".gz")) {
			continue
		}
		p := filepath.Join(dir, name)
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		out = append(out, rotation{path: p, id: idOf(st), mtime: st.ModTime()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].mtime.Before(out[j].mtime) })
	return out
}

// adoptUnseen reads, from their start, the rotations of the stream at path that were written
// after since and that tda does not know: files that were created at path and rotated away
// while tda was stopped or behind. Copies of known files are left to the copy handling.
func (t *tailer) adoptUnseen(path string, since time.Time) {
	for _, c := range t.rotations(path) {
		if c.path == path || !c.mtime.After(since.Add(-mtimeSlack)) || t.files[c.id] != nil || t.skipped[c.id] {
			continue
		}
		if _, ok := t.shadows[c.id]; ok || t.m.matches(c.path) {
			continue // a copy, or a file the patterns select anyway
		}
		fh, err := t.openFile(c.path)
		if err != nil {
			continue
		}
		st, err := fh.Stat()
		if err != nil || idOf(st) != c.id || st.Size() == 0 || isGzip(fh) {
			t.closeFile(&tailedFile{f: fh})
			continue
		}
		head := make([]byte, min(st.Size(), fingerprintBytes))
		n, _ := fh.ReadAt(head, 0)
		head = head[:n]
		if t.knownContent(c.id, head) {
			t.closeFile(&tailedFile{f: fh})
			continue
		}
		f := t.newFile(path, c.path, c.id, fh)
		f.fp = fingerprintOf(head)
		f.key = entryKey(f.id, f.fp)
		f.cpPending = true
		// It was at the path before tda saw it: its successors may be older than now.
		f.discoveredAt = since
		t.log.Warn("reading a rotated file tda had not seen (rotated while tda was stopped or behind)",
			"path", c.path, "stream", path)
		t.files[c.id] = f
		t.setRotated(f, true)
		f.grewAt = t.now()
		t.register(f)
		t.markDirty(f)
	}
}

// knownContent reports whether a file with these first bytes is one tda knows: a stored entry
// of the same identity, or a copy of a file being read or of a stored entry.
func (t *tailer) knownContent(id fileID, head []byte) bool {
	match := func(fp fingerprint) bool {
		return fp.Len > 0 && fp.Len <= len(head) && hashBytes(head[:fp.Len]) == fp.Hash
	}
	for _, o := range t.orphans {
		if match(o.fp) {
			return true
		}
	}
	for _, f := range t.files {
		if match(f.fp) {
			return true
		}
	}
	return false
}

func (t *tailer) adoptFile(path string, id fileID, o *orphan) bool {
	fh, err := t.openFile(path)
	if err != nil {
		return false
	}
	fst, err := fh.Stat()
	if err != nil || idOf(fst) != id {
		_ = fh.Close()
		t.open--
		return false
	}
	head := make([]byte, min(fst.Size(), fingerprintBytes))
	n, _ := fh.ReadAt(head, 0)
	head = head[:n]
	if o.fp.Len > len(head) || hashBytes(head[:o.fp.Len]) != o.fp.Hash || (o.registered && o.e.id() != id) ||
		(o.e.id() != id && !(fst.Size() >= o.e.Offset && markerMatches(fh, o.e.Offset, o.e.MarkerLen, o.marker))) {
		_ = fh.Close()
		t.open--
		return false
	}
	f := t.newFile(o.e.Path, realPath(path), id, fh)
	f.fp = fingerprintOf(head)
	t.resumeAt(f, o, fst.Size())
	f.key = entryKey(f.id, f.fp)
	t.log.Info("reading the rest of a rotated file", "path", path, "was", o.e.Path, "offset", f.readPos)
	t.files[id] = f
	t.setRotated(f, true)
	f.grewAt = t.now()
	t.markDirty(f)
	return true
}

// openFile opens path for reading, closing idle files first when max_open_files is reached.
func (t *tailer) openFile(path string) (*os.File, error) {
	if t.open >= t.o.maxOpen {
		t.closeIdle()
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	t.open++
	return fh, nil
}

// closeIdle closes the least recently used active files that sit at their end.
func (t *tailer) closeIdle() {
	var idle []*tailedFile
	for _, f := range t.byPath {
		if f.f != nil && f.atEOF && !f.dirty {
			idle = append(idle, f)
		}
	}
	sort.Slice(idle, func(i, j int) bool { return idle[i].lastUse.Before(idle[j].lastUse) })
	for _, f := range idle {
		if t.open < t.o.maxOpen {
			return
		}
		t.closeFile(f)
	}
}

// reopen opens a closed active file again, if its path still holds the same file.
func (t *tailer) reopen(f *tailedFile) bool {
	fh, err := t.openFile(f.path)
	if err != nil {
		t.rescanWanted = true
		return false
	}
	st, err := fh.Stat()
	if err != nil || idOf(st) != f.id {
		_ = fh.Close()
		t.open--
		t.rescanWanted = true
		return false
	}
	f.f = fh
	return true
}

func isGzip(fh *os.File) bool {
	var magic [2]byte
	n, err := fh.ReadAt(magic[:], 0)
	return (err == nil || errors.Is(err, io.EOF)) && n == 2 && magic[0] == 0x1f && magic[1] == 0x8b
}
