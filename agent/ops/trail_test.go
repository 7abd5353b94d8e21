package ops

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, path, s string, appendTo bool) {
	t.Helper()
	flag := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if appendTo {
		flag = os.O_WRONLY | os.O_CREATE | os.O_APPEND
	}
	f, err := os.OpenFile(path, flag, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func fingerprints(t *testing.T, tr *Trail) string {
	t.Helper()
	if err := tr.Refresh(); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, in := range tr.Incidents() {
		out = append(out, in.Fingerprint+"="+in.State)
	}
	return strings.Join(out, " ")
}

func TestTrailFollowsAppendsRotationAndTruncation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "alerts.jsonl")
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := NewTrail(path)
	if got := fingerprints(t, tr); got != "" {
		t.Fatalf("missing file: %q", got)
	}
	writeFile(t, path, alertLine("a", "r", "HIGH", "firing", at), false)
	// A torn tail (no newline yet) is left for later.
	partial := alertLine("b", "r", "LOW", "firing", at.Add(time.Second))
	writeFile(t, path, partial[:20], true)
	if got := fingerprints(t, tr); got != "a=firing" {
		t.Fatalf("first read: %q", got)
	}
	writeFile(t, path, partial[20:], true)
	writeFile(t, path, "not json\n{\"kind\":\"audit\",\"fields\":{\"event\":\"override_enabled\"}}\n", true)
	writeFile(t, path, alertLine("a", "r", "HIGH", "resolved", at.Add(2*time.Second)), true)
	if got := fingerprints(t, tr); got != "a=resolved b=firing" {
		t.Fatalf("after appends: %q", got)
	}
	if m, _ := tr.Skipped(); m != 1 {
		t.Fatalf("malformed lines: %d", m)
	}
	// Rotation: the tail written to the old file before the rename is still read.
	writeFile(t, path, alertLine("c", "r", "HIGH", "firing", at.Add(3*time.Second)), true)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, alertLine("d", "r", "MEDIUM", "firing", at.Add(4*time.Second)), false)
	if got := fingerprints(t, tr); got != "d=firing c=firing a=resolved b=firing" {
		t.Fatalf("after rotation: %q", got)
	}
	// Truncation starts over without losing what was read.
	writeFile(t, path, alertLine("e", "r", "LOW", "firing", at.Add(5*time.Second)), false)
	if got := fingerprints(t, tr); !strings.HasPrefix(got, "e=firing d=firing") {
		t.Fatalf("after truncation: %q", got)
	}
	// A new reader starts with the rotated file, then the current one.
	if got := fingerprints(t, NewTrail(path)); got != "e=firing c=firing a=resolved b=firing" {
		t.Fatalf("fresh reader: %q", got)
	}
}

func TestTrailSkipsOversizedLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.jsonl")
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	huge := `{"kind":"alert","line":"` + strings.Repeat("x", MaxLineBytes+100) + "\"}\n"
	writeFile(t, path, alertLine("a", "r", "HIGH", "firing", at)+huge+alertLine("b", "r", "HIGH", "firing", at), false)
	tr := NewTrail(path)
	if got := fingerprints(t, tr); got != "a=firing b=firing" {
		t.Fatalf("got %q", got)
	}
	if _, o := tr.Skipped(); o != 1 {
		t.Fatalf("oversized: %d", o)
	}
}

func TestTrailKeepsExcerptAcrossRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alerts.jsonl")
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	resolved := strings.Replace(alertLine("a", "r", "HIGH", "resolved", at.Add(time.Minute)),
		`"excerpt":["password_changed user_id=1 actor=mallory"]`, `"excerpt":[]`, 1)
	writeFile(t, path, alertLine("a", "r", "HIGH", "firing", at)+resolved, false)
	tr := NewTrail(path)
	if err := tr.Refresh(); err != nil {
		t.Fatal(err)
	}
	in := tr.Incidents()[0]
	if in.State != "resolved" || len(in.Excerpt) != 1 || in.Records != 2 || in.Explanation == "" {
		t.Fatalf("incident: %+v", in)
	}
}
