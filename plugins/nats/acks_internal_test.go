package nats

import (
	"strconv"
	"strings"
	"testing"
)

// The ack book never acknowledges past the committed sequence, whatever the order of
// deliveries and commits, and a stale reader's generation never touches its successor's.
func TestAckBookNeverPassesTheCommit(t *testing.T) {
	type step struct {
		op  string // "recv gen seq", "commit seq", "reset start", "close gen"
		ack uint64 // the sequence acknowledged by this step (0: none)
	}
	tests := []struct {
		name  string
		limit int
		steps []step
	}{
		{"commit after the reads", 10, []step{
			{"reset 1", 0}, {"recv 1 3", 0}, {"recv 1 5", 0}, {"recv 1 9", 0},
			{"commit 5", 5}, {"commit 8", 0}, {"commit 9", 9}, {"commit 9", 0},
		}},
		{"reads after the commit are acknowledged at once", 10, []step{
			{"commit 7", 0}, {"reset 5", 0}, {"recv 1 5", 5}, {"recv 1 6", 6}, {"recv 1 8", 0}, {"commit 8", 8},
		}},
		{"a delivery again replaces the subject, out of order", 10, []step{
			{"reset 1", 0}, {"recv 1 4", 0}, {"recv 1 2", 0}, {"recv 1 4", 0}, {"commit 3", 2}, {"commit 4", 4},
		}},
		{"a stale generation is ignored", 10, []step{
			{"reset 1", 0}, {"recv 1 2", 0}, {"reset 1", 0}, {"recv 1 3", 0}, {"close 1", 0},
			{"recv 2 3", 0}, {"commit 3", 3},
		}},
		{"closed: nothing is acknowledged", 10, []step{
			{"reset 1", 0}, {"recv 1 2", 0}, {"close 1", 0}, {"commit 5", 0}, {"recv 1 3", 0},
		}},
		{"over the limit the oldest are forgotten", 2, []step{
			{"reset 1", 0}, {"recv 1 1", 0}, {"recv 1 2", 0}, {"recv 1 3", 0}, {"commit 1", 0}, {"commit 2", 2},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var acked []string
			b := newAckBook(tt.limit, func(reply string) error { acked = append(acked, reply); return nil })
			for i, st := range tt.steps {
				f := strings.Fields(st.op)
				n := func(j int) uint64 { v, _ := strconv.ParseUint(f[j], 10, 64); return v }
				before := len(acked)
				switch f[0] {
				case "recv":
					_ = b.received(n(1), n(2), "ack."+f[2])
				case "commit":
					_ = b.commit(n(1))
				case "reset":
					b.reset(n(1))
				case "close":
					b.close(n(1))
				}
				var got uint64
				if len(acked) > before {
					got, _ = strconv.ParseUint(strings.TrimPrefix(acked[len(acked)-1], "ack."), 10, 64)
				}
				if got != st.ack {
					t.Fatalf("step %d (%s): acknowledged %d, want %d", i, st.op, got, st.ack)
				}
				if got > b.committedSeq() {
					t.Fatalf("step %d (%s): acknowledged %d past the commit %d", i, st.op, got, b.committedSeq())
				}
			}
		})
	}
}
