package nats_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tda-dev/tda/agent/agenttest"
	"github.com/tda-dev/tda/agent/state"
	"github.com/tda-dev/tda/plugins/nats"
	"github.com/tda-dev/tda/plugins/nats/natstest"
	"github.com/tda-dev/tda/sdk"
)

const fleetPartitions = 4

// edgeConfig: an edge agent tails its app's log, parses it (processor override) and
// publishes the detection events; the sink spills to disk while NATS is away.
const edgeConfig = `
agent {
  data_dir            = "DIR/data"
  checkpoint_interval = "200ms"
}
source "file" "app" {
  paths = ["DIR/in/*.log"]
}
processor "override" "parse" {
  timezone = "UTC"
}
sink "nats" "fleet" {
  servers         = SERVERS
  replicas        = 3
  partitions      = PARTITIONS
  host            = "HOST"
  connect_timeout = "2s"
  retry {
    initial = "200ms"
    max     = "1s"
  }
  buffer {
    when_full = "spill"
  }
}
pipeline "edge" {
  from    = [source.file.app]
  through = [processor.override.parse]
  to      = [sink.nats.fleet]
}
`

// detectorConfig: a detector reads its share of the partitions and runs the rule across
// every replica.
const detectorConfig = `
agent {
  data_dir            = "DIR/data"
  checkpoint_interval = "200ms"
}
source "nats" "fleet" {
  servers         = SERVERS
  replicas        = 3
  partitions      = PARTITIONS
  member          = "MEMBER"
  lease_ttl       = "1500ms"
  takeover_replay = "15m"
  connect_timeout = "2s"
}
processor "rules" "fleet" {
  timezone = "UTC"
  rule "mass_password_reset" {
    match          = "password_changed"
    unless         = "actor_role == admin"
    threshold      = 10
    window         = "60s"
    severity       = "HIGH"
    across_origins = true
  }
}
sink "jsonl" "alerts" {
  path = "DIR/alerts.jsonl"
}
pipeline "detect" {
  from    = [source.nats.fleet]
  through = [processor.rules.fleet]
  to      = [sink.jsonl.alerts]
}
`

type fleet struct {
	t     testing.TB
	bins  agenttest.Binaries
	c     *natstest.Cluster
	edges []*agenttest.Agent
	dets  []*agenttest.Agent
	hosts []string
	seq   int
}

// startFleetB starts three edges and two detectors for a benchmark.
func startFleetB(b *testing.B, c *natstest.Cluster) *fleet {
	return startFleet(b, c, []string{"web-1", "web-2", "web-3"}, 2)
}

func startFleet(t testing.TB, c *natstest.Cluster, hosts []string, detectors int) *fleet {
	bins := agenttest.Build(t, "file", "detect", "nats", "jsonl")
	f := &fleet{t: t, bins: bins, c: c, hosts: hosts}
	fill := func(cfg, name, value string) string {
		cfg = strings.ReplaceAll(cfg, "SERVERS", c.HCLServers())
		cfg = strings.ReplaceAll(cfg, "PARTITIONS", strconv.Itoa(fleetPartitions))
		return strings.ReplaceAll(cfg, name, value)
	}
	for i := range detectors {
		a := agenttest.New(t, bins, fill(detectorConfig, "MEMBER", fmt.Sprintf("d%d", i+1)))
		f.dets = append(f.dets, a)
	}
	for _, h := range hosts {
		a := agenttest.New(t, bins, fill(edgeConfig, "HOST", h))
		if err := os.MkdirAll(a.Path("in"), 0o755); err != nil {
			t.Fatal(err)
		}
		f.edges = append(f.edges, a)
	}
	for _, a := range append(append([]*agenttest.Agent{}, f.dets...), f.edges...) {
		a.Start()
	}
	// The detectors join and split the partitions (a lease round is lease_ttl/3).
	deadline := time.Now().Add(20 * time.Second)
	for len(f.owners()) != fleetPartitions {
		if time.Now().After(deadline) {
			t.Fatalf("the detectors took partitions %v of %d within 20s:\n%s", f.owners(), fleetPartitions, f.dets[0].Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return f
}

var splitRE = regexp.MustCompile(`11 resets across 3 replicas \(web-1: (\d), web-2: (\d), web-3: (\d)\)`)

var takenRE = regexp.MustCompile(`(?m)^(\S+) \[INFO\]\s+\S+: partition taken:[^\n]* partition=(\d+)`)

// owners returns which running detector took each partition last, from their logs (a
// partition may have moved: the latest taking counts).
func (f *fleet) owners() map[int]int {
	out := map[int]int{}
	at := map[int]string{}
	for i, d := range f.dets {
		if !d.Running() {
			continue
		}
		for _, m := range takenRE.FindAllStringSubmatch(d.Logs(), -1) {
			p, _ := strconv.Atoi(m[2])
			if m[1] >= at[p] { // RFC 3339 times in UTC sort as strings
				at[p], out[p] = m[1], i
			}
		}
	}
	return out
}

// state runs tda state -json against an agent.
func (f *fleet) state(a *agenttest.Agent) (status string, reasons, reports []string) {
	f.t.Helper()
	_, stdout, stderr := agenttest.RunCLI(f.t, f.bins, a.Dir, "state", "-json", "-config", a.Config)
	var st struct {
		Status  string   `json:"status"`
		Reasons []string `json:"reasons"`
		Reports []string `json:"reports"`
	}
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		f.t.Fatalf("tda state -json: %v\n%s%s", err, stdout, stderr)
	}
	return st.Status, st.Reasons, st.Reports
}

// resets appends n password changes to every edge's log, dated from at on, one 100 ms apart.
func (f *fleet) resets(n int, at time.Time) {
	f.t.Helper()
	for e, a := range f.edges {
		var b strings.Builder
		for i := range n {
			f.seq++
			ts := at.Add(time.Duration(i*len(f.edges)+e) * 100 * time.Millisecond)
			fmt.Fprintf(&b, "[%s] INFO in auth: password_changed user_id=%d actor=u%d actor_role=user ip=10.1.0.%d\n",
				ts.UTC().Format("2006-01-02 15:04:05,000"), 1000+f.seq, f.seq, e+1)
		}
		file, err := os.OpenFile(a.Path("in", "app.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			f.t.Fatal(err)
		}
		if _, err := file.WriteString(b.String()); err != nil {
			f.t.Fatal(err)
		}
		_ = file.Close()
	}
}

// firing returns the firing alerts every detector wrote, oldest incident first, with the
// detector's index.
func (f *fleet) firing() (alerts []sdk.Event, from []int) {
	type told struct {
		ev  sdk.Event
		det int
	}
	var all []told
	for i, d := range f.dets {
		for _, ev := range agenttest.ReadJSONL(f.t, filepath.Join(d.Dir, "alerts.jsonl")) {
			if ev.Kind == sdk.KindAlert && ev.Alert.State == sdk.StateFiring {
				all = append(all, told{ev, i})
			}
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].ev.Alert.FirstSeen.Before(all[j].ev.Alert.FirstSeen) })
	for _, a := range all {
		alerts = append(alerts, a.ev)
		from = append(from, a.det)
	}
	return alerts, from
}

// expectAlerts waits until n firing alerts were written, then a little longer to see that no
// more come.
func (f *fleet) expectAlerts(n int, within time.Duration) ([]sdk.Event, []int) {
	f.t.Helper()
	agenttest.WaitFor(f.t, fmt.Sprintf("%d firing alerts", n), within, func() bool {
		a, _ := f.firing()
		return len(a) >= n
	})
	time.Sleep(2 * time.Second)
	a, from := f.firing()
	if len(a) != n {
		for _, ev := range a {
			f.t.Logf("alert: %s count %d fingerprint %s: %s", ev.Alert.Rule, ev.Alert.Count, ev.Alert.Fingerprint, ev.Alert.Explanation)
		}
		f.t.Fatalf("%d firing alerts, want %d", len(a), n)
	}
	return a, from
}

func checkFleetAlert(t *testing.T, ev sdk.Event) {
	t.Helper()
	if ev.Alert.Rule != "mass_password_reset" || ev.Alert.Count != 11 {
		t.Fatalf("alert %s with count %d, want mass_password_reset counting 11 (the first window over 10)", ev.Alert.Rule, ev.Alert.Count)
	}
	// Which replica's fourth line came last depends on how the edges' publishes interleave.
	m := splitRE.FindStringSubmatch(ev.Alert.Explanation)
	if m == nil {
		t.Fatalf("the alert does not split its count over the replicas: %q", ev.Alert.Explanation)
	}
	sum := 0
	for _, n := range m[1:] {
		k, _ := strconv.Atoi(n)
		if k < 3 || k > 4 {
			t.Fatalf("a replica counted %d of 4: %s", k, m[0])
		}
		sum += k
	}
	if sum != 11 {
		t.Fatalf("the replicas add up to %d, not 11: %s", sum, m[0])
	}
}

// outage is how long the whole NATS cluster is stopped in TestFleet (30 s with TDA_CHAOS=1).
func outage() time.Duration {
	if os.Getenv("TDA_CHAOS") == "1" {
		return 30 * time.Second
	}
	return 5 * time.Second
}

// TestFleet runs three edges and two detectors against a three-node JetStream cluster, and
// goes through the fleet's promises one after the other (each burst two minutes of event time
// after the previous one, so every burst is a window of its own).
func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster and five agents")
	}
	t.Parallel()
	began := time.Now()
	c := cluster(t, 3)
	f := startFleet(t, c, []string{"web-1", "web-2", "web-3"}, 2)
	t.Logf("cluster and fleet up in %s", time.Since(began).Round(100*time.Millisecond))
	base := time.Now().UTC().Add(-9 * time.Minute).Truncate(time.Second)

	// 3 + 3 + 3 resets: 9 across the app, under the threshold of 10: nothing.
	f.resets(3, base)
	time.Sleep(3 * time.Second)
	if a, _ := f.firing(); len(a) != 0 {
		t.Fatalf("3+3+3 resets gave %d alerts", len(a))
	}

	// 4 + 4 + 4: one alert, from one detector, split over the replicas.
	f.resets(4, base.Add(2*time.Minute))
	alerts, _ := f.expectAlerts(1, 30*time.Second)
	checkFleetAlert(t, alerts[0])
	t.Logf("4+4+4 told at %s", time.Since(began).Round(100*time.Millisecond))

	// tda state on the detector that reads the resets shows its partitions and the edges
	// it hears from, with their lag.
	p := nats.PartitionOf("", fleetPartitions)
	owner := f.owners()[p]
	agenttest.WaitFor(t, "the detector's state to list the three edges", 10*time.Second, func() bool {
		_, _, reports := f.state(f.dets[owner])
		return len(reports) == 1 && strings.Contains(reports[0], "web-1 (lag") && strings.Contains(reports[0], "web-3 (lag")
	})
	// ... and its partition's consumer, acknowledged as far as the detector committed.
	ackedRE := regexp.MustCompile(`consumers: (?:[^;]*; )*` + strconv.Itoa(p) + `: acked [1-9]\d*, lag 0`)
	agenttest.WaitFor(t, "the detector's state to show the partition acknowledged", 15*time.Second, func() bool {
		_, _, reports := f.state(f.dets[owner])
		return len(reports) == 1 && ackedRE.MatchString(reports[0])
	})
	_, _, reports := f.state(f.dets[owner])
	if !strings.HasPrefix(reports[0], "source.nats.fleet: fleet detectors member d") || !strings.Contains(reports[0], "partitions [") {
		t.Fatalf("the detector's state reports %q", reports)
	}
	t.Logf("detector state: %s", reports[0])

	// A detector killed in the middle of an incident: the survivor tells it once, with the
	// exact count.
	f.resets(2, base.Add(4*time.Minute))
	time.Sleep(2 * time.Second)
	var held []int
	for q, d := range f.owners() {
		if d == owner {
			held = append(held, q)
		}
	}
	f.dets[owner].Kill()
	killed := time.Now()
	// Killed whenever it was (between its sinks' acceptance and the commit, or after): no
	// consumer of its partitions is acknowledged past its committed checkpoint. Read before
	// the survivor takes them over (the lease outlives the kill by lease_ttl).
	floors := map[int]uint64{}
	for _, q := range held {
		floors[q] = ackFloor(t, c, q)
	}
	committed := committedCheckpoints(t, f.dets[owner].Path("data"))
	for _, q := range held {
		cp, _ := strconv.ParseUint(string(committed["nats:TDA_EVENTS:"+strconv.Itoa(q)]), 10, 64) // 0: nothing read
		if floors[q] > cp {
			t.Fatalf("partition %d acknowledged up to %d, the killed detector committed %d", q, floors[q], cp)
		}
	}
	t.Logf("after the kill: ack floors %v, committed %s", floors, committed)
	f.resets(2, base.Add(4*time.Minute+time.Second))
	alerts, from := f.expectAlerts(2, 30*time.Second)
	checkFleetAlert(t, alerts[1])
	if from[1] == owner {
		t.Fatalf("the alert after the kill came from the killed detector")
	}
	t.Logf("takeover: the survivor told the incident %s after the kill", time.Since(killed).Round(100*time.Millisecond))

	// One NATS node stops: nothing is lost.
	c.StopNode(0)
	f.resets(4, base.Add(6*time.Minute))
	alerts, _ = f.expectAlerts(3, 30*time.Second)
	checkFleetAlert(t, alerts[2])
	if err := c.StartNode(0); err != nil {
		t.Fatal(err)
	}

	// The whole cluster stops: the edges buffer, deliver once it is back, and the incident
	// that happened meanwhile is told once.
	c.Shutdown()
	f.resets(4, base.Add(8*time.Minute))
	agenttest.WaitFor(t, "an edge to report NATS unreachable", 15*time.Second, func() bool {
		status, reasons, _ := f.state(f.edges[0])
		return status == "degraded" && strings.Contains(strings.Join(reasons, "\n"), "sink.nats.fleet")
	})
	_, reasons, _ := f.state(f.edges[0])
	t.Logf("edge state during the outage: %q", reasons)
	time.Sleep(outage())
	for i := range 3 {
		if err := c.StartNode(i); err != nil {
			t.Fatal(err)
		}
	}
	alerts, _ = f.expectAlerts(4, 60*time.Second)
	checkFleetAlert(t, alerts[3])

	// The survivor, alone, restarts in the middle of an incident: it goes on from its
	// checkpoints and restored windows, and its alert splits the count over every replica,
	// the lines counted before the restart included.
	survivor := f.dets[1-owner]
	f.resets(2, base.Add(10*time.Minute))
	agenttest.WaitFor(t, "the resets to reach the stream", 15*time.Second, func() bool { return storedMessages(t, c) == uint64(f.seq) })
	time.Sleep(2 * time.Second) // read, counted and committed (checkpoint_interval 200ms)
	survivor.Stop()
	survivor.Start()
	agenttest.WaitFor(t, "the restarted detector to take its partitions back", 20*time.Second, func() bool { return len(f.owners()) == fleetPartitions })
	f.resets(2, base.Add(10*time.Minute+time.Second))
	alerts, _ = f.expectAlerts(5, 30*time.Second)
	checkFleetAlert(t, alerts[4])

	// Across the node stop, the outage, the retries and the kill, the stream holds every
	// reset each edge read, once.
	stored := storedMessages(t, c)
	if stored != uint64(f.seq) {
		t.Fatalf("the stream holds %d events; the edges' logs have %d resets", stored, f.seq)
	}
	t.Logf("the stream holds the %d resets once each", stored)
}

// committedCheckpoints reads the checkpoints a (stopped or killed) detector committed.
func committedCheckpoints(t testing.TB, dataDir string) map[string][]byte {
	t.Helper()
	store, err := state.Open(dataDir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	out := map[string][]byte{}
	if err := store.View(func(tx *state.Tx) error {
		return tx.ForEach([]string{"checkpoints", "source.nats.fleet"}, func(k, v []byte) error {
			out[string(k)] = append([]byte(nil), v...)
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// storedMessages returns how many messages the fleet stream holds.
func storedMessages(t testing.TB, c *natstest.Cluster) uint64 {
	t.Helper()
	nc, err := natsgo.Connect(strings.Join(c.URLs(), ","))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "TDA_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}
