package state

import (
	"errors"
	"fmt"
	"testing"
)

func TestScanFromAKey(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	path := []string{"queues", "sink.x.y"}
	if err := s.Update(func(tx *Tx) error {
		for _, k := range []string{"a", "c", "e", "g"} {
			if err := tx.Put(path, []byte(k), []byte("v"+k)); err != nil {
				return err
			}
		}
		return tx.Put(append(path, "nested"), []byte("z"), []byte("skip"))
	}); err != nil {
		t.Fatal(err)
	}
	errBoom := errors.New("boom")
	tests := []struct {
		after   []byte
		stopAt  string
		failAt  string
		want    string
		wantErr error
	}{
		{after: nil, want: "a,c,e,g,"},
		{after: []byte("c"), want: "e,g,"}, // strictly after an existing key
		{after: []byte("d"), want: "e,g,"}, // after a key that is not there
		{after: []byte("g"), want: ""},     // after the last
		{after: []byte("a"), stopAt: "e", want: "c,e,"},
		{after: nil, failAt: "c", want: "a,c,", wantErr: errBoom},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("after %q", tc.after), func(t *testing.T) {
			got := ""
			err := s.View(func(tx *Tx) error {
				return tx.Scan(path, tc.after, func(k, v []byte) error {
					got += string(k) + ","
					if string(v) != "v"+string(k) {
						t.Fatalf("value %q for %q", v, k)
					}
					switch string(k) {
					case tc.stopAt:
						return ErrStop
					case tc.failAt:
						return errBoom
					}
					return nil
				})
			})
			if got != tc.want || !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
	// A bucket that does not exist scans nothing.
	if err := s.View(func(tx *Tx) error {
		return tx.Scan([]string{"none"}, nil, func(k, v []byte) error { return errBoom })
	}); err != nil {
		t.Fatal(err)
	}
}
