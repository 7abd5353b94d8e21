package parse

import (
	"bytes"
	"fmt"
	"testing"
)

// splitPathReference is splitPath as it was written first, over bytes.Split: the fast one
// must give the same segments.
func splitPathReference(p []byte) [][]byte {
	var segs [][]byte
	for _, s := range bytes.Split(p, []byte("/")) {
		if len(s) > 0 {
			segs = append(segs, s)
		}
		if len(segs) > 32 {
			break
		}
	}
	return segs
}

func checkFoldAndSplit(t *testing.T, in []byte) {
	t.Helper()
	var buf [maxFolded]byte
	if got, want := fold(&buf, in), bytes.ToLower(in); !bytes.Equal(got, want) {
		t.Fatalf("fold(%q) = %q, bytes.ToLower gives %q", in, got, want)
	}
	got := splitPath(nil, in)
	want := splitPathReference(in)
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Fatalf("splitPath(%q) = %q, want %q", in, got, want)
	}
}

func TestFoldAndSplitPath(t *testing.T) {
	long := bytes.Repeat([]byte("/A"), 40)
	for _, in := range []string{
		"", "/", "//", "/api/v1/Users/7/DELETE", "Password/Reset", "/login/", "a//b///c",
		"/\u212Aelvin/users", // the Kelvin sign lowers to an ASCII k
		"/ÄRGER/Ünter", string(bytes.Repeat([]byte("x"), maxFolded)), string(bytes.Repeat([]byte("X"), maxFolded+1)),
		string(long), "\xff/\xfe",
	} {
		checkFoldAndSplit(t, []byte(in))
	}
}

func FuzzFoldAndSplitPath(f *testing.F) {
	for _, s := range []string{"/api/v1/Users/7/delete", "/\u212Aelvin", "a//b", "/PASSWORD/forgot"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkFoldAndSplit(t, in) })
}

// The access heuristics match path segments without allocating.
func TestAccessHeuristicsDoNotAllocate(t *testing.T) {
	p := New(Options{})
	segs := splitPath(nil, []byte("/api/v1/Users/700/Password"))
	var r result
	allocs := testing.AllocsPerRun(100, func() {
		r.reset()
		p.accessHeuristics([]byte("PATCH"), 204, segs, &r)
		p.isLoginPath(segs)
		userArea(segs)
		isDeleteUserSeg(segs[2])
	})
	if r.event != PasswordChanged {
		t.Fatalf("event %q, want %q", r.event, PasswordChanged)
	}
	if allocs != 0 {
		t.Fatalf("%v allocations per run, want 0", allocs)
	}
}
