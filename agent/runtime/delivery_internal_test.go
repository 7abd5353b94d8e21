package runtime

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/agent/deadletter"
	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
)

func alertBatch(fps ...string) *host.Batch {
	events := make([]sdk.Event, len(fps))
	for i, fp := range fps {
		events[i] = sdk.Event{Kind: sdk.KindAlert, Alert: &sdk.Alert{Rule: "r", State: sdk.StateFiring, Fingerprint: fp}}
	}
	return host.NewBatch(events)
}

// The dead-letter store is bounded by count and bytes; when full it refuses new letters
// (loudly: ErrDeadLettersFull with what to do) and forgets none; its letters and figures
// survive a restart; with no state store it keeps letters in memory under the same bounds.
func TestDeadLetterStoreBoundsAndPersistence(t *testing.T) {
	dir := t.TempDir()
	for _, persisted := range []bool{true, false} {
		name := "memory"
		if persisted {
			name = "store"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			var store *state.Store
			if persisted {
				var err error
				if store, err = state.Open(dir, state.Options{}); err != nil {
					t.Fatal(err)
				}
			}
			rt := &Runtime{store: store, logger: hclog.NewNullLogger(), health: newHealth(), metrics: newMetrics()}
			d := newDeadLetters(rt)
			d.maxCount = 2
			cause := errors.New("webhook revoked (404 no_service)")
			l1, err := d.add("sink.slack.oncall", "", deadletter.ReasonRefused, cause, 1, alertBatch("a", "b"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.add("sink.slack.oncall", "", deadletter.ReasonRefused, cause, 1, alertBatch("c")); err != nil {
				t.Fatal(err)
			}
			_, err = d.add("sink.slack.oncall", "", deadletter.ReasonRefused, cause, 1, alertBatch("d"))
			if !errors.Is(err, ErrDeadLettersFull) || !strings.Contains(err.Error(), "tda deadletter list") {
				t.Fatalf("a third letter: %v", err)
			}
			if ls, _ := d.List(ctx); len(ls) != 2 || ls[0].ID != l1.ID || ls[0].Events != 2 || ls[0].Preview[0] != "alert r firing "+alertBatch("a").Events()[0].Alert.DeliveryKey() {
				t.Fatalf("list %+v", ls)
			}
			if err := d.Drop(ctx, l1.ID); err != nil {
				t.Fatal(err)
			}
			if err := d.Drop(ctx, l1.ID); !errors.Is(err, deadletter.ErrNotFound) {
				t.Fatalf("second drop: %v", err)
			}
			if _, err := d.add("sink.slack.oncall", "", deadletter.ReasonRefused, cause, 1, alertBatch("d")); err != nil {
				t.Fatalf("after a drop: %v", err)
			}
			if n := d.countFor("sink.slack.oncall"); n != 2 {
				t.Fatalf("count %d", n)
			}
			if !persisted {
				return
			}
			// A new runtime over the same store sees the same letters and figures.
			d2 := newDeadLetters(&Runtime{store: store, logger: hclog.NewNullLogger()})
			if err := d2.load(); err != nil {
				t.Fatal(err)
			}
			count, size := d2.totals()
			if c1, s1 := d.totals(); count != c1 || size != s1 || d2.countFor("sink.slack.oncall") != 2 {
				t.Fatalf("after reload %d letters %d bytes, before %d %d", count, size, c1, s1)
			}
			ls, _ := d2.List(ctx)
			_, events, err := d2.Show(ctx, ls[1].ID)
			if err != nil || len(events) != 1 {
				t.Fatalf("show: %v %d", err, len(events))
			}
			_ = store.Close()
		})
	}
}

func FuzzDecodeQueued(f *testing.F) {
	e := &queued{batch: alertBatch("a", "b"), n: 2}
	v, _ := encodeQueued(e)
	f.Add(v)
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0})
	f.Fuzz(func(t *testing.T, val []byte) {
		for _, load := range []bool{false, true} {
			q, err := decodeQueued([]byte("k"), val, load)
			if err == nil && (q.disk != len(val) || (load && q.batch == nil)) {
				t.Fatalf("decoded %+v from %d bytes", q, len(val))
			}
		}
		_, _, _ = decodeLetter(val, true)
	})
}
