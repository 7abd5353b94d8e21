package nats_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tda-dev/tda/agent/agenttest"
	"github.com/tda-dev/tda/plugins/nats/natstest"
	"github.com/tda-dev/tda/sdk"
)

func TestMain(m *testing.M) { agenttest.Main(m) }

// cluster starts an embedded JetStream cluster of n nodes on 127.0.0.1 for the test.
func cluster(t testing.TB, n int) *natstest.Cluster {
	t.Helper()
	c, err := natstest.Start(t.TempDir(), n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Shutdown)
	return c
}

// detection returns a parsed detection event of type typ at t from origin, as the override
// processor leaves it on an edge.
func detection(typ, origin string, t time.Time, i int, fields ...string) sdk.Event {
	ev := sdk.Event{Time: t, Kind: sdk.KindLog, Source: "file.app", Origin: origin,
		Line:   fmt.Appendf(nil, "%s INFO app: %s user%d", t.Format(time.RFC3339Nano), typ, i),
		Fields: map[string]string{"event": typ, "actor": fmt.Sprintf("user%d", i)}}
	for j := 0; j+1 < len(fields); j += 2 {
		ev.Fields[fields[j]] = fields[j+1]
	}
	return ev
}

// judged reads the judged position of every partition of group "detectors" from the
// positions bucket.
func judged(t testing.TB, c *natstest.Cluster) map[int]uint64 {
	t.Helper()
	nc, err := natsgo.Connect(strings.Join(c.URLs(), ","))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, "tda_fleet_leases_positions")
	if err != nil {
		return nil
	}
	out := map[int]uint64{}
	for p := range 64 {
		e, err := kv.Get(ctx, "detectors.judged."+strconv.Itoa(p))
		if err != nil {
			continue
		}
		var v struct{ Seq uint64 }
		if json.Unmarshal(e.Value(), &v) == nil {
			out[p] = v.Seq
		}
	}
	return out
}

// waitJudged waits until the judged position of every partition in a source's checkpoints
// (nats:TDA_EVENTS:<p> = sequence) has reached it.
func waitJudged(t testing.TB, c *natstest.Cluster, cps map[string][]byte) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, behind := judged(t, c), ""
		for k, v := range cps {
			p, _ := strconv.Atoi(strings.TrimPrefix(k, "nats:TDA_EVENTS:"))
			if seq, _ := strconv.ParseUint(string(v), 10, 64); j[p] < seq {
				behind = fmt.Sprintf("partition %d judged until %d, committed %d", p, j[p], seq)
			}
		}
		if behind == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("judged positions not recorded within 10s: %s", behind)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
