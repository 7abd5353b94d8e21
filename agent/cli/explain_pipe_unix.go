//go:build unix

package cli

import (
	"io"
	"os"
	"syscall"
)

// openTracePipe makes path a named pipe and opens both its ends, so that the trace reaches
// standard output while the plugin writes it: the reading end is returned, and hold is a
// writing end of ours. Holding it, the reader sees no end of the trace before the plugin has
// opened the pipe (or failed before it could); closing it once the action has returned ends
// the trace. ok is false when there can be no pipe (the trace then goes through a file).
func openTracePipe(path string) (r io.ReadCloser, hold io.Closer, ok bool) {
	if syscall.Mkfifo(path, 0o600) != nil {
		return nil, nil, false
	}
	// The reading end first, without waiting for a writer; then ours, which finds it.
	rf, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		os.Remove(path)
		return nil, nil, false
	}
	wf, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		rf.Close()
		os.Remove(path)
		return nil, nil, false
	}
	return rf, wf, true
}
