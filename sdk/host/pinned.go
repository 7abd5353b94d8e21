package host

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// MaxPluginSize bounds the size of a pinned plugin binary: its bytes are held in memory (or
// a private copy) from the check to every launch.
const MaxPluginSize = 512 << 20

// PinFailure says how a pin failed.
type PinFailure int

// The ways a pin fails.
const (
	// PinInvalid: the pin is not 64 hexadecimal digits.
	PinInvalid PinFailure = iota + 1
	// PinMissing: no file at the pinned path.
	PinMissing
	// PinUnreadable: the file cannot be opened or read, is not a regular file, or is too
	// large.
	PinUnreadable
	// PinMismatch: the file's sha256 is not the pinned one.
	PinMismatch
)

// PinError is why a pinned binary was not run. Nothing of the file was executed.
type PinError struct {
	Path    string
	Failure PinFailure
	// Want is the pinned checksum, Got the file's (PinMismatch only).
	Want, Got string
	Err       error
}

func (e *PinError) Error() string {
	switch e.Failure {
	case PinInvalid:
		return fmt.Sprintf("sha256 pin for %s is not 64 hex digits", e.Path)
	case PinMissing:
		return fmt.Sprintf("pinned plugin %s does not exist", e.Path)
	case PinMismatch:
		return fmt.Sprintf("plugin %s does not match its sha256 pin: the file's sha256 is %s, the pin is %s",
			e.Path, e.Got, e.Want)
	default:
		return fmt.Sprintf("pinned plugin %s cannot be read: %v", e.Path, e.Err)
	}
}

func (e *PinError) Unwrap() error { return e.Err }

// Executable is a plugin binary checked against its sha256 pin. It holds the very bytes it
// hashed where nobody else can change them (a sealed memory file on Linux, else a copy in a
// private directory) and runs those: replacing or rewriting the file at Path after the check
// changes nothing of what runs. Close releases it; a launched process keeps running.
type Executable struct {
	path string
	// mu keeps Close from releasing the descriptor while a process is being started from it.
	mu sync.RWMutex
	// file is the verified bytes, read-only; execPath names it for exec.
	file     *os.File
	execPath string
	// dir is the private directory of a copy, removed by Close ("" for a memory file).
	dir string
}

// OpenPinned reads the binary at path once, hashing the bytes as it copies them into a
// place of its own, and returns them as an Executable when their sha256 is pin (hex). Nothing
// of the file runs before this check, and nothing but these bytes runs after it.
func OpenPinned(path, pin string) (*Executable, error) {
	want := strings.ToLower(strings.TrimSpace(pin))
	if sum, err := hex.DecodeString(want); err != nil || len(sum) != sha256.Size {
		return nil, &PinError{Path: path, Failure: PinInvalid, Want: pin}
	}
	src, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &PinError{Path: path, Failure: PinMissing, Want: want, Err: err}
		}
		return nil, &PinError{Path: path, Failure: PinUnreadable, Want: want, Err: err}
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return nil, &PinError{Path: path, Failure: PinUnreadable, Want: want, Err: err}
	}
	if !st.Mode().IsRegular() {
		return nil, &PinError{Path: path, Failure: PinUnreadable, Want: want,
			Err: fmt.Errorf("not a regular file (%s)", st.Mode().Type())}
	}
	if st.Size() > MaxPluginSize {
		return nil, &PinError{Path: path, Failure: PinUnreadable, Want: want,
			Err: fmt.Errorf("%d bytes, more than the %d a plugin may have", st.Size(), MaxPluginSize)}
	}
	e, err := copyVerified(path, src, want)
	if err != nil {
		var pe *PinError
		if errors.As(err, &pe) {
			return nil, err
		}
		return nil, &PinError{Path: path, Failure: PinUnreadable, Want: want, Err: err}
	}
	return e, nil
}

// copyVerified copies src into a memory file, or a private copy where memory files are not
// available, hashing what it writes.
func copyVerified(path string, src io.Reader, want string) (*Executable, error) {
	e, err := memoryCopy(path, src, want)
	if !errors.Is(err, errNoMemoryFile) {
		return e, err
	}
	return privateCopy(path, src, want)
}

var errNoMemoryFile = errors.New("memory files are not available")

// copyHashed copies at most MaxPluginSize bytes of src to dst and checks their sha256.
func copyHashed(path string, dst io.Writer, src io.Reader, want string) error {
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(dst, h), io.LimitReader(src, MaxPluginSize+1))
	if err != nil {
		return fmt.Errorf("copy %s: %w", path, err)
	}
	if n > MaxPluginSize {
		return &PinError{Path: path, Failure: PinUnreadable, Want: want,
			Err: fmt.Errorf("more than the %d bytes a plugin may have", MaxPluginSize)}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return &PinError{Path: path, Failure: PinMismatch, Want: want, Got: got}
	}
	return nil
}

// privateCopy writes the verified bytes to a fresh directory only this user can enter, as
// a file nobody can write: another user cannot swap it between the check and exec.
func privateCopy(path string, src io.Reader, want string) (*Executable, error) {
	dir, err := os.MkdirTemp("", "tda-pinned-")
	if err != nil {
		return nil, fmt.Errorf("a private directory for the checked copy of %s: %w", path, err)
	}
	dst := filepath.Join(dir, filepath.Base(path))
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o700)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	err = copyHashed(path, f, src, want)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(dst, 0o500)
	}
	var ro *os.File
	if err == nil {
		ro, err = os.Open(dst)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return &Executable{path: path, file: ro, execPath: dst, dir: dir}, nil
}

// Path is the binary's configured path: the name the process is known by (argv[0], logs).
func (e *Executable) Path() string { return e.path }

// Start starts cmd running the verified bytes: cmd's own Path is replaced by theirs, its
// arguments (argv[0] included) stay. It fails once the Executable is closed: the descriptor
// number it named may by then belong to another file.
func (e *Executable) Start(cmd *exec.Cmd) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.file == nil {
		return fmt.Errorf("the checked copy of %s was released; load the configuration again", e.path)
	}
	cmd.Path, cmd.Err = e.execPath, nil
	return cmd.Start()
}

// Close releases the verified bytes. Processes already started keep running.
func (e *Executable) Close() error {
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.file == nil {
		return nil
	}
	err := e.file.Close()
	e.file = nil
	if e.dir != "" {
		if rerr := os.RemoveAll(e.dir); err == nil {
			err = rerr
		}
	}
	return err
}
