package nats_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/nats"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

func sinkConfig(servers, host string, extra string) string {
	return fmt.Sprintf(`
servers    = %s
replicas   = 3
host       = %q
partitions = 4
%s`, servers, host, extra)
}

func sourceConfig(servers, member string, extra string) string {
	return fmt.Sprintf(`
servers    = %s
replicas   = 3
member     = %q
partitions = 4
lease_ttl  = "2s"
%s`, servers, member, extra)
}

// TestPublishOnceReadOnce: the sink publishes only detection events, with their host; a
// batch written twice (a retry) is stored once; the source hands each event over once, with
// a checkpoint per partition.
func TestPublishOnceReadOnce(t *testing.T) {
	t.Parallel()
	c := cluster(t, 3)
	sink := sdktest.NewSink(t, nats.SinkComponent(), sinkConfig(c.HCLServers(), "web-1", `partition_by = { login_failed = "ip" }`))
	at := time.Now().UTC().Add(-time.Second).Truncate(time.Millisecond)
	var batch []sdk.Event
	for i := range 10 {
		batch = append(batch, detection("login_failed", "/var/log/app.log", at.Add(time.Duration(i)*time.Millisecond), i, "ip", fmt.Sprintf("10.0.0.%d", i%3)))
	}
	batch = append(batch, sdk.Event{Time: at, Kind: sdk.KindLog, Origin: "/var/log/app.log", Line: []byte("GET /health 200")})
	if err := sink.WriteBatch(sdk.Batch{ID: 1, Events: batch}); err != nil {
		t.Fatal(err)
	}
	if err := sink.WriteBatch(sdk.Batch{ID: 1, Events: batch}); err != nil {
		t.Fatal(err)
	}

	src := sdktest.NewSource(t, nats.SourceComponent(), sourceConfig(c.HCLServers(), "d1", ""), sdktest.WithMode(sdktest.Direct))
	src.Start(nil)
	got := src.Collect(10, 20*time.Second)
	if more := src.Collect(1, 2*time.Second); len(more) > 0 {
		got = append(got, more...)
	}
	if len(got) != 10 {
		t.Fatalf("read %d events, want the 10 detection events once each", len(got))
	}
	seen := map[string]bool{}
	for _, ev := range got {
		if ev.Field("host") != "web-1" || ev.Field("event") != "login_failed" {
			t.Fatalf("event without its host or type: %+v", ev.Fields)
		}
		if seen[string(ev.Line)] {
			t.Fatalf("read twice: %s", ev.Line)
		}
		seen[string(ev.Line)] = true
	}
	cps := src.Checkpoints()
	if len(cps) == 0 {
		t.Fatal("no checkpoint after the batches")
	}
	for k, v := range cps {
		if !strings.HasPrefix(k, "nats:TDA_EVENTS:") || len(v) == 0 {
			t.Fatalf("checkpoint %q = %q", k, v)
		}
	}
}

// TestDetectorsSplitAndTakeOver: two detectors split the partitions, every event is read by
// exactly one of them, and all events of one key by the same one; when one stops, the other
// reads its partitions, and a detector restarted from its checkpoints reads nothing twice.
func TestDetectorsSplitAndTakeOver(t *testing.T) {
	t.Parallel()
	c := cluster(t, 3)
	sink := sdktest.NewSink(t, nats.SinkComponent(), sinkConfig(c.HCLServers(), "web-1", `partition_by = { login_failed = "ip" }`), sdktest.WithMode(sdktest.Direct))
	d1 := sdktest.NewSource(t, nats.SourceComponent(), sourceConfig(c.HCLServers(), "d1", ""), sdktest.WithMode(sdktest.Direct))
	d2 := sdktest.NewSource(t, nats.SourceComponent(), sourceConfig(c.HCLServers(), "d2", ""), sdktest.WithMode(sdktest.Direct))
	d1.Start(nil)
	d2.Start(nil)
	// Both join before either takes more than its share, and report two partitions each.
	settled := func(src *sdktest.Source) bool {
		st := src.Status()
		return st != nil && st.Healthy && strings.Count(st.Reason[strings.Index(st.Reason, "["):strings.Index(st.Reason, "]")+1], ",") == 1
	}
	deadline := time.Now().Add(20 * time.Second)
	for !settled(d1) || !settled(d2) {
		if time.Now().After(deadline) {
			t.Fatalf("the detectors did not split the partitions: %+v %+v", d1.Status(), d2.Status())
		}
		d1.Next(100 * time.Millisecond)
		d2.Next(100 * time.Millisecond)
	}

	at := time.Now().UTC().Truncate(time.Millisecond)
	const keys, per = 16, 5
	var batch []sdk.Event
	for i := range keys * per {
		batch = append(batch, detection("login_failed", "/var/log/app.log", at.Add(time.Duration(i)*time.Millisecond), i, "ip", fmt.Sprintf("10.0.1.%d", i%keys)))
	}
	if err := sink.Write(batch...); err != nil {
		t.Fatal(err)
	}
	byKey := map[string]map[string]int{} // ip -> detector -> events
	read := func(name string, src *sdktest.Source, timeout time.Duration) int {
		n := 0
		for {
			evs, ok := src.Next(timeout)
			if !ok {
				return n
			}
			for _, ev := range evs {
				ip := ev.Field("ip")
				if byKey[ip] == nil {
					byKey[ip] = map[string]int{}
				}
				byKey[ip][name]++
				n++
			}
		}
	}
	n1 := read("d1", d1, 3*time.Second)
	n2 := read("d2", d2, 3*time.Second)
	if n1+n2 != keys*per {
		t.Fatalf("d1 read %d and d2 %d events, want %d in all", n1, n2, keys*per)
	}
	if n1 == 0 || n2 == 0 {
		t.Fatalf("one detector did all the work: d1 %d, d2 %d", n1, n2)
	}
	for ip, by := range byKey {
		if len(by) != 1 {
			t.Fatalf("key %s was read by %v: a key's events must go to one detector", ip, by)
		}
	}

	// The agent commits what both read: the partitions' judged positions follow.
	d1.Commit()
	d2.Commit()
	waitJudged(t, c, d1.Checkpoints())
	waitJudged(t, c, d2.Checkpoints())

	// d1 stops (cleanly: it releases its leases); d2 takes its partitions and reads what
	// follows, for every key.
	cps2 := d2.Checkpoints()
	d1.Stop()
	time.Sleep(1500 * time.Millisecond)
	batch = batch[:0]
	for i := range keys {
		batch = append(batch, detection("login_failed", "/var/log/app.log", at.Add(time.Second+time.Duration(i)*time.Millisecond), 1000+i, "ip", fmt.Sprintf("10.0.1.%d", i)))
	}
	if err := sink.Write(batch...); err != nil {
		t.Fatal(err)
	}
	// d2 reads the new events once each, and d1's earlier events again from the takeover
	// replay (they rebuild the windows of d1's keys): exactly n1 of them.
	var after []string
	replayed := 0
	deadline = time.Now().Add(15 * time.Second)
	for (len(after) < keys || replayed < n1) && time.Now().Before(deadline) {
		evs, _ := d2.Next(time.Second)
		for _, ev := range evs {
			var n int
			fmt.Sscanf(ev.Field("actor"), "user%d", &n)
			if n >= 1000 {
				if ev.Field("fleet_replayed") != "" {
					t.Fatalf("a new event is marked as judged before: %v", ev.Fields)
				}
				after = append(after, ev.Field("ip"))
			} else {
				if ev.Field("fleet_replayed") != "true" {
					t.Fatalf("an event d1 had judged is not marked for d2: %v", ev.Fields)
				}
				replayed++
			}
		}
	}
	if more, _ := d2.Next(2 * time.Second); len(more) > 0 {
		t.Fatalf("d2 read %d events more than expected", len(more))
	}
	sort.Strings(after)
	if len(after) != keys || replayed != n1 {
		t.Fatalf("after d1 stopped, d2 read %d of the %d new events (%v) and replayed %d of d1's %d", len(after), keys, after, replayed, n1)
	}
	for k := range cps2 {
		if _, ok := d2.Checkpoints()[k]; !ok {
			t.Fatalf("checkpoint %s disappeared", k)
		}
	}
}

// TestStopWhileHeldBack: a detector whose pipeline takes nothing (no credit left) stops
// promptly, its lease keeper and readers with it, and releases its partitions: another
// detector takes them at once and reads every event, exactly the ones committed before the
// stop marked as judged (those handed over and not committed are judged again).
func TestStopWhileHeldBack(t *testing.T) {
	t.Parallel()
	c := cluster(t, 1)
	servers := c.HCLServers()
	sink := sdktest.NewSink(t, nats.SinkComponent(), fmt.Sprintf("servers = %s\nhost = \"web-1\"\npartitions = 2", servers), sdktest.WithMode(sdktest.Direct))
	at := time.Now().UTC().Truncate(time.Millisecond)
	var batch []sdk.Event
	for i := range 2000 {
		batch = append(batch, detection("password_changed", "/var/log/app.log", at.Add(time.Duration(i)*time.Microsecond), i))
	}
	if err := sink.Write(batch...); err != nil {
		t.Fatal(err)
	}
	cfg := func(member string) string {
		return fmt.Sprintf("servers = %s\nmember = %q\npartitions = 2\nlease_ttl = \"1s\"\nmax_batch = 10", servers, member)
	}
	d1 := sdktest.NewSource(t, nats.SourceComponent(), cfg("d1"), sdktest.WithMode(sdktest.Direct))
	d1.Start(nil)
	// Let d1 take the partitions and fill its four credits, then hold it back.
	got := d1.Collect(10, 10*time.Second)
	d1.Commit()
	waitJudged(t, c, d1.Checkpoints())
	// More is handed over (d1 reads on), never committed.
	got2 := d1.Collect(10, 10*time.Second)
	time.Sleep(2 * time.Second)
	stopped := time.Now()
	d1.Stop()
	if took := time.Since(stopped); took > 5*time.Second {
		t.Fatalf("stopping a held-back detector took %s", took)
	}
	d2 := sdktest.NewSource(t, nats.SourceComponent(), cfg("d2"), sdktest.WithMode(sdktest.Direct))
	d2.Start(nil)
	all := d2.Collect(2000, 30*time.Second)
	if len(all) != 2000 {
		t.Fatalf("d2 read %d of the 2000 events after d1 stopped", len(all))
	}
	marked := 0
	for _, ev := range all {
		if ev.Field("fleet_replayed") == "true" {
			marked++
		}
	}
	if marked != len(got) {
		t.Fatalf("d2 marked %d events as judged; d1 had committed %d (and been handed %d more)", marked, len(got), len(got2))
	}
}
