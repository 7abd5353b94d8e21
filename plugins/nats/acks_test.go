package nats_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tda-dev/tda/plugins/nats"
	"github.com/tda-dev/tda/plugins/nats/natstest"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

// ackFloor returns the ack floor of partition p's consumer of group "detectors".
func ackFloor(t testing.TB, c *natstest.Cluster, p int) uint64 {
	t.Helper()
	nc, err := natsgo.Connect(strings.Join(c.URLs(), ","))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cons, err := js.Consumer(ctx, "TDA_EVENTS", "detectors_p"+strconv.Itoa(p))
	if err != nil {
		t.Fatalf("consumer of partition %d: %v", p, err)
	}
	return cons.CachedInfo().AckFloor.Stream
}

func seqOf(t testing.TB, cps map[string][]byte, p int) uint64 {
	t.Helper()
	v, ok := cps["nats:TDA_EVENTS:"+strconv.Itoa(p)]
	if !ok {
		t.Fatalf("no checkpoint of partition %d in %v", p, cps)
	}
	n, _ := strconv.ParseUint(string(v), 10, 64)
	return n
}

// TestAcksFollowCommits: a detector acknowledges JetStream messages only once the agent
// committed what they carried. Stopped between its sinks' acceptance and the commit (as
// kill -9 does), nothing past the commit is acknowledged, and started again from its
// committed checkpoints it reads exactly the messages not acknowledged.
func TestAcksFollowCommits(t *testing.T) {
	t.Parallel()
	c := cluster(t, 1)
	servers := c.HCLServers()
	sink := sdktest.NewSink(t, nats.SinkComponent(), fmt.Sprintf("servers = %s\nhost = \"web-1\"\npartitions = 1", servers), sdktest.WithMode(sdktest.Direct))
	at := time.Now().UTC().Truncate(time.Millisecond)
	var batch []sdk.Event
	for i := range 100 {
		batch = append(batch, detection("password_changed", "/var/log/app.log", at.Add(time.Duration(i)*time.Microsecond), i))
	}
	if err := sink.Write(batch...); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("servers = %s\nmember = \"d1\"\npartitions = 1\nlease_ttl = \"1s\"\nmax_batch = 10\nmax_unacked = 40", servers)
	d1 := sdktest.NewSource(t, nats.SourceComponent(), cfg, sdktest.WithMode(sdktest.GRPC))
	d1.Start(nil)
	first := d1.Collect(30, 10*time.Second)
	d1.Commit()
	committed := d1.Checkpoints()
	// Read on: the sinks accepted these, the agent has not committed them.
	more := d1.Collect(30, 10*time.Second)
	if len(first) < 30 || len(more) < 30 {
		t.Fatalf("read %d then %d events", len(first), len(more))
	}
	agentWait(t, "the ack floor to reach the commit", func() bool { return ackFloor(t, c, 0) == seqOf(t, committed, 0) })
	time.Sleep(500 * time.Millisecond)
	if floor, want := ackFloor(t, c, 0), seqOf(t, committed, 0); floor != want {
		t.Fatalf("ack floor %d, committed %d: acknowledged past the commit", floor, want)
	}
	d1.Stop() // no commit of `more`

	// Restarted from the committed checkpoints: exactly the 100-len(first) events not
	// acknowledged, in order, none marked as judged (its own partition). Without a commit
	// the partition is read up to max_unacked (40) only.
	d1b := sdktest.NewSource(t, nats.SourceComponent(), cfg, sdktest.WithMode(sdktest.GRPC))
	d1b.Start(committed)
	again := d1b.Collect(100-len(first), 5*time.Second)
	if len(again) != 40 {
		t.Fatalf("read %d events without a commit, want max_unacked = 40", len(again))
	}
	d1b.Commit()
	again = append(again, d1b.Collect(100-len(first)-40, 20*time.Second)...)
	if extra := d1b.Collect(1, 2*time.Second); len(extra) > 0 {
		again = append(again, extra...)
	}
	if len(again) != 100-len(first) {
		t.Fatalf("after the restart read %d events, want the %d not acknowledged", len(again), 100-len(first))
	}
	for i, ev := range again {
		if want := fmt.Sprintf("user%d", len(first)+i); ev.Field("actor") != want || ev.Field("fleet_replayed") != "" {
			t.Fatalf("event %d after the restart: actor %s (want %s), replayed %q", i, ev.Field("actor"), want, ev.Field("fleet_replayed"))
		}
	}
	d1b.Commit()
	last := seqOf(t, d1b.Checkpoints(), 0)
	agentWait(t, "the ack floor to reach the last commit", func() bool { return ackFloor(t, c, 0) == last })
}

func agentWait(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
