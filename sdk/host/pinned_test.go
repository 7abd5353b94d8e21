package host

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// echoBinary copies /bin/echo (an ELF binary: a memory file runs binaries, not scripts)
// into dir and returns its path and sha256.
func echoBinary(t *testing.T, dir string) (string, string) {
	t.Helper()
	b, err := os.ReadFile("/bin/echo")
	if err != nil {
		t.Skipf("no /bin/echo to run: %v", err)
	}
	path := filepath.Join(dir, "tda-plugin-echo")
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return path, hex.EncodeToString(sum[:])
}

func TestOpenPinnedFailures(t *testing.T) {
	dir := t.TempDir()
	path, sum := echoBinary(t, dir)
	other := strings.Repeat("0", 64)
	cases := []struct {
		name, path, pin string
		want            PinFailure
	}{
		{"not hex", path, "xyz", PinInvalid},
		{"short", path, sum[:62], PinInvalid},
		{"missing", filepath.Join(dir, "tda-plugin-gone"), sum, PinMissing},
		{"a directory", dir, sum, PinUnreadable},
		{"another checksum", path, other, PinMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			exe, err := OpenPinned(c.path, c.pin)
			var pe *PinError
			if !errors.As(err, &pe) || pe.Failure != c.want {
				exe.Close()
				t.Fatalf("OpenPinned = %v, want failure %d", err, c.want)
			}
			if c.want == PinMismatch && (pe.Got != sum || !strings.Contains(err.Error(), sum)) {
				t.Fatalf("a mismatch names the file's checksum: %v", err)
			}
		})
	}
	if os.Geteuid() != 0 {
		unreadable := filepath.Join(dir, "tda-plugin-unreadable")
		if err := os.WriteFile(unreadable, []byte("x"), 0o100); err != nil {
			t.Fatal(err)
		}
		_, err := OpenPinned(unreadable, sum)
		var pe *PinError
		if !errors.As(err, &pe) || pe.Failure != PinUnreadable {
			t.Fatalf("unreadable: %v", err)
		}
	}
}

// What runs is what was checked: the file replaced (renamed over) or rewritten in place
// after the check runs the checked bytes, never the new ones.
func TestPinnedRunsTheCheckedBytes(t *testing.T) {
	for _, how := range []string{"renamed over", "rewritten in place"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			path, sum := echoBinary(t, dir)
			exe, err := OpenPinned(path, sum)
			if err != nil {
				t.Fatal(err)
			}
			defer exe.Close()
			marker := filepath.Join(dir, "ran")
			evil := []byte("#!/bin/sh\ntouch " + marker + "\n")
			switch how {
			case "renamed over":
				tmp := filepath.Join(dir, "new")
				if err := os.WriteFile(tmp, evil, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(tmp, path); err != nil {
					t.Fatal(err)
				}
			default:
				if err := os.WriteFile(path, evil, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(path, "checked")
			var out bytes.Buffer
			cmd.Stdout = &out
			if err := exe.Start(cmd); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatal(err)
			}
			if out.String() != "checked\n" {
				t.Fatalf("output %q", out.String())
			}
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the replaced file ran")
			}
			// The plugin itself is never handed the descriptor of the checked copy.
			if cmd.Args[0] != path {
				t.Fatalf("argv[0] = %q", cmd.Args[0])
			}
		})
	}
}

func TestPinnedCopyCannotBeChanged(t *testing.T) {
	dir := t.TempDir()
	path, sum := echoBinary(t, dir)
	exe, err := OpenPinned(path, sum)
	if err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(exe.execPath, os.O_WRONLY, 0)
	if err == nil {
		_, err = w.Write([]byte("x"))
		w.Close()
	}
	if err == nil {
		t.Fatal("the checked copy could be written")
	}
	if err := exe.Close(); err != nil {
		t.Fatal(err)
	}
	// Once released, nothing starts from it (its descriptor may be another file's by now).
	if err := exe.Start(exec.Command(path)); err == nil || !strings.Contains(err.Error(), "released") {
		t.Fatalf("start after close: %v", err)
	}
}

func TestPrivateCopyFallback(t *testing.T) {
	dir := t.TempDir()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	path, sum := echoBinary(t, dir)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	exe, err := privateCopy(path, f, sum)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Dir(exe.execPath))
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("private directory: %v %v", st.Mode(), err)
	}
	cmd := exec.Command(path, "copy")
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := exe.Start(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil || out.String() != "copy\n" {
		t.Fatalf("%q %v", out.String(), err)
	}
	copyDir := exe.dir
	if err := exe.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(copyDir); !os.IsNotExist(err) {
		t.Fatalf("the private copy outlives Close: %v", err)
	}
	// A mismatch leaves no copy behind.
	f2, _ := os.Open(path)
	defer f2.Close()
	if _, err := privateCopy(path, f2, strings.Repeat("1", 64)); err == nil {
		t.Fatal("a mismatch was copied")
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// BenchmarkOpenPinned measures the check of a pinned binary the size of a bundled plugin
// (32 MiB): read once, hashed and copied into the sealed memory file.
func BenchmarkOpenPinned(b *testing.B) {
	data := bytes.Repeat([]byte("tda-plugin "), (32<<20)/11)
	path := filepath.Join(b.TempDir(), "tda-plugin-bench")
	if err := os.WriteFile(path, data, 0o755); err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256(data)
	pin := hex.EncodeToString(sum[:])
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		exe, err := OpenPinned(path, pin)
		if err != nil {
			b.Fatal(err)
		}
		exe.Close()
	}
}
