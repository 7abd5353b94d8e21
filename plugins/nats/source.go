package nats

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tda-dev/tda/sdk"
)

// SourceSpec is the nats source's configuration schema.
func SourceSpec() *sdk.Spec {
	fields := append(connFields(),
		sdk.Field{Name: "group", Type: sdk.TypeString, Default: "detectors",
			Description: "The detectors that share the partitions: each partition is read by one member of the group at a time."},
		sdk.Field{Name: "member", Type: sdk.TypeString,
			Description: "This detector's name in the group, unique and stable across its restarts; default the host name."},
		sdk.Field{Name: "lease_ttl", Type: sdk.TypeDuration, Default: "10s",
			Description: "How long a partition's lease lasts without renewal (renewed every third of it): a dead detector's partitions move after at most this long."},
		sdk.Field{Name: "takeover_replay", Type: sdk.TypeDuration, Default: "15m",
			Description: "How far back a detector reads a partition it takes over without a position of its own, to rebuild the windows of incidents in progress: at least the longest rule window plus its lateness."},
		sdk.Field{Name: "bucket", Type: sdk.TypeString, Default: "tda_fleet_leases",
			Description: "The JetStream key-value bucket of the partition leases."},
		sdk.Field{Name: "max_batch", Type: sdk.TypeInt, Default: 512,
			Description: "Most events in one batch handed to the pipeline."},
		sdk.Field{Name: "max_unacked", Type: sdk.TypeInt, Default: 20000,
			Description: "Most messages of one partition read and not yet acknowledged (the consumer's max_ack_pending). Messages are acknowledged once the agent committed what they carried (every checkpoint_interval); a partition stops being read while this many wait for a commit, e.g. while a sink is stuck."},
	)
	return &sdk.Spec{
		Summary: "Read the fleet's detection events from a NATS JetStream stream, sharing the partitions with the other detectors.",
		Description: "A detector agent's source. Each partition is read by one member of group, " +
			"held through a lease in a JetStream key-value bucket; a dead member's partitions are " +
			"taken over within lease_ttl. The position read in each partition (its stream " +
			"sequence) is the source's checkpoint, committed by the agent with the rules' window " +
			"state once the sinks accepted what the events produced: a restarted detector goes on " +
			"from there. Each partition is read through a durable consumer (<group>_p<N>) whose " +
			"messages are acknowledged only once the agent committed them: its ack floor is the " +
			"detector's committed position, and each commit is also recorded as the partition's " +
			"judged position in the bucket <bucket>_positions. A detector taking over a partition " +
			"reads it from takeover_replay ago (or from its own older position), so the windows of " +
			"incidents in progress count every event; the events up to the previous holder's " +
			"judged position count without telling the incidents they open again.",
		Fields: fields,
		Example: `source "nats" "fleet" {
  servers   = ["nats://nats-1:4222", "nats://nats-2:4222", "nats://nats-3:4222"]
  replicas  = 3
  member    = env("HOSTNAME")
  lease_ttl = "10s"
  user      = "detector"
  password  = env("NATS_PASSWORD")
}`,
	}
}

// SourceComponent is source "nats".
func SourceComponent() sdk.Component {
	return sdk.SourceComponent("nats", SourceSpec(), func(c *sdk.Config, res sdk.Resources) (sdk.Source, error) {
		return NewSource(c, res)
	})
}

// Source reads the partitions this detector holds.
type Source struct {
	cc       connConfig
	group    string
	member   string
	leaseTTL time.Duration
	replay   time.Duration
	bucket   string
	maxBatch int
	// maxUnacked bounds the messages of a partition read and not acknowledged.
	maxUnacked int
	log        hclog.Logger
	// now is the clock (tests move it).
	now func() time.Time

	// commits: the committed sequences and acknowledgements of each partition, across the
	// runs of this instance (see acks.go).
	commits *commitBooks
	// nc is the current run's connection (nil between runs), for acknowledgements.
	connMu sync.Mutex
	nc     *nats.Conn
}

// NewSource builds source "nats" from its config.
func NewSource(c *sdk.Config, res sdk.Resources) (*Source, error) {
	cc, err := parseConnConfig(c)
	if err != nil {
		return nil, err
	}
	s := &Source{cc: cc, group: c.String("group"), member: c.String("member"), leaseTTL: c.Duration("lease_ttl"),
		replay: c.Duration("takeover_replay"), bucket: c.String("bucket"), maxBatch: int(c.Int("max_batch")),
		maxUnacked: int(c.Int("max_unacked")), log: res.Logger, now: time.Now, commits: newCommitBooks()}
	if s.member == "" {
		s.member, _ = os.Hostname()
	}
	if !validToken(s.group) {
		return nil, c.Errorf("group", "%q is not a group name: letters, digits, - and _ only", s.group)
	}
	if !validToken(s.member) {
		return nil, c.Errorf("member", "%q is not a member name: letters, digits, - and _ only (set member)", s.member)
	}
	if !validToken(s.bucket) {
		return nil, c.Errorf("bucket", "%q is not a bucket name: letters, digits, - and _ only", s.bucket)
	}
	if s.leaseTTL < time.Second {
		return nil, c.Errorf("lease_ttl", "lease_ttl must be at least 1s")
	}
	if s.replay <= 0 || s.replay >= cc.maxAge {
		return nil, c.Errorf("takeover_replay", "takeover_replay must be longer than 0s and shorter than max_age (%s)", sdk.FormatDuration(cc.maxAge))
	}
	if s.maxBatch < 1 || s.maxBatch > 100_000 {
		return nil, c.Errorf("max_batch", "max_batch must be between 1 and 100000")
	}
	if s.maxUnacked < s.maxBatch || s.maxUnacked > 1_000_000 {
		return nil, c.Errorf("max_unacked", "max_unacked must be between max_batch (%d) and 1000000", s.maxBatch)
	}
	if len(s.group)+len("_p")+4 > 64 {
		return nil, c.Errorf("group", "%q is too long: at most 58 characters (it names the partitions' consumers)", s.group)
	}
	return s, nil
}

// checkpointKey is the checkpoint entry of a partition: its last stream sequence emitted.
func (s *Source) checkpointKey(p int) string {
	return "nats:" + s.cc.stream + ":" + strconv.Itoa(p)
}

// positions reads the stream sequences saved for each partition.
func (s *Source) positions(cps map[string][]byte) map[int]uint64 {
	out := map[int]uint64{}
	for p := 0; p < s.cc.partitions; p++ {
		if v, ok := cps[s.checkpointKey(p)]; ok {
			if seq, err := strconv.ParseUint(string(v), 10, 64); err == nil {
				out[p] = seq
			}
		}
	}
	return out
}

// item is one message read from a partition. skip: it only moves the position (too old for
// the replay, or not an event).
type item struct {
	p      int
	seq    uint64
	ev     sdk.Event
	stored time.Time
	skip   bool
}

// Run implements sdk.Source.
func (s *Source) Run(ctx context.Context, out sdk.Output) error {
	// lastErr is the connection's last error (a refused login, a TLS failure), for the state.
	var lastErr atomicError
	nc, err := s.cc.connect(
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				lastErr.set(err)
			}
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) { lastErr.set(err) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { lastErr.set(err) }),
		nats.ConnectHandler(func(*nats.Conn) { lastErr.set(nil) }),
		nats.ReconnectHandler(func(*nats.Conn) { lastErr.set(nil) }))
	if err != nil {
		return err
	}
	defer nc.Close()
	s.connMu.Lock()
	s.nc = nc
	s.connMu.Unlock()
	defer func() {
		s.connMu.Lock()
		s.nc = nil
		s.connMu.Unlock()
	}()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	var kv, posKV jetstream.KeyValue
	for {
		cctx, cancel := context.WithTimeout(ctx, s.cc.timeout)
		_, err = ensureStream(cctx, js, s.cc)
		if err == nil {
			kv, err = ensureBucket(cctx, js, s.bucket, s.leaseTTL, s.cc.replicas)
		}
		if err == nil {
			posKV, err = ensureBucket(cctx, js, s.bucket+"_positions", 0, s.cc.replicas)
		}
		cancel()
		if err == nil {
			break
		}
		reason := fmt.Sprintf("cannot reach the fleet stream on %s: %v; retrying (check servers, credentials and that the stream exists)",
			strings.Join(s.cc.servers, ","), err)
		if !nc.IsConnected() {
			reason = connProblem(nc.Status(), lastErr.get(), "no partition is read") + "; retrying"
		}
		out.SetStatus(sdk.Status{Healthy: false, Reason: reason})
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}

	in := make(chan item, 2*s.maxBatch)
	st := newFleetStatus(s.cc.partitions, s.group, s.member)
	emitted := &emittedSeqs{m: map[int]uint64{}}
	positions := s.positions(out.Checkpoints())
	// The lease keeper and the readers are owned by Run: whatever ends it (a stop, or Emit
	// failing) cancels them first, then waits for them.
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.own(ctx, js, kv, posKV, positions, emitted, in, st)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.recordJudged(ctx, posKV, st)
	}()

	// Invariant: each stream sequence of a partition goes to the pipeline at most once per
	// run, in increasing order, and never one the saved checkpoint covers: seen[p] is the
	// newest sequence taken, and an older one (a stopped reader's last messages, a reader
	// restarted after a lease was lost and taken back) is dropped here.
	seen := map[int]uint64{}
	for p, seq := range positions {
		seen[p] = seq
	}

	batch := make([]sdk.Event, 0, s.maxBatch)
	last := map[int]uint64{}
	flush := func() error {
		if len(batch) == 0 && len(last) == 0 {
			return nil
		}
		cps := make([]sdk.Checkpoint, 0, len(last))
		for _, p := range sortedKeys(last) {
			cps = append(cps, sdk.Checkpoint{Key: s.checkpointKey(p), Value: []byte(strconv.FormatUint(last[p], 10))})
		}
		err := out.Emit(ctx, batch, cps...)
		if err == nil {
			emitted.set(last)
		}
		batch = make([]sdk.Event, 0, s.maxBatch)
		clear(last)
		return err
	}
	linger := time.NewTimer(time.Hour)
	defer linger.Stop()
	report := time.NewTicker(2 * time.Second)
	defer report.Stop()
	pending := false
	var reported sdk.Status
	for {
		select {
		case <-ctx.Done():
			return nil
		case it := <-in:
			if it.seq <= seen[it.p] {
				continue
			}
			seen[it.p] = it.seq
			last[it.p] = it.seq
			if !it.skip {
				batch = append(batch, it.ev)
				st.observe(it.ev.Field(FieldHost), it.ev.Time, it.stored, s.now())
			}
			if len(batch) >= s.maxBatch {
				if err := flush(); err != nil {
					return emitErr(ctx, err)
				}
				pending = false
				continue
			}
			if !pending {
				pending = true
				linger.Reset(20 * time.Millisecond)
			}
		case <-linger.C:
			pending = false
			if err := flush(); err != nil {
				return emitErr(ctx, err)
			}
		case <-report.C:
			// The state changes (and is logged) only when what it says changes.
			problem := ""
			if !nc.IsConnected() {
				problem = connProblem(nc.Status(), lastErr.get(), "no partition is read")
			}
			if now := st.status(problem, s.now()); now != reported {
				reported = now
				out.SetStatus(now)
			}
		}
	}
}

// emitErr is what Run returns when Emit failed: nothing when the source is being stopped,
// else the error (the agent restarts the source, which goes on from its checkpoints).
func emitErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("hand events to the pipeline: %w", err)
}

// emittedSeqs is the last stream sequence of each partition handed to the pipeline.
type emittedSeqs struct {
	mu sync.Mutex
	m  map[int]uint64
}

func (e *emittedSeqs) set(last map[int]uint64) {
	e.mu.Lock()
	for p, seq := range last {
		e.m[p] = seq
	}
	e.mu.Unlock()
}

func (e *emittedSeqs) get(p int) uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.m[p]
}

// own keeps the leases and runs one reader per partition held, until ctx ends; then it
// releases the leases so the other detectors take them at once.
//
// Judged positions: the positions bucket holds, per partition, the newest sequence its
// holder committed (recordJudged writes it after each commit). A detector taking a partition
// over from another member marks the events up to that sequence FieldReplayed: they rebuild
// its windows, and an incident they open is not told a second time; the events after it are
// judged as new, so an incident that crosses its threshold on one of them is told. A detector
// taking back its own partition after a restart marks nothing: the agent's checkpoints and
// de-duplicated deliveries cover its own restarts.
func (s *Source) own(ctx context.Context, js jetstream.JetStream, kv, posKV jetstream.KeyValue, pos map[int]uint64,
	emitted *emittedSeqs, in chan<- item, st *fleetStatus) {
	l := &leases{kv: kv, group: s.group, member: s.member, partitions: s.cc.partitions, owned: map[int]uint64{}}
	readers := map[int]context.CancelFunc{}
	var wg sync.WaitGroup
	stop := func(p int) {
		if cancel, ok := readers[p]; ok {
			cancel()
			delete(readers, p)
		}
	}
	defer func() {
		for p := range readers {
			stop(p)
		}
		wg.Wait()
		rctx, cancel := context.WithTimeout(context.Background(), s.cc.timeout)
		l.release(rctx)
		cancel()
	}()
	every := s.leaseTTL / 3
	t := time.NewTimer(0)
	defer t.Stop()
	var lagsAt time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, s.leaseTTL/2)
		lost, gained, err := l.round(rctx, s.now())
		cancel()
		for _, p := range lost {
			stop(p)
			s.log.Warn("partition lease lost: another detector reads it now", "partition", p)
		}
		for _, p := range gained {
			rc, cancel := context.WithCancel(ctx)
			readers[p] = cancel
			// Go on after what this run already handed over, or else the checkpoint; with
			// neither, read from takeover_replay ago.
			resume := max(pos[p], emitted.get(p))
			var replayUntil uint64
			if jp, err := s.judgedPosition(ctx, posKV, p); err == nil && jp.Member != s.member {
				replayUntil = jp.Seq
			}
			s.log.Info("partition taken", "partition", p, "resume_after", resume, "judged_by_others_until", replayUntil)
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.read(rc, js, p, resume, replayUntil, in)
			}()
		}
		held := sortedKeys(l.owned)
		st.setOwned(held, err)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("partition leases not renewed; retrying", "error", err)
		}
		// The consumers' ack floors and lag, for the state: every lagEvery, or twice a
		// lease_ttl when that is shorter.
		if now := s.now(); now.Sub(lagsAt) >= min(lagEvery, 2*s.leaseTTL) && len(held) > 0 {
			lagsAt = now
			lctx, cancel := context.WithTimeout(ctx, every)
			st.setLags(s.lags(lctx, js, held))
			cancel()
		}
		t.Reset(every)
	}
}

// lagEvery is how often the consumers' ack floors and lag are read for the state.
const lagEvery = 10 * time.Second

// recordJudged writes, after each commit, the committed sequence of every partition held to
// the positions bucket, until ctx ends. A partition no longer held is not written: its new
// holder records its own.
func (s *Source) recordJudged(ctx context.Context, posKV jetstream.KeyValue, st *fleetStatus) {
	written := map[int]uint64{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.commits.changed:
		}
		committed := s.commits.committed()
		for _, p := range st.held() {
			seq := committed[p]
			if seq == 0 || seq <= written[p] {
				continue
			}
			val, _ := json.Marshal(judgedPos{Member: s.member, Seq: seq})
			wctx, cancel := context.WithTimeout(ctx, s.cc.timeout)
			_, err := posKV.Put(wctx, positionKey(s.group, p), val)
			cancel()
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("judged position not recorded; the next commit records it", "partition", p, "error", err)
				}
				continue
			}
			written[p] = seq
		}
	}
}

// judgedPos is what the positions bucket holds for a partition.
type judgedPos struct {
	Member string `json:"member"`
	Seq    uint64 `json:"seq"`
}

func positionKey(group string, p int) string { return group + ".judged." + strconv.Itoa(p) }

func (s *Source) judgedPosition(ctx context.Context, posKV jetstream.KeyValue, p int) (judgedPos, error) {
	var jp judgedPos
	gctx, cancel := context.WithTimeout(ctx, s.cc.timeout)
	defer cancel()
	e, err := posKV.Get(gctx, positionKey(s.group, p))
	if err != nil {
		return jp, err
	}
	return jp, json.Unmarshal(e.Value(), &jp)
}

// fieldReplayed marks an event another detector had judged (the rules processor's
// FieldReplayed).
const fieldReplayed = "fleet_replayed"

// read delivers partition p after stream sequence resume (0: from takeover_replay ago) until
// ctx ends, marking the events up to replayUntil fieldReplayed. Messages stored before
// takeover_replay ago only move the position: their windows have closed.
//
// Its consumer starts after the partition's committed sequence, not after resume: what was
// handed over and not committed is read again (and dropped by Run as already seen), so the
// consumer's ack floor never passes the commit (see acks.go). Without a commit notification
// yet (an agent that sends none, or none so far), the start is resume, or the existing
// consumer's ack floor when that is lower (after a restart of the plugin alone, resume may
// be past the commit). A gap in the consumer's delivery sequence (messages lost on a
// connection that broke) recreates the consumer the same way.
func (s *Source) read(ctx context.Context, js jetstream.JetStream, p int, resume, replayUntil uint64, in chan<- item) {
	horizon := s.now().Add(-s.replay)
	book := s.commits.book(p, s.maxUnacked, s.ackFunc())
	if resume > 0 {
		if floor := s.ackFloor(ctx, js, p); floor > 0 && floor < resume {
			resume = floor
		}
	}
	for ctx.Err() == nil {
		start := resume + 1
		if c := book.committedSeq(); c > 0 {
			start = c + 1
		} else if resume == 0 {
			start = 0 // by time, from the horizon
		}
		cctx, cancel := context.WithTimeout(ctx, s.cc.timeout)
		cons, err := s.createConsumer(cctx, js, p, start, horizon)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("cannot read partition; retrying", "partition", p, "error", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		gen := book.reset(start)
		msgs, err := cons.Messages(jetstream.PullMaxMessages(min(2*s.maxBatch, s.maxUnacked)))
		if err != nil {
			book.close(gen)
			s.log.Warn("cannot read partition; retrying", "partition", p, "error", err)
			sleep(ctx, time.Second)
			continue
		}
		stopIt := context.AfterFunc(ctx, msgs.Stop)
		var delivered uint64 // the consumer's delivery sequence of the last message
		for {
			msg, err := msgs.Next()
			if err != nil {
				break
			}
			meta, err := msg.Metadata()
			if err != nil {
				continue
			}
			if delivered > 0 && meta.Sequence.Consumer != delivered+1 {
				s.log.Warn("messages lost on the way: reading the partition again from its commit",
					"partition", p, "expected_delivery", delivered+1, "delivery", meta.Sequence.Consumer)
				break
			}
			delivered = meta.Sequence.Consumer
			if err := book.received(gen, meta.Sequence.Stream, msg.Reply()); err != nil {
				s.log.Warn("acknowledgement not sent; the next commit sends it", "partition", p, "error", err)
			}
			it := item{p: p, seq: meta.Sequence.Stream, stored: meta.Timestamp}
			if meta.Timestamp.Before(horizon) {
				it.skip = true
			} else if ev, err := decodeEvent(msg.Data()); err != nil {
				it.skip = true
				s.log.Warn("message skipped: it is not a tda event", "partition", p, "seq", it.seq, "error", err)
			} else {
				if it.seq <= replayUntil {
					ev.SetField(fieldReplayed, "true")
				}
				it.ev = ev
			}
			resume = max(resume, it.seq)
			select {
			case in <- it:
			case <-ctx.Done():
				msgs.Stop()
			}
		}
		stopIt()
		msgs.Stop()
		book.close(gen)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// compile-time checks.
var (
	_ sdk.Source        = (*Source)(nil)
	_ sdk.CommitWatcher = (*Source)(nil)
	_ sdk.Sink          = (*Sink)(nil)
)
