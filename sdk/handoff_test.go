package sdk

import (
	"bytes"
	"errors"
	"testing"
)

// sent is a source's message as the server sends it: a buffer of home holding raw, held once
// by gRPC until it has written it.
func sent(home *memPool, raw []byte) ([]byte, *sentBuffer) {
	buf := home.Get(len(raw))
	copy(*buf, raw)
	return *buf, newSentBuffer(buf, home)
}

func pooled(home *memPool, b []byte) bool {
	home.mu.Lock()
	defer home.mu.Unlock()
	for _, f := range home.free {
		if &(*f)[:1][0] == &b[:1][0] {
			return true
		}
	}
	return false
}

func TestHandoffStoreKeepsBoundedAndTakesOnce(t *testing.T) {
	h := newHandoffStore()
	var home memPool
	batch := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 1000+i) }
	type keptBatch struct {
		id   uint64
		raw  []byte
		sent *sentBuffer
	}
	var all []keptBatch
	for i := 0; i < handoffMaxBatches+3; i++ {
		id := h.newID()
		raw, s := sent(&home, batch(i))
		h.keep(id, raw, s)
		s.Put(nil) // gRPC has written the message
		all = append(all, keptBatch{id, raw, s})
	}
	// The oldest went past the count bound, and their buffers back to the pool (the pool
	// keeps memPoolMax of them); the rest are held, each taken exactly once.
	for i, k := range all {
		got, buf, ok := h.take(k.id)
		if i < 3 {
			if ok {
				t.Fatalf("batch %d was kept past the bound of %d batches", i, handoffMaxBatches)
			}
			continue
		}
		if !ok || !bytes.Equal(got, batch(i)) || buf != k.sent {
			t.Fatalf("batch %d: ok %v, %d bytes", i, ok, len(got))
		}
		if _, _, again := h.take(k.id); again {
			t.Fatalf("batch %d taken twice", i)
		}
		if pooled(&home, k.raw) {
			t.Fatalf("batch %d's buffer went back to the pool while a processor holds it", i)
		}
		buf.release()
		if !pooled(&home, k.raw) {
			t.Fatalf("batch %d's buffer did not go back to the pool after its last holder", i)
		}
	}
	if h.size != 0 || len(h.held) != 0 {
		t.Fatalf("empty store holds %d bytes in %d batches", h.size, len(h.held))
	}

	// The byte bound: batches larger than it together leave only the newest.
	big := make([]byte, handoffMaxBytes/2+1)
	first, second := h.newID(), h.newID()
	raw1, s1 := sent(&home, big)
	raw2, s2 := sent(&home, big)
	h.keep(first, raw1, s1)
	h.keep(second, raw2, s2)
	if _, _, ok := h.take(first); ok {
		t.Fatal("the store went past its byte bound")
	}
	if _, _, ok := h.take(second); !ok {
		t.Fatal("the newest batch was evicted")
	}
}

func TestHandoffGoneIsRecognised(t *testing.T) {
	if !IsHandoffGone(handoffGone()) {
		t.Fatal("handoffGone is not recognised")
	}
	for _, err := range []error{nil, errors.New("handoff gone"), PanicStatus("process", "x")} {
		if IsHandoffGone(err) {
			t.Fatalf("%v taken for HANDOFF_GONE", err)
		}
	}
}
