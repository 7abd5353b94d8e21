package file

import (
	"errors"
	"sync"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/go-hclog"
)

// notifier turns fsnotify events into a set of written paths and a rescan request, which the
// tailer collects whenever it is ready, so a tailer blocked by backpressure never makes the
// kernel queue overflow.
type notifier struct {
	w      *fsnotify.Watcher
	logger hclog.Logger
	wake   chan struct{}
	done   chan struct{}

	mu       sync.Mutex
	writes   map[string]struct{}
	rescan   bool
	overflow bool
	watched  map[string]bool
}

func newNotifier(logger hclog.Logger) (*notifier, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	n := &notifier{w: w, logger: logger, wake: make(chan struct{}, 1), done: make(chan struct{}),
		writes: map[string]struct{}{}, watched: map[string]bool{}}
	go n.pump()
	return n, nil
}

func (n *notifier) pump() {
	defer close(n.done)
	for {
		select {
		case ev, ok := <-n.w.Events:
			if !ok {
				return
			}
			n.mu.Lock()
			if ev.Has(fsnotify.Write) {
				n.writes[ev.Name] = struct{}{}
			}
			if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
				n.rescan = true
			}
			n.mu.Unlock()
			n.signal()
		case err, ok := <-n.w.Errors:
			if !ok {
				return
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				n.mu.Lock()
				n.overflow = true
				n.mu.Unlock()
				n.signal()
				continue
			}
			n.logger.Warn("file notifications reported an error; files are still checked every rescan_interval", "error", err)
		}
	}
}

func (n *notifier) signal() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// take returns what happened since the last call. writes is a fresh map the caller owns.
func (n *notifier) take() (writes map[string]struct{}, rescan, overflow bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	rescan, overflow = n.rescan, n.overflow
	if len(n.writes) > 0 {
		// The caller owns the map it gets: the pump writes into a new one meanwhile.
		writes = n.writes
		n.writes = make(map[string]struct{}, len(writes))
	}
	n.rescan, n.overflow = false, false
	return writes, rescan, overflow
}

// watchDirs makes the set of watched directories equal to dirs. It returns the first error
// of a directory that could not be watched (e.g. the inotify watch limit).
func (n *notifier) watchDirs(dirs map[string]bool) error {
	var firstErr error
	for d := range dirs {
		if n.watched[d] {
			continue
		}
		if err := n.w.Add(d); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		n.watched[d] = true
	}
	for d := range n.watched {
		if !dirs[d] {
			_ = n.w.Remove(d)
			delete(n.watched, d)
		}
	}
	return firstErr
}

func (n *notifier) close() {
	_ = n.w.Close()
	<-n.done
}
