package ops

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzTrail feeds arbitrary bytes to the audit-trail reader, written in two appends split at
// any point: Refresh never fails or panics on content, every incident it keeps has its
// fingerprint, and reading the file in two steps gives the same incidents as reading it whole.
func FuzzTrail(f *testing.F) {
	f.Add([]byte(`{"ts":"2026-11-29T22:00:00Z","kind":"alert","rule":"mass_password_reset","severity":"HIGH","state":"firing","key":"203.0.113.7","count":12,"threshold":10,"window":"1m0s","first_seen":"2026-11-29T21:59:00Z","last_seen":"2026-11-29T22:00:00Z","fingerprint":"fp1","excerpt":["a"]}`+"\n"), uint16(40))
	f.Add([]byte("{\"kind\":\"alert\",\"fingerprint\":\"x\"}\n{\"kind\":\"alert\"\n\xff\xfe\n{}\n"), uint16(3))
	f.Add([]byte(`{"kind":"alert","fingerprint":"a","excerpt":null,"count":"x"}`+"\n"+`{"kind":"alert","fingerprint":"a","ts":"not a time"}`), uint16(70))
	f.Add([]byte("\n\n\r\n"), uint16(1))
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		at := int(cut) % (len(data) + 1)
		dir := t.TempDir()
		split := filepath.Join(dir, "split.jsonl")
		whole := filepath.Join(dir, "whole.jsonl")
		if err := os.WriteFile(split, data[:at], 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(whole, data, 0o600); err != nil {
			t.Fatal(err)
		}
		a := NewTrail(split)
		if err := a.Refresh(); err != nil {
			t.Fatalf("refresh: %v", err)
		}
		fh, err := os.OpenFile(split, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fh.Write(data[at:])
		fh.Close()
		if err := a.Refresh(); err != nil {
			t.Fatalf("refresh after the append: %v", err)
		}
		b := NewTrail(whole)
		if err := b.Refresh(); err != nil {
			t.Fatalf("refresh whole: %v", err)
		}
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
	})
}
