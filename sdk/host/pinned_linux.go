package host

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// memoryCopy copies the binary into a memory file (memfd), hashing what it writes, seals the
// file against any change, and keeps a read-only descriptor of it: exec runs
// /proc/self/fd/N, which the child resolves to the same sealed file (the descriptor is
// close-on-exec, so the plugin does not inherit it). A writable descriptor would make exec
// fail with ETXTBSY on older kernels, hence the read-only reopen. errNoMemoryFile when the
// kernel has no memfd, refuses executable ones (vm.memfd_noexec = 2), or /proc is not
// mounted: the caller then makes a private copy.
func memoryCopy(path string, src io.Reader, want string) (*Executable, error) {
	// MFD_EXEC says the file is to be executed: kernels since 6.3 may otherwise make memory
	// files non-executable (vm.memfd_noexec); older ones do not know the flag (EINVAL).
	name := filepath.Base(path)
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
	if errors.Is(err, unix.EINVAL) {
		fd, err = unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoMemoryFile, err)
	}
	rw := os.NewFile(uintptr(fd), "memfd:"+filepath.Base(path))
	defer rw.Close()
	rwPath := fmt.Sprintf("/proc/self/fd/%d", rw.Fd())
	if _, err := os.Stat(rwPath); err != nil {
		return nil, fmt.Errorf("%w: %v", errNoMemoryFile, err)
	}
	if err := copyHashed(path, rw, src, want); err != nil {
		return nil, err
	}
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(rw.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		return nil, fmt.Errorf("seal the checked copy of %s: %w", path, err)
	}
	ro, err := os.Open(rwPath)
	if err != nil {
		return nil, fmt.Errorf("reopen the checked copy of %s: %w", path, err)
	}
	got, err := unix.FcntlInt(ro.Fd(), unix.F_GET_SEALS, 0)
	if err != nil || got&seals != seals {
		ro.Close()
		return nil, errors.Join(fmt.Errorf("the checked copy of %s is not sealed", path), err)
	}
	return &Executable{path: path, file: ro, execPath: fmt.Sprintf("/proc/self/fd/%d", ro.Fd())}, nil
}
