package nats

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tda-dev/tda/sdk"
)

// SinkSpec is the nats sink's configuration schema.
func SinkSpec() *sdk.Spec {
	fields := append(connFields(),
		sdk.Field{Name: "host", Type: sdk.TypeString,
			Description: "The edge's name put on every event as the field host (e.g. the replica or pod name); default the machine's host name. Alerts count per host."},
		sdk.Field{Name: "events", Type: sdk.TypeStringList,
			Description: "The event types to publish (the parsers' event field, e.g. [\"password_changed\", \"login_failed\"]); default every detection event. Lines that are not detection events are never published: the raw capture stays local."},
		sdk.Field{Name: "partition_by", Type: sdk.TypeStringMap,
			Description: "Event type -> comma-separated fields that make its partition key, e.g. { login_failed = \"ip\" }: the fields of the group_by of every rule that counts that event type. Event types not named share one partition, as rules without group_by need."},
	)
	return &sdk.Spec{
		Summary: "Publish detection events to a NATS JetStream stream for fleet detection.",
		Description: "An edge agent's sink: every detection event (a few percent of the lines) goes to " +
			"<subject>.<partition> with the field host, partitioned by its rule key so that one " +
			"detector sees every event of a key. Each message carries a Nats-Msg-Id made from the " +
			"line, so a republish after a crash or a retry is stored once. A batch is accepted only " +
			"once JetStream acknowledged every event; while NATS is unreachable Write fails at once " +
			"and the agent's buffer holds the events (buffer { when_full = \"spill\" } keeps them on disk).",
		Fields: fields,
		Example: `sink "nats" "fleet" {
  servers      = ["nats://nats-1:4222", "nats://nats-2:4222", "nats://nats-3:4222"]
  replicas     = 3
  host         = env("HOSTNAME")
  partition_by = { login_failed = "ip" }
  user         = "edge"
  password     = env("NATS_PASSWORD")
  buffer {
    when_full     = "spill"
    max_disk_size = "1GiB"
  }
}`,
	}
}

// SinkComponent is sink "nats".
func SinkComponent() sdk.Component {
	return sdk.SinkComponent("nats", SinkSpec(), func(c *sdk.Config, res sdk.Resources) (sdk.Sink, error) {
		return NewSink(c, res)
	}).WithAccepts(sdk.KindLog).WithMaxBatch(1000)
}

// Sink publishes detection events to JetStream.
type Sink struct {
	cc     connConfig
	host   string
	events map[string]bool
	by     map[string][]string
	log    hclog.Logger

	// lastErr is the connection's last error (a refused login, a TLS failure), for Write's.
	lastErr atomicError

	mu sync.Mutex
	nc *nats.Conn
	js jetstream.JetStream
	// ready: the stream exists (checked once per connection).
	ready bool
	buf   []byte
}

// NewSink builds sink "nats" from its config.
func NewSink(c *sdk.Config, res sdk.Resources) (*Sink, error) {
	cc, err := parseConnConfig(c)
	if err != nil {
		return nil, err
	}
	host := c.String("host")
	if host == "" {
		host, _ = os.Hostname()
	}
	if host == "" {
		return nil, c.Errorf("host", "the machine has no host name: set host")
	}
	s := &Sink{cc: cc, host: host, by: map[string][]string{}, log: res.Logger}
	if evs := c.StringList("events"); len(evs) > 0 {
		s.events = map[string]bool{}
		for _, e := range evs {
			s.events[e] = true
		}
	}
	for typ, fields := range c.StringMap("partition_by") {
		var fs []string
		for _, f := range strings.Split(fields, ",") {
			if f = strings.TrimSpace(f); f != "" {
				fs = append(fs, f)
			}
		}
		if len(fs) == 0 {
			return nil, c.Errorf("partition_by", "%s: name at least one field, e.g. \"ip\"", typ)
		}
		s.by[typ] = fs
	}
	return s, nil
}

// Start implements sdk.Starter: it connects in the background; an unreachable NATS does not
// stop the agent (Write fails until it answers, and the agent buffers).
func (s *Sink) Start(context.Context) error {
	nc, err := s.cc.connect(
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				s.lastErr.set(err)
				s.log.Warn("disconnected from NATS; events wait in the sink's buffer", "error", err)
			}
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) { s.lastErr.set(err) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { s.lastErr.set(err) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { s.log.Info("reconnected to NATS", "server", nc.ConnectedUrlRedacted()) }))
	if err != nil {
		return err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		nc.Close()
		return err
	}
	s.mu.Lock()
	s.nc, s.js = nc, js
	s.mu.Unlock()
	return nil
}

// Close implements sdk.Closer.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nc != nil {
		s.nc.Close()
		s.nc = nil
	}
	return nil
}

// Publishes reports whether the sink publishes an event.
func (s *Sink) publishes(ev *sdk.Event) bool {
	if ev.Kind != sdk.KindLog && ev.Kind != "" {
		return false
	}
	typ := ev.Field(fieldEvent)
	if typ == "" {
		return false
	}
	return s.events == nil || s.events[typ]
}

// Write implements sdk.Sink. It returns nil only when JetStream acknowledged every event of
// the batch that it publishes; any failure is retryable (the whole batch is published again,
// and the message ids make the stream keep each event once).
func (s *Sink) Write(ctx context.Context, b sdk.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nc == nil {
		return errors.New("the nats sink is not started")
	}
	if !s.nc.IsConnected() {
		return errors.New(connProblem(s.nc.Status(), s.lastErr.get(), "events wait in the sink's buffer"))
	}
	if !s.ready {
		cctx, cancel := context.WithTimeout(ctx, s.cc.timeout)
		_, err := ensureStream(cctx, s.js, s.cc)
		cancel()
		if err != nil {
			return fmt.Errorf("%w; create it or set create_stream = true", err)
		}
		s.ready = true
	}
	type seen struct {
		origin string
		t      int64
		line   string
	}
	var dup map[seen]int
	futures := make([]jetstream.PubAckFuture, 0, len(b.Events))
	for i := range b.Events {
		ev := &b.Events[i]
		if !s.publishes(ev) {
			continue
		}
		nth := 0
		if ev.Field(fieldLogPosition) == "" {
			if dup == nil {
				dup = map[seen]int{}
			}
			k := seen{ev.Origin, ev.Time.UnixNano(), string(ev.Line)}
			nth = dup[k]
			dup[k] = nth + 1
		}
		out := *ev
		out.Fields = make(map[string]string, len(ev.Fields)+1)
		for k, v := range ev.Fields {
			out.Fields[k] = v
		}
		out.Fields[FieldHost] = s.host
		s.buf = encodeEvent(s.buf[:0], &out)
		p := partitionOf(keyOf(ev, s.by), s.cc.partitions)
		msg := &nats.Msg{Subject: subjectOf(s.cc.subject, p), Data: slices.Clone(s.buf), Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, msgID(s.host, ev, nth))
		f, err := s.js.PublishMsgAsync(msg)
		if err != nil {
			return fmt.Errorf("publish to %s: %w", msg.Subject, err)
		}
		futures = append(futures, f)
	}
	deadline := time.NewTimer(s.cc.timeout + time.Duration(len(futures))*time.Millisecond)
	defer deadline.Stop()
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("JetStream did not store an event on %s: %w", f.Msg().Subject, err)
		case <-deadline.C:
			return fmt.Errorf("JetStream did not acknowledge the events within %s: is the stream's cluster short of a quorum?", s.cc.timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
