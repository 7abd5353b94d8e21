package nats_test

import (
	"fmt"
	"testing"
	"time"

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
