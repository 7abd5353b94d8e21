package nats

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Acknowledgements tied to the agent's checkpoints.
//
// Each partition is read through a durable pull consumer of the stream, <group>_p<N>, with
// AckAll: acknowledging the message of stream sequence S acknowledges every message of the
// partition up to S.
//
// Invariant: a message is acknowledged only once the agent committed a checkpoint at or past
// its sequence, that is once every sink fed by the batches that carried it accepted them and
// the rules' state covering them is stored (sdk.CommitWatcher). So the consumer's ack floor
// never passes the detector's committed position, and a detector restarted after kill -9
// reads again exactly what was not acknowledged.
//
// How it keeps it: the reader records the reply subject of each message it receives in the
// partition's ackBook; Committed (the agent's commit notification) raises the book's
// committed sequence and acknowledges the newest recorded message at or below it. A reader
// (re)creates its consumer from the committed sequence + 1, never from what it had read:
// a consumer created further on would carry an ack floor past the commit.

// ackWait is how long JetStream waits for an acknowledgement before delivering a message
// again. Acknowledgements wait for a commit (every checkpoint_interval, longer while a sink
// is stuck); a redelivery is dropped by the source as already read, so this only bounds how
// often a stuck detector is sent its backlog again.
const ackWait = 2 * time.Minute

// consumerName is the durable consumer of partition p for group.
func consumerName(group string, p int) string { return group + "_p" + strconv.Itoa(p) }

// pendingAck is a message received and not acknowledged: its stream sequence and the
// subject an acknowledgement goes to.
type pendingAck struct {
	seq   uint64
	reply string
}

// ackBook is one partition's acknowledgements on its current consumer.
type ackBook struct {
	mu sync.Mutex
	// committed is the newest sequence the agent committed (never goes back).
	committed uint64
	// pending holds the messages received on the current consumer above what was
	// acknowledged, by sequence; at most limit (the consumer's max_ack_pending bounds it on
	// the server's side too; beyond it the oldest are forgotten, which only delays the ack
	// floor until a newer message is acknowledged).
	pending []pendingAck
	limit   int
	// open is false while no consumer is current (between readers, after the partition is
	// lost): nothing is acknowledged. gen numbers the consumers: a reader records and closes
	// only under the generation it reset (a reader stopping late never touches its
	// successor's book).
	open bool
	gen  uint64
	ack  func(reply string) error
	// acked is the newest sequence acknowledged on the current consumer.
	acked uint64
}

func newAckBook(limit int, ack func(reply string) error) *ackBook {
	return &ackBook{limit: limit, ack: ack}
}

// reset starts a new consumer whose first message is start (its ack floor is start-1) and
// returns its generation.
func (b *ackBook) reset(start uint64) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pending = b.pending[:0]
	b.open = true
	b.acked = max(start, 1) - 1
	b.gen++
	return b.gen
}

// close stops acknowledging on generation gen: its consumer is gone or belongs to another
// detector now.
func (b *ackBook) close(gen uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.gen != gen {
		return
	}
	b.pending = b.pending[:0]
	b.open = false
}

// received records a message of generation gen's consumer; one at or below the committed
// sequence (read again after a reader restarted) is acknowledged at once.
//
// Every acknowledgement is at or below the committed sequence, so even one that reaches a
// later consumer of the same name cannot move its ack floor past the commit.
func (b *ackBook) received(gen, seq uint64, reply string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open || gen != b.gen || seq <= b.acked || reply == "" {
		return nil
	}
	i := sort.Search(len(b.pending), func(i int) bool { return b.pending[i].seq >= seq })
	switch {
	case i < len(b.pending) && b.pending[i].seq == seq:
		b.pending[i].reply = reply // delivered again: the newest delivery's subject
	default:
		b.pending = append(b.pending, pendingAck{})
		copy(b.pending[i+1:], b.pending[i:])
		b.pending[i] = pendingAck{seq: seq, reply: reply}
		if len(b.pending) > b.limit {
			b.pending = append(b.pending[:0], b.pending[len(b.pending)-b.limit:]...)
		}
	}
	return b.flushLocked()
}

// commit raises the committed sequence and acknowledges up to it.
func (b *ackBook) commit(seq uint64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.committed = max(b.committed, seq)
	return b.flushLocked()
}

// committedSeq returns the newest committed sequence.
func (b *ackBook) committedSeq() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.committed
}

// flushLocked acknowledges the newest pending message at or below committed (AckAll covers
// the ones before it) and forgets them. b.mu is held.
func (b *ackBook) flushLocked() error {
	if !b.open {
		return nil
	}
	i := sort.Search(len(b.pending), func(i int) bool { return b.pending[i].seq > b.committed })
	if i == 0 {
		return nil
	}
	last := b.pending[i-1]
	if err := b.ack(last.reply); err != nil {
		return fmt.Errorf("acknowledge sequence %d: %w", last.seq, err)
	}
	b.acked = last.seq
	b.pending = append(b.pending[:0], b.pending[i:]...)
	return nil
}

// commitBooks is what the source knows of its commits across its runs in one plugin
// process: the committed sequence and the ack book of every partition it read.
type commitBooks struct {
	mu    sync.Mutex
	books map[int]*ackBook
	// changed is signalled (without blocking) when a commit raised a partition's sequence.
	changed chan struct{}
}

func newCommitBooks() *commitBooks {
	return &commitBooks{books: map[int]*ackBook{}, changed: make(chan struct{}, 1)}
}

// book returns partition p's book, making it with limit and ack the first time.
func (c *commitBooks) book(p, limit int, ack func(string) error) *ackBook {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.books[p]
	if !ok {
		b = newAckBook(limit, ack)
		c.books[p] = b
	}
	return b
}

// committed returns the committed sequence of every partition with one.
func (c *commitBooks) committed() map[int]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int]uint64, len(c.books))
	for p, b := range c.books {
		if s := b.committedSeq(); s > 0 {
			out[p] = s
		}
	}
	return out
}

// parseCommitted reads the partitions' sequences out of committed checkpoint entries; keys
// of other streams or malformed values are left out.
func (s *Source) parseCommitted(cps map[string][]byte) map[int]uint64 {
	prefix := "nats:" + s.cc.stream + ":"
	out := map[int]uint64{}
	for k, v := range cps {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok || v == nil {
			continue
		}
		p, err := strconv.Atoi(rest)
		if err != nil || p < 0 || p >= s.cc.partitions {
			continue
		}
		if seq, err := strconv.ParseUint(string(v), 10, 64); err == nil {
			out[p] = seq
		}
	}
	return out
}

// Committed implements sdk.CommitWatcher: it acknowledges, in each partition, the messages
// up to the committed sequence, and wakes the recorder of judged positions.
func (s *Source) Committed(_ context.Context, cps map[string][]byte) {
	raised := false
	for p, seq := range s.parseCommitted(cps) {
		b := s.commits.book(p, s.maxUnacked, s.ackFunc())
		before := b.committedSeq()
		if err := b.commit(seq); err != nil {
			s.log.Warn("acknowledgement not sent; the next commit sends it", "partition", p, "error", err)
		}
		raised = raised || seq > before
	}
	if raised {
		select {
		case s.commits.changed <- struct{}{}:
		default:
		}
	}
}

// ackFunc returns how the current run acknowledges a message (nothing while no run holds a
// connection).
func (s *Source) ackFunc() func(string) error {
	return func(reply string) error {
		s.connMu.Lock()
		nc := s.nc
		s.connMu.Unlock()
		if nc == nil {
			return errors.New("not connected")
		}
		return nc.Publish(reply, []byte("+ACK"))
	}
}

// createConsumer (re)creates partition p's durable consumer, delivering from stream sequence
// start, or from the time from when start is 0.
func (s *Source) createConsumer(ctx context.Context, js jetstream.JetStream, p int, start uint64, from time.Time) (jetstream.Consumer, error) {
	name := consumerName(s.group, p)
	if err := js.DeleteConsumer(ctx, s.cc.stream, name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("replace consumer %s: %w", name, err)
	}
	cfg := jetstream.ConsumerConfig{
		Durable:           name,
		Description:       "tda fleet: partition " + strconv.Itoa(p) + " of group " + s.group + ", read by " + s.member,
		FilterSubject:     subjectOf(s.cc.subject, p),
		AckPolicy:         jetstream.AckAllPolicy,
		AckWait:           ackWait,
		MaxAckPending:     s.maxUnacked,
		MaxDeliver:        -1,
		InactiveThreshold: time.Hour,
	}
	if start > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
	} else {
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &from
	}
	cons, err := js.CreateConsumer(ctx, s.cc.stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("create consumer %s: %w", name, err)
	}
	return cons, nil
}

// ackFloor returns the ack floor of partition p's consumer as it stands (0 when there is
// none).
func (s *Source) ackFloor(ctx context.Context, js jetstream.JetStream, p int) uint64 {
	cons, err := js.Consumer(ctx, s.cc.stream, consumerName(s.group, p))
	if err != nil {
		return 0
	}
	return cons.CachedInfo().AckFloor.Stream
}

// consumerLag is what tda state shows of a partition's consumer.
type consumerLag struct {
	ackFloor uint64 // the newest stream sequence acknowledged (with AckAll, all before it)
	lag      uint64 // messages not yet read plus read and not acknowledged
}

// lags reads the consumers of the partitions held.
func (s *Source) lags(ctx context.Context, js jetstream.JetStream, held []int) map[int]consumerLag {
	out := make(map[int]consumerLag, len(held))
	for _, p := range held {
		cons, err := js.Consumer(ctx, s.cc.stream, consumerName(s.group, p))
		if err != nil {
			continue
		}
		info, err := cons.Info(ctx)
		if err != nil {
			continue
		}
		out[p] = consumerLag{ackFloor: info.AckFloor.Stream, lag: info.NumPending + uint64(max(info.NumAckPending, 0))}
	}
	return out
}
