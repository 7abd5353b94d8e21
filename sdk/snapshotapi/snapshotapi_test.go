package snapshotapi

import (
	"strings"
	"testing"
)

func TestSnapshotIDProblem(t *testing.T) {
	for _, tc := range []struct {
		id, want string
	}{
		{"tda-prod-manual-20261129t225705z", ""},
		{"rds:prod-2026-11-29-03-05", ""},
		{"arn:aws:rds:eu-west-1:123456789012:cluster-snapshot:shared-1", ""},
		{"", "empty"},
		{"9abc", "starts with a letter"},
		{"../../etc/passwd", "starts with a letter"},
		{"a/b", `not '/'`},
		{"a.json", `not '.'`},
		{"a b", `not ' '`},
		{"a\x00b", `not '\x00'`},
		{strings.Repeat("a", MaxSnapshotIDLength+1), "the limit is 255"},
	} {
		got := SnapshotIDProblem(tc.id)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("SnapshotIDProblem(%q) = %q, want %q", tc.id, got, tc.want)
		}
		if err := ValidSnapshotID(tc.id); (err == nil) != (tc.want == "") {
			t.Errorf("ValidSnapshotID(%q) = %v", tc.id, err)
		}
	}
}

// FuzzSnapshotID: whatever the id, one that passes can name no file but its own in a
// directory, and the check never panics.
func FuzzSnapshotID(f *testing.F) {
	for _, s := range []string{"tda-x-manual-1", "../x", "a:b", "", "a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if SnapshotIDProblem(id) != "" {
			return
		}
		if strings.ContainsAny(id, "/\\.\x00 \t\n") || len(id) > MaxSnapshotIDLength || id == "" {
			t.Fatalf("%q passed", id)
		}
	})
}
