package file

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tda-dev/tda/sdk"
)

// batch is the events being gathered for the next Emit. Their lines are slices of arena (or
// of slab, for joined multiline records), which are handed over with the batch and never
// touched again.
type batch struct {
	events []sdk.Event
	arena  []byte
	// owner's incomplete line sits at arena[ownerStart:]; reading owner again continues it in
	// place.
	owner      *tailedFile
	ownerStart int
	// keep is the end of the last arena byte an event refers to.
	keep    int
	slab    []byte
	touched []*tailedFile
	// spareArena and spareEvents are the memory of the last emitted batch, when the output
	// was done with it once Emit returned (see sdk.EmitCopies): the next batch reuses it.
	spareArena  []byte
	spareEvents []sdk.Event
}

const (
	minRead      = 4 << 10
	minArena     = 16 << 10
	perFileQuota = 4 << 20  // bytes read from one file before the others get their turn
	rotatedQuota = 64 << 20 // the same for a rotated file being drained
)

// Field names of the markers the source sets.
const (
	fieldTruncated = "truncated"
	fieldPartial   = "partial"
)

// arenaMax is the largest arena: a batch's worth of bytes, and room for a whole line of
// max_line_bytes plus a read.
func (t *tailer) arenaMax() int {
	return max(t.o.batchBytes, t.o.maxLine+minRead+2)
}

// readDirty reads every file marked dirty, rotated files first so that a rotated file's last
// lines come before the first lines of its successor.
func (t *tailer) readDirty(ctx context.Context) error {
	if len(t.dirty) == 0 {
		return nil
	}
	list := t.dirty
	t.dirty = nil
	var again []*tailedFile
	for pass := 0; pass < 2; pass++ {
		for _, f := range list {
			if f.rotated != (pass == 0) || !f.dirty {
				continue
			}
			f.dirty = false
			more, err := t.readFile(ctx, f)
			if err != nil {
				return err
			}
			if more {
				again = append(again, f)
			}
		}
	}
	for _, f := range again {
		t.markDirty(f)
	}
	return nil
}

// readFile reads f until its end or its quota. It returns whether more is left to read.
func (t *tailer) readFile(ctx context.Context, f *tailedFile) (bool, error) {
	if f.finished || t.files[f.id] != f {
		return false, nil
	}
	if f.f == nil && !t.reopen(f) {
		return false, nil
	}
	f.lastUse = t.now()
	quota := perFileQuota
	if f.rotated {
		// A rotated file is drained in one go, so that its lines come before its successors'.
		quota = rotatedQuota
	}
	for quota > 0 {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if err := t.ensureRoom(ctx, f); err != nil {
			return false, err
		}
		b := &t.b
		regionStart := t.placeCarry(f)
		readAt := len(b.arena)
		room := b.arena[readAt:cap(b.arena)]
		var n int
		var err error
		if f.isGz {
			n, err = t.readGzip(f, room)
		} else {
			n, err = f.f.ReadAt(room, f.readPos)
		}
		failed := err != nil && !errors.Is(err, io.EOF)
		if failed && n == 0 {
			t.log.Warn("read failed; retrying at the next change", "path", f.path, "error", err)
			return false, nil
		}
		// Check after the read that the bytes before it are still those read earlier: if
		// not, the file was truncated and written again past our position meanwhile.
		if n > 0 && f.readPos > 0 && !f.isGz {
			if !t.stillSame(f, b.arena[regionStart:readAt]) {
				t.truncated(f)
				return true, nil
			}
		}
		now := t.now()
		if n > 0 {
			f.grewAt = now
			f.atEOF = false
			f.partialAt = time.Time{}
		}
		f.readPos += int64(n)
		b.arena = b.arena[:readAt+n]
		quota -= n
		t.consume(f, b.arena[regionStart:], regionStart, now)
		if len(b.events) >= t.o.batchLines {
			if err := t.flush(ctx); err != nil {
				return false, err
			}
		}
		if failed {
			t.log.Warn("read failed; retrying at the next change", "path", f.path, "error", err)
			return false, nil
		}
		if n < len(room) {
			return false, t.atEnd(f)
		}
	}
	return true, nil
}

// readGzip reads decompressed bytes of f at readPos into buf, like ReadAt.
func (t *tailer) readGzip(f *tailedFile, buf []byte) (int, error) {
	if f.gz == nil {
		if _, err := f.f.Seek(0, io.SeekStart); err != nil {
			return 0, err
		}
		zr, err := gzip.NewReader(f.f)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", f.path, err)
		}
		if _, err := io.CopyN(io.Discard, zr, f.readPos); err != nil {
			return 0, fmt.Errorf("%s: skipping to offset %d: %w", f.path, f.readPos, err)
		}
		f.gz = zr
	}
	n := 0
	for n < len(buf) {
		m, err := f.gz.Read(buf[n:])
		n += m
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return n, io.EOF
		default:
			// A stream cut short (still being compressed) or corrupt: start over from
			// readPos at the next change of the file.
			f.gz = nil
			return n, fmt.Errorf("%s: %w", f.path, err)
		}
	}
	return n, nil
}

// eventsCap estimates how many events the current arena will hold, so the batch's slice
// does not grow by copying.
func (t *tailer) eventsCap() int {
	avg := max(t.avgLine, 16)
	return int(float64(cap(t.b.arena))/avg*1.1) + 16
}

// ensureRoom makes sure the arena can take f's incomplete line and a read, emitting the
// batch and starting a new arena when it cannot.
func (t *tailer) ensureRoom(ctx context.Context, f *tailedFile) error {
	b := &t.b
	carry := len(f.carry)
	if f.carryInArena {
		carry = 0 // already in place
	}
	free := cap(b.arena) - len(b.arena)
	if b.arena != nil && free >= carry+minRead {
		return nil
	}
	if len(b.events) > 0 || len(b.touched) > 0 {
		if err := t.flush(ctx); err != nil {
			return err
		}
	}
	t.detachCarry()
	want := len(f.carry) + minArena
	if b.arena == nil {
		want = len(f.carry) + t.pendingHint(f)
	}
	// A batch's arena holds about batch_lines lines, unless a long line needs more room.
	limit := max(minArena, min(t.arenaMax(), int(float64(t.o.batchLines)*t.avgLine)))
	if want > limit {
		limit = t.arenaMax()
	}
	size := minArena
	for size < want && size < limit {
		size *= 2
	}
	size = min(size, limit)
	t.takeReturnedArena()
	// A spare a little smaller than the size wanted serves as well (the batch is a little
	// smaller); a larger one is cut to the size, which bounds the batch.
	if c := cap(b.spareArena); c >= len(f.carry)+minRead && c >= size-size/4 {
		b.arena, b.spareArena = b.spareArena[:0:min(c, size)], nil
	} else {
		b.arena = make([]byte, 0, size)
	}
	b.keep = 0
	return nil
}

// handBack returns the function the agent calls when it is done with an emitted batch's
// memory (sdk.Recycler): it queues the memory for reuse, or leaves it to the collector when
// enough is queued. It is called from any goroutine.
func (t *tailer) handBack(arena []byte, events []sdk.Event) func() {
	return func() {
		select {
		case t.returnedArenas <- arena[:0]:
		default:
		}
		select {
		case t.returnedEvents <- events[:0]:
		default:
		}
	}
}

// takeReturnedArena makes a handed-back arena the spare one when there is none.
func (t *tailer) takeReturnedArena() {
	if t.b.spareArena != nil {
		return
	}
	select {
	case a := <-t.returnedArenas:
		t.b.spareArena = a
	default:
	}
}

// takeReturnedEvents makes a handed-back events slice of at least n the spare one, unless
// the spare one is: smaller ones are dropped.
func (t *tailer) takeReturnedEvents(n int) {
	for cap(t.b.spareEvents) < n {
		select {
		case e := <-t.returnedEvents:
			if cap(e) > cap(t.b.spareEvents) {
				t.b.spareEvents = e
			}
		default:
			return
		}
	}
}

// pendingHint estimates how many bytes f has to read, to size a new arena.
func (t *tailer) pendingHint(f *tailedFile) int {
	st, err := f.f.Stat()
	if err != nil {
		return minArena
	}
	p := st.Size() - f.readPos
	if p < minArena {
		return minArena
	}
	if p > int64(t.arenaMax()) {
		return t.arenaMax()
	}
	return int(p)
}

// placeCarry puts f's incomplete line at the end of the arena and returns where it starts.
func (t *tailer) placeCarry(f *tailedFile) int {
	b := &t.b
	if f.carryInArena && b.owner == f {
		return b.ownerStart
	}
	t.detachCarry()
	start := len(b.arena)
	if len(f.carry) > 0 {
		b.arena = append(b.arena, f.carry...)
		f.carry = f.carry[:0]
		b.owner, b.ownerStart = f, start
		f.carryInArena = true
	}
	return start
}

// detachCarry copies the current arena owner's incomplete line out of the arena.
func (t *tailer) detachCarry() {
	b := &t.b
	if o := b.owner; o != nil {
		if o.carryInArena {
			o.carry = append(o.carry[:0], b.arena[b.ownerStart:]...)
			o.carryInArena = false
			b.arena = b.arena[:max(b.ownerStart, b.keep)]
		}
		b.owner = nil
	}
}

// consume splits region (f's bytes from cur.pos, starting at arena index base) into lines.
func (t *tailer) consume(f *tailedFile, region []byte, base int, now time.Time) {
	b := &t.b
	before := f.cur
	var fn lineFunc
	if f.join == nil {
		fn = func(line []byte, start, end int, truncated bool) {
			b.events = append(b.events, sdk.Event{Time: now, Kind: sdk.KindLog, Origin: f.path, Line: line})
			if truncated {
				b.events[len(b.events)-1].Fields = map[string]string{fieldTruncated: "true"}
			}
			b.keep = base + start + len(line)
		}
	} else {
		fn = func(line []byte, start, end int, truncated bool) {
			t.line(f, line, truncated, now, func() cursor {
				return cursor{pos: before.pos + int64(start), tail: before.tail.advanced(region[:start])}
			})
		}
	}
	if b.events == nil {
		n := t.eventsCap()
		t.takeReturnedEvents(n - n/4)
		if cap(b.spareEvents) >= n-n/4 {
			b.events, b.spareEvents = b.spareEvents[:0], nil
		} else {
			b.events = make([]sdk.Event, 0, n)
		}
	}
	nb := len(b.events)
	consumed := f.split.split(region, fn)
	if n := len(b.events) - nb; n > 0 && f.join == nil {
		// Track the average line length to size the next batch's event slice.
		t.avgLine = (t.avgLine*7 + float64(consumed)/float64(n)) / 8
	}
	t.advance(f, region[:consumed])
	if consumed < len(region) {
		b.owner, b.ownerStart = f, base+consumed
		f.carryInArena = true
		return
	}
	if b.owner == f {
		b.owner = nil
	}
	f.carryInArena = false
	b.arena = b.arena[:max(b.keep, base)]
}

// advance moves f's line cursor over consumed bytes.
func (t *tailer) advance(f *tailedFile, consumed []byte) {
	if len(consumed) == 0 {
		return
	}
	f.cur.pos += int64(len(consumed))
	f.cur.tail = f.cur.tail.advanced(consumed)
	f.cur.skip = f.split.skipping
	if f.join == nil {
		f.commit = f.cur
		t.touch(f)
	} else if !f.join.active {
		// Nothing pending: the consumed bytes were skipped ones.
		f.commit = f.cur
		t.touch(f)
	}
}

// line handles one line in multiline mode. startCursor gives the cursor at the line's start,
// which is where the record before it ends.
func (t *tailer) line(f *tailedFile, line []byte, truncated bool, now time.Time, startCursor func() cursor) {
	j := f.join
	if j.active && j.startsEvent(line) {
		t.emitRecord(f, startCursor())
	}
	j.add(line, truncated, now)
	f.joinAt = now
	t.waiting[f] = struct{}{}
}

// emitRecord emits f's pending multiline record, which ends at c.
func (t *tailer) emitRecord(f *tailedFile, c cursor) {
	ev, truncated, first, ok := f.join.take()
	if !ok {
		return
	}
	b := &t.b
	if cap(b.slab)-len(b.slab) < len(ev) {
		b.slab = make([]byte, 0, max(len(ev), 64<<10))
	}
	start := len(b.slab)
	b.slab = append(b.slab, ev...)
	e := sdk.Event{Time: first, Kind: sdk.KindLog, Origin: f.path, Line: b.slab[start:len(b.slab):len(b.slab)]}
	if truncated {
		e.Fields = map[string]string{fieldTruncated: "true"}
	}
	b.events = append(b.events, e)
	f.commit = c
	t.touch(f)
}

// flushRecord emits f's pending multiline record, if any, as complete.
func (t *tailer) flushRecord(f *tailedFile) {
	if f.join != nil && f.join.active {
		t.emitRecord(f, f.cur)
	}
}

// flushPartial emits f's incomplete last line as it is.
func (t *tailer) flushPartial(f *tailedFile) {
	b := &t.b
	f.partialAt = time.Time{}
	inArena := f.carryInArena && b.owner == f
	if !inArena && len(f.carry) == 0 {
		return
	}
	if !inArena && cap(b.arena)-len(b.arena) < len(f.carry) {
		t.detachCarry()
		b.arena = make([]byte, 0, max(minArena, len(f.carry)))
		b.keep = 0
	}
	base := t.placeCarry(f)
	region := b.arena[base:]
	now := t.now()
	before := f.cur
	consumed := f.split.flush(region, func(line []byte, start, end int, truncated bool) {
		if f.join != nil {
			t.line(f, line, truncated, now, func() cursor { return before })
			return
		}
		e := sdk.Event{Time: now, Kind: sdk.KindLog, Origin: f.path, Line: line}
		e.Fields = map[string]string{fieldPartial: "true"}
		if truncated {
			e.Fields[fieldTruncated] = "true"
		}
		b.events = append(b.events, e)
		b.keep = base + start + len(line)
	})
	if b.owner == f {
		b.owner = nil
	}
	f.carryInArena = false
	b.arena = b.arena[:max(b.keep, base)]
	t.advance(f, region[:consumed])
}

// atEnd handles a read that reached the end of f.
func (t *tailer) atEnd(f *tailedFile) error {
	f.atEOF = true
	if f.isGz {
		// A compressed file is complete: emit what is pending and leave it.
		f.gz = nil
		if !t.o.follow {
			t.retire(f)
			return nil
		}
		t.flushPartial(f)
		t.flushRecord(f)
		t.closeFile(f)
		f.finished = true
		return nil
	}
	st, err := f.f.Stat()
	if err == nil && st.Size() < f.readPos {
		t.truncated(f)
		return nil
	}
	if !t.o.follow {
		t.retire(f)
		return nil
	}
	if f.readPos > f.cur.pos && f.partialAt.IsZero() {
		f.partialAt = t.now()
		t.waiting[f] = struct{}{}
	}
	return nil
}

// stillSame reports whether the bytes before f's read position are still those read: if not,
// the file was truncated and written again past that position.
func (t *tailer) stillSame(f *tailedFile, carry []byte) bool {
	want := f.cur.tail.advanced(carry)
	if want.n == 0 {
		return true
	}
	var buf [markerBytes]byte
	if _, err := f.f.ReadAt(buf[:want.n], f.readPos-int64(want.n)); err != nil {
		return false
	}
	return string(buf[:want.n]) == string(want.bytes())
}

func (t *tailer) carryBytes(f *tailedFile) []byte {
	if f.carryInArena && t.b.owner == f {
		return t.b.arena[t.b.ownerStart:]
	}
	return f.carry
}

// truncated handles a file that was truncated (copytruncate, or `> file`): the rest of its
// old content is read from the copy copytruncate made, when there is one, and the file itself
// is read again from its start.
func (t *tailer) truncated(f *tailedFile) {
	t.log.Info("file was truncated; reading it again from the start", "path", f.path)
	path, fh, oldID := f.path, f.f, f.id
	next := t.newFile(path, f.real, oldID, fh)
	next.fp = fingerprint{Hash: hashBytes(nil)}
	next.key = entryKey(next.id, next.fp)
	if copyPath, cf := t.findCopy(f); cf != nil {
		st, _ := cf.Stat()
		t.log.Info("reading the rest of the truncated file from its copy", "path", path, "copy", copyPath,
			"offset", f.readPos)
		f.f = cf
		f.id = idOf(st)
		t.setRotated(f, true)
		f.atEOF = false
		f.grewAt = t.now()
		t.files[f.id] = f
		t.markDirty(f)
	} else {
		f.f = nil // the descriptor goes on with next
		t.retire(f)
	}
	t.files[oldID] = next
	t.byPath[path] = next
	t.byReal[next.real] = next
	t.markDirty(next)
}

// findCopy looks beside f for a copy of it holding the bytes f has not read yet: a file whose
// name starts with f's name, with the same first bytes, the same bytes before f's read
// position, and at least as long.
func (t *tailer) findCopy(f *tailedFile) (string, *os.File) {
	dir, base := filepath.Dir(f.path), filepath.Base(f.path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", nil
	}
	want := f.cur.tail.advanced(t.carryBytes(f))
	var best *os.File
	var bestPath string
	var bestSize int64
	for _, de := range entries {
		name := de.Name()
		if !rotatedName(name, base) || (!t.o.gzip && strings.HasSuffix(name, ".gz")) {
			continue
		}
		path := filepath.Join(dir, name)
		st, err := os.Stat(path)
		if err != nil || !st.Mode().IsRegular() || idOf(st) == f.id || t.files[idOf(st)] != nil ||
			st.Size() < f.readPos || st.Size() <= bestSize {
			continue
		}
		fh, err := os.Open(path)
		if err != nil {
			continue
		}
		head := make([]byte, f.fp.Len)
		n, _ := fh.ReadAt(head, 0)
		ok := n == f.fp.Len && hashBytes(head) == f.fp.Hash
		if ok && want.n > 0 {
			buf := make([]byte, want.n)
			_, err := fh.ReadAt(buf, f.readPos-int64(want.n))
			ok = err == nil && string(buf) == string(want.bytes())
		}
		if !ok {
			_ = fh.Close()
			continue
		}
		if best != nil {
			_ = best.Close()
		} else {
			t.open++
		}
		best, bestPath, bestSize = fh, path, st.Size()
	}
	return bestPath, best
}

// expire emits what waited long enough (partial lines, multiline records) and retires rotated
// files that stopped growing.
func (t *tailer) expire() {
	now := t.now()
	for f := range t.waiting {
		if !f.partialAt.IsZero() && t.o.partialTimeout > 0 && now.Sub(f.partialAt) >= t.o.partialTimeout {
			t.flushPartial(f)
		}
		if f.join != nil && f.join.active && now.Sub(f.joinAt) >= t.o.multilineTimeout {
			t.flushRecord(f)
		}
		if f.partialAt.IsZero() && (f.join == nil || !f.join.active) {
			delete(t.waiting, f)
		}
	}
	for f := range t.drain {
		if f.atEOF && !f.dirty && now.Sub(f.grewAt) >= t.o.rotateWait {
			t.log.Debug("done with rotated file", "path", f.path)
			t.retire(f)
		}
	}
}

// touch notes that f's checkpoint changed, for the next batch.
func (t *tailer) touch(f *tailedFile) {
	if !f.cpPending {
		f.cpPending = true
	}
	for _, g := range t.b.touched {
		if g == f {
			return
		}
	}
	t.b.touched = append(t.b.touched, f)
}

// entryFor builds f's checkpoint entry at its commit position.
func (t *tailer) entryFor(f *tailedFile) *entry {
	return &entry{Path: f.path, Dev: f.id.Dev, Ino: f.id.Ino, FPLen: f.fp.Len, FP: hex64(f.fp.Hash),
		Offset: f.commit.pos, MarkerLen: f.commit.tail.n, Marker: hex64(f.commit.tail.hash()),
		Skip: f.commit.skip, Seen: t.now().UTC(), Since: f.discoveredAt.UTC()}
}

func hex64(v uint64) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = digits[v&15]
		v >>= 4
	}
	return string(b[:])
}

// flush emits the gathered batch with the checkpoints of the files it moved.
func (t *tailer) flush(ctx context.Context) error {
	b := &t.b
	var cps []sdk.Checkpoint
	for _, f := range b.touched {
		if !f.cpPending {
			continue
		}
		f.cpPending = false
		if f.f != nil && f.fp.Len < fingerprintBytes && f.commit.pos > int64(f.fp.Len) {
			head := make([]byte, min(f.commit.pos, fingerprintBytes))
			if n, _ := f.f.ReadAt(head, 0); n == len(head) {
				f.fp = fingerprintOf(head)
			}
		}
		f.key = entryKey(f.id, f.fp)
		if f.emittedKey == f.key && f.emittedPos == f.commit.pos && !f.finished {
			continue
		}
		if f.emittedKey != "" && f.emittedKey != f.key {
			cps = append(cps, sdk.Checkpoint{Key: f.emittedKey, Delete: true})
			if o := t.orphans[f.emittedKey]; o != nil {
				delete(t.orphans, f.emittedKey)
			}
		}
		e := t.entryFor(f)
		cps = append(cps, sdk.Checkpoint{Key: f.key, Value: encodeEntry(e)})
		f.emittedKey, f.emittedPos = f.key, f.commit.pos
		if f.finished {
			if o := t.orphans[f.key]; o != nil {
				o.e = e
			}
		}
	}
	for _, k := range t.deletes {
		cps = append(cps, sdk.Checkpoint{Key: k, Delete: true})
	}
	t.deletes = t.deletes[:0]
	events := b.events
	t.detachCarry()
	arena := b.arena
	b.events = nil
	b.touched = b.touched[:0]
	b.arena = nil
	b.keep = 0
	b.slab = nil
	if len(events) == 0 && len(cps) == 0 {
		return nil
	}
	if r, ok := sdk.Recycles(t.out); ok {
		return r.EmitRecycled(ctx, events, arena, t.handBack(arena, events), cps...)
	}
	if err := t.out.Emit(ctx, events, cps...); err != nil {
		return err
	}
	if sdk.EmitCopies(t.out) {
		b.spareArena, b.spareEvents = arena[:0], events[:0]
	}
	return nil
}
