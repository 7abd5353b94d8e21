package hclspec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

func TestFileFuncIsBounded(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, n int) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Repeat("s", n)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("secret", 32)
	write("limit", MaxFileFuncBytes-1)
	write("large", MaxFileFuncBytes)
	cases := []struct {
		path    string
		wantLen int
		wantErr string
	}{
		{"secret", 32, ""},
		{"limit", MaxFileFuncBytes - 1, ""},
		{"large", 0, "more than 1048576 bytes"},
		{"/dev/zero", 0, "more than 1048576 bytes"},
		{"missing", 0, "no such file"},
	}
	fn := fileFunc(dir)
	for _, c := range cases {
		v, err := fn.Call([]cty.Value{cty.StringVal(c.path)})
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("file(%q): %v, want an error with %q", c.path, err, c.wantErr)
			}
			continue
		}
		if err != nil || len(v.AsString()) != c.wantLen {
			t.Errorf("file(%q): %d bytes, %v", c.path, len(v.AsString()), err)
		}
	}
}
