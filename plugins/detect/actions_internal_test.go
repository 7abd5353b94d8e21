package detect

import (
	"reflect"
	"strings"
	"testing"
)

func TestLineWriter(t *testing.T) {
	long := strings.Repeat("x", maxPendingLine+10)
	tests := []struct {
		name   string
		writes []string
		want   []string
	}{
		{"lines in one write", []string{"a\nb\n"}, []string{"a", "b"}},
		{"a line across writes", []string{"a", "b\nc", "\n"}, []string{"ab", "c"}},
		{"blank lines", []string{"\n\n"}, []string{"", ""}},
		{"a last line without newline", []string{"a\nb"}, []string{"a", "b"}},
		{"a line longer than the bound goes in pieces", []string{long + "\n"}, []string{long[:maxPendingLine], long[maxPendingLine:]}},
		{"a line of the bound is one line", []string{long[:maxPendingLine] + "\nz"}, []string{long[:maxPendingLine], "z"}},
		{"a long line without newline", []string{long[:10], long[10:]}, []string{long[:maxPendingLine], long[maxPendingLine:]}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			w := &lineWriter{send: func(l string) { got = append(got, l) }}
			for _, s := range tc.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write: %d, %v", n, err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %d lines %.60q, want %d %.60q", len(got), got, len(tc.want), tc.want)
			}
			if len(w.pending) > 0 {
				t.Errorf("%d bytes left pending", len(w.pending))
			}
		})
	}
}
