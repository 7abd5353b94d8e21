//go:build !linux

package startpages

// Release does nothing where the memory map cannot be read (tda runs on Linux).
func Release() (int64, error) { return 0, nil }
