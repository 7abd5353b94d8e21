package nats

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tda-dev/tda/sdk"
)

// Fields the fleet puts on every event it carries.
const (
	// FieldHost names the edge (host or replica) that read the line.
	FieldHost = "host"
	// fieldEvent is the parsers' event type; only events with one are published.
	fieldEvent = "event"
	// fieldLogPosition is a source's line number (plugins/internal/logpos), when it has one.
	fieldLogPosition = "log_position"
)

// partitionOf returns the partition of a key: FNV-1a over the key, modulo n. Every edge
// computes the same partition for the same key, so all events of one rule key are read by
// the one detector that owns the partition.
func partitionOf(key string, n int) int {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum64() % uint64(n))
}

// subjectOf returns the subject of a partition.
func subjectOf(prefix string, p int) string { return prefix + "." + strconv.Itoa(p) }

// keyOf returns an event's partition key: the values of the fields partition_by names for its
// event type, joined by NUL; "" for event types it does not name (they share one partition,
// as rules that count everything need).
func keyOf(ev *sdk.Event, by map[string][]string) string {
	fields := by[ev.Field(fieldEvent)]
	if len(fields) == 0 {
		return ""
	}
	var b strings.Builder
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(0)
		}
		b.WriteString(ev.Field(f))
	}
	return b.String()
}

// msgID returns the JetStream message id of an event, the same every time the same line is
// published again (a retry, or the source reading it again after a crash), so the stream
// stores it once. With a source's line number (log_position) it is host, origin and that
// number; otherwise host, origin, the event time, the line and nth, the number of identical
// (origin, time, line) events before it in the batch.
func msgID(host string, ev *sdk.Event, nth int) string {
	h := sha256.New()
	h.Write([]byte(host))
	h.Write([]byte{0})
	h.Write([]byte(ev.Origin))
	h.Write([]byte{0})
	if pos := ev.Field(fieldLogPosition); pos != "" {
		h.Write([]byte("pos"))
		h.Write([]byte{0})
		h.Write([]byte(pos))
	} else {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], uint64(ev.Time.UnixNano()))
		binary.BigEndian.PutUint64(b[8:], uint64(nth))
		h.Write(b[:])
		h.Write(ev.Line)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// encodeEvent is the message body: the event's canonical JSON (sdk.Event.AppendJSON).
func encodeEvent(b []byte, ev *sdk.Event) []byte { return ev.AppendJSON(b) }

// maxMessage bounds a message body the source accepts (NATS' default max_payload is 1 MiB).
const maxMessage = 1 << 20

// decodeEvent reads a message body. A body that is not an event is an error that names why;
// the source reports it and skips the message rather than stopping the partition.
func decodeEvent(data []byte) (sdk.Event, error) {
	var ev sdk.Event
	if len(data) > maxMessage {
		return ev, fmt.Errorf("message of %d bytes is larger than %d", len(data), maxMessage)
	}
	if err := ev.UnmarshalJSON(data); err != nil {
		return ev, fmt.Errorf("not a tda event: %w", err)
	}
	if ev.Kind == "" {
		ev.Kind = sdk.KindLog
	}
	if ev.Kind != sdk.KindLog {
		return ev, fmt.Errorf("an event of kind %q: the fleet stream carries log events", ev.Kind)
	}
	return ev, nil
}

// ensureStream creates the stream when it is missing and create_stream allows it; an
// existing stream is used as it is (an operator may have tuned it).
func ensureStream(ctx context.Context, js jetstream.JetStream, cc connConfig) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, cc.stream)
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) || !cc.create {
		return nil, fmt.Errorf("stream %s: %w", cc.stream, err)
	}
	s, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        cc.stream,
		Description: "tda fleet: detection events from edge agents, partitioned by rule key",
		Subjects:    []string{cc.subject + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    cc.replicas,
		MaxAge:      cc.maxAge,
		Duplicates:  cc.dupWindow,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
	})
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return js.Stream(ctx, cc.stream)
	}
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", cc.stream, err)
	}
	return s, nil
}
