package file

import "testing"

// The tailer iterates what take returns while the pump goroutine records new writes: the two
// must never share a map, whether or not writes were pending.
func TestNotifierTakeNeverSharesItsMap(t *testing.T) {
	tests := []struct {
		name    string
		pending []string
	}{
		{"no writes pending", nil},
		{"writes pending", []string{"/var/log/app.log", "/var/log/web.log"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &notifier{writes: map[string]struct{}{}}
			for _, p := range tt.pending {
				n.writes[p] = struct{}{}
			}
			got, _, _ := n.take()
			if len(got) != len(tt.pending) {
				t.Fatalf("took %d writes, want %d", len(got), len(tt.pending))
			}
			n.writes["/var/log/later.log"] = struct{}{} // what the pump does next
			if _, shared := got["/var/log/later.log"]; shared {
				t.Fatal("take returned the map the pump keeps writing to")
			}
		})
	}
}
