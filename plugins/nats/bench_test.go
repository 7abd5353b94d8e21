package nats_test

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/nats"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

// percentile returns the p-th percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

// BenchmarkEdgeToDetector: detection events through the nats sink (an edge), a three-node
// JetStream cluster with three replicas of the stream, and the nats source (a detector), in
// one process. It reports events/s and the latency from the edge's Write to the detector's
// hand-over, p50 and p99. Every batch read is committed at once (as the agent does at each
// checkpoint), so the detector acknowledges as it reads.
func BenchmarkEdgeToDetector(b *testing.B) {
	c := cluster(b, 3)
	sink := sdktest.NewSink(b, nats.SinkComponent(), sinkConfig(c.HCLServers(), "web-1", ""), sdktest.WithMode(sdktest.Direct))
	src := sdktest.NewSource(b, nats.SourceComponent(), sourceConfig(c.HCLServers(), "d1", `max_batch = 1000`), sdktest.WithMode(sdktest.Direct))
	src.Start(nil)
	time.Sleep(1500 * time.Millisecond) // join and take the partitions
	const batch, batches = 500, 40
	total := batch * batches
	var lat []time.Duration
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		done := make(chan int, 1)
		go func() {
			n := 0
			for n < total {
				evs, ok := src.Next(30 * time.Second)
				if !ok {
					break
				}
				src.Commit()
				now := time.Now()
				for _, ev := range evs {
					var sent int64
					fmt.Sscanf(ev.Field("sent"), "%d", &sent)
					lat = append(lat, now.Sub(time.Unix(0, sent)))
				}
				n += len(evs)
			}
			done <- n
		}()
		seq := 0
		for range batches {
			evs := make([]sdk.Event, batch)
			now := time.Now()
			for i := range evs {
				seq++
				evs[i] = detection("password_changed", "/var/log/app.log", now, seq, "sent", fmt.Sprint(now.UnixNano()), "run", fmt.Sprint(start.UnixNano()))
			}
			if err := sink.Write(evs...); err != nil {
				b.Fatal(err)
			}
		}
		if n := <-done; n != total {
			b.Fatalf("the detector read %d of %d events", n, total)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(total*b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
}

// BenchmarkLineToAlert: the whole fleet of real agents (three edges, two detectors, a
// three-node cluster); each incident is 4+4+4 password resets written to the edges' logs,
// and its latency runs from the write to the alert in a detector's alerts.jsonl. Reports
// p50 and p99 over TDA_FLEET_INCIDENTS incidents (default 25: one op then takes longer than
// the default -benchtime, so the fleet starts once).
func BenchmarkLineToAlert(b *testing.B) {
	incidents := 25
	if v := os.Getenv("TDA_FLEET_INCIDENTS"); v != "" {
		fmt.Sscanf(v, "%d", &incidents)
	}
	c := cluster(b, 3)
	f := startFleetB(b, c)
	base := time.Now().UTC().Add(-4 * time.Hour).Truncate(time.Second)
	var lat []time.Duration
	told := 0
	b.ResetTimer()
	for range b.N {
		for i := range incidents {
			wrote := time.Now()
			f.resets(4, base.Add(time.Duration(told+i)*2*time.Minute))
			deadline := time.Now().Add(30 * time.Second)
			for {
				a, _ := f.firing()
				if len(a) > told+i {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("incident %d not told within 30s", told+i)
				}
				time.Sleep(5 * time.Millisecond)
			}
			lat = append(lat, time.Since(wrote))
		}
		told += incidents
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(percentile(lat, 0.50).Milliseconds()), "p50-ms")
	b.ReportMetric(float64(percentile(lat, 0.99).Milliseconds()), "p99-ms")
}
