package docker_test

import (
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/docker"
	"github.com/tda-dev/tda/plugins/docker/internal/testdocker"
	"github.com/tda-dev/tda/sdk/sdktest"
)

// BenchmarkChattyContainer measures how fast the source reads one container's log: a
// container first writes 200,000 lines (as fast as the daemon takes them), then each
// iteration reads them all through the plugin protocol. Reports lines/s and the source's CPU
// per line. Run: go test -run ^$ -bench ChattyContainer -benchtime 3x ./plugins/docker/
func BenchmarkChattyContainer(b *testing.B) {
	const lines = 200000
	env := testdocker.New(b, testdocker.RequireDaemon(b))
	img := env.EmitterImage()
	name := env.Name("chatty")
	start := time.Now()
	id := env.Create(testdocker.Container{Name: name, Image: img, Start: true,
		Cmd: []string{"-count", fmt.Sprint(lines), "-rate", "0", "-stderr-every", "10"}})
	env.Wait(id, 5*time.Minute)
	b.Logf("the daemon took %d lines in %s (%.0f lines/s)", lines, time.Since(start).Round(time.Millisecond),
		lines/time.Since(start).Seconds())
	config := fmt.Sprintf("containers = [%q]\nfrom_beginning = true", name)

	b.ResetTimer()
	var elapsed time.Duration
	var cpu time.Duration
	for i := 0; i < b.N; i++ {
		s := sdktest.NewSource(b, docker.Component(), config)
		c0 := cpuTime()
		t0 := time.Now()
		s.Start(nil)
		got := 0
		for got < lines {
			events, ok := s.Next(30 * time.Second)
			if !ok {
				b.Fatalf("read %d of %d lines", got, lines)
			}
			got += len(events)
		}
		elapsed += time.Since(t0)
		cpu += cpuTime() - c0
		s.Stop()
	}
	b.StopTimer()
	b.ReportMetric(float64(lines*b.N)/elapsed.Seconds(), "lines/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(lines*b.N), "cpu-ns/line")
}

// BenchmarkIdleCPU20QuietContainers measures the source's CPU while it follows 20 containers
// that each write one line every 10 s: getrusage over 10 s of following, reported as a share
// of one core. Run: go test -run ^$ -bench IdleCPU -benchtime 1x ./plugins/docker/
func BenchmarkIdleCPU20QuietContainers(b *testing.B) {
	env := testdocker.New(b, testdocker.RequireDaemon(b))
	img := env.EmitterImage()
	s := sdktest.NewSource(b, docker.Component(), fmt.Sprintf("labels = { %q = %q }\nheartbeat_interval = \"60s\"",
		testdocker.RunLabel, env.Run))
	s.Start(nil)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := env.TryCreate(testdocker.Container{Name: env.Name(fmt.Sprintf("quiet%02d", i)), Image: img,
				Start: true, Cmd: []string{"-rate", "0.1"}}); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	// Let every tailer attach and read its first lines.
	deadline := time.Now().Add(20 * time.Second)
	for got := 0; got < 20 && time.Now().Before(deadline); {
		events, _ := s.Next(time.Second)
		got += len(events)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c0, t0 := cpuTime(), time.Now()
		end := t0.Add(10 * time.Second)
		for time.Now().Before(end) {
			s.Next(time.Until(end))
		}
		b.ReportMetric(100*float64(cpuTime()-c0)/float64(time.Since(t0)), "%cpu")
	}
}

// cpuTime returns the user and system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
