//go:build unix

package jsonl

import (
	"os"
	"syscall"
)

func inode(f *os.File) uint64 {
	if f == nil {
		return 0
	}
	st, err := f.Stat()
	if err != nil {
		return 0
	}
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(s.Ino)
	}
	return 0
}
