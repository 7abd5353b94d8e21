package pluginhost

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// StrayExecutables returns the executable files in dir whose names do not start with
// BinaryPrefix: the agent never runs them, which is easy to miss after copying a plugin in
// under its module's name.
func StrayExecutables(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), BinaryPrefix) || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || info.Mode()&0o111 == 0 {
			continue
		}
		out = append(out, filepath.Join(dir, e.Name()))
	}
	sort.Strings(out)
	return out
}
