package ops

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// trailSeeds are the seed inputs of FuzzTrail: trail content and where to split it.
var trailSeeds = []struct {
	data []byte
	cut  uint16
}{
	{[]byte(`{"ts":"2026-11-29T22:00:00Z","kind":"alert","rule":"mass_password_reset","severity":"HIGH","state":"firing","key":"203.0.113.7","count":12,"threshold":10,"window":"1m0s","first_seen":"2026-11-29T21:59:00Z","last_seen":"2026-11-29T22:00:00Z","fingerprint":"fp1","excerpt":["a"]}` + "\n"), 40},
	{[]byte("{\"kind\":\"alert\",\"fingerprint\":\"x\"}\n{\"kind\":\"alert\"\n\xff\xfe\n{}\n"), 3},
	{[]byte(`{"kind":"alert","fingerprint":"a","excerpt":null,"count":"x"}` + "\n" + `{"kind":"alert","fingerprint":"a","ts":"not a time"}`), 70},
	{[]byte("\n\n\r\n"), 1},
}

// checkSplitRead checks what a trail read in two steps (a, the content up to a cut, then the
// rest appended) kept against the same content read whole (b).
func checkSplitRead(t *testing.T, a, b *Trail, at int) {
	t.Helper()
	got, want := a.Incidents(), b.Incidents()
	if len(got) > MaxIncidents {
		t.Fatalf("%d incidents kept", len(got))
	}
	for _, in := range got {
		if in.Fingerprint == "" {
			t.Fatalf("an incident without a fingerprint: %+v", in)
		}
	}
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(want)
	if string(gj) != string(wj) {
		t.Fatalf("read in two steps (cut at %d):\n%s\nread whole:\n%s", at, gj, wj)
	}
}

// FuzzTrail feeds arbitrary bytes to the audit-trail reader, appended in two steps split at
// any point: reading never fails or panics on content, every incident it keeps has its
// fingerprint, and reading the content in two steps gives the same incidents as reading it
// whole. It reads from memory through readAt, the path of all content in Refresh, so an
// execution costs no file system call; TestTrailFileReadInTwoSteps runs the same check
// through Refresh and real files.
func FuzzTrail(f *testing.F) {
	for _, s := range trailSeeds {
		f.Add(s.data, s.cut)
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		at := int(cut) % (len(data) + 1)
		a := NewTrail("")
		if err := a.readAt(bytes.NewReader(data[:at]), 0); err != nil {
			t.Fatalf("read: %v", err)
		}
		// The file after the append: the same bytes up to the cut, then the rest.
		if err := a.readAt(bytes.NewReader(data), a.offset); err != nil {
			t.Fatalf("read after the append: %v", err)
		}
		b := NewTrail("")
		if err := b.readAt(bytes.NewReader(data), 0); err != nil {
			t.Fatalf("read whole: %v", err)
		}
		checkSplitRead(t, a, b, at)
	})
}

// TestTrailFileReadInTwoSteps is FuzzTrail's check through Refresh and real files, for every
// seed at every cut.
func TestTrailFileReadInTwoSteps(t *testing.T) {
	dir := t.TempDir()
	for i, s := range trailSeeds {
		for at := 0; at <= len(s.data); at++ {
			split := filepath.Join(dir, "split.jsonl")
			whole := filepath.Join(dir, "whole.jsonl")
			if err := os.WriteFile(split, s.data[:at], 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(whole, s.data, 0o600); err != nil {
				t.Fatal(err)
			}
			a := NewTrail(split)
			if err := a.Refresh(); err != nil {
				t.Fatalf("seed %d: refresh: %v", i, err)
			}
			fh, err := os.OpenFile(split, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fh.Write(s.data[at:]); err != nil {
				t.Fatal(err)
			}
			if err := fh.Close(); err != nil {
				t.Fatal(err)
			}
			if err := a.Refresh(); err != nil {
				t.Fatalf("seed %d: refresh after the append: %v", i, err)
			}
			b := NewTrail(whole)
			if err := b.Refresh(); err != nil {
				t.Fatalf("seed %d: refresh whole: %v", i, err)
			}
			checkSplitRead(t, a, b, at)
		}
	}
}
