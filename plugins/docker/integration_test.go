package docker_test

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tda-dev/tda/plugins/docker"
	"github.com/tda-dev/tda/plugins/docker/internal/testdocker"
	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/sdktest"
)

// capture reads a source under test and keeps what it emitted.
type capture struct {
	t      *testing.T
	s      *sdktest.Source
	logs   []sdk.Event
	beats  []sdk.Event
	status []sdk.Status
}

func startSource(t *testing.T, config string, checkpoints map[string][]byte) *capture {
	t.Helper()
	s := sdktest.NewSource(t, docker.Component(), config)
	s.Start(checkpoints)
	return &capture{t: t, s: s}
}

// poll reads batches for up to d.
func (c *capture) poll(d time.Duration) {
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		events, ok := c.s.Next(min(left, 200*time.Millisecond))
		if st := c.s.Status(); st != nil && (len(c.status) == 0 || c.status[len(c.status)-1] != *st) {
			c.status = append(c.status, *st)
		}
		if !ok {
			continue
		}
		for _, e := range events {
			if e.Kind == sdk.KindHeartbeat {
				c.beats = append(c.beats, e)
			} else {
				c.logs = append(c.logs, e)
			}
		}
	}
}

// until reads until cond holds, failing the test after timeout.
func (c *capture) until(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	if !c.wait(timeout, cond) {
		c.t.Fatalf("timed out after %s waiting for %s (%d lines captured)", timeout, what, len(c.logs))
	}
}

// wait reads until cond holds or timeout passes, and reports whether cond holds.
func (c *capture) wait(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		c.poll(100 * time.Millisecond)
	}
	return true
}

func (c *capture) of(origin string) []sdk.Event {
	var out []sdk.Event
	for _, e := range c.logs {
		if e.Origin == origin {
			out = append(out, e)
		}
	}
	return out
}

// key renders a line with its stream and, with timestamps, Docker's time, for comparison as a
// multiset.
func key(ts time.Time, stream, line string) string {
	if ts.IsZero() {
		return stream + " " + line
	}
	return ts.UTC().Format(time.RFC3339Nano) + " " + stream + " " + line
}

// sameMultiset fails the test unless the captured events hold exactly the lines of want.
func sameMultiset(t *testing.T, name string, got []sdk.Event, want []testdocker.Entry, timestamps bool) {
	t.Helper()
	count := map[string]int{}
	for _, e := range want {
		ts := time.Time{}
		if timestamps {
			ts = e.Time
		}
		count[key(ts, e.Stream, e.Line)]++
	}
	for _, e := range got {
		ts := time.Time{}
		if timestamps {
			ts = e.Time
		}
		count[key(ts, e.Stream, string(e.Line))]--
	}
	var missing, twice []string
	for k, n := range count {
		short := k
		if len(short) > 120 {
			short = short[:120] + "..."
		}
		switch {
		case n > 0:
			missing = append(missing, fmt.Sprintf("%dx %s", n, short))
		case n < 0:
			twice = append(twice, fmt.Sprintf("%dx %s", -n, short))
		}
	}
	sort.Strings(missing)
	sort.Strings(twice)
	if len(missing) > 0 || len(twice) > 0 {
		t.Fatalf("%s: captured %d lines, docker logs has %d; missing %d: %s; extra or repeated %d: %s",
			name, len(got), len(want), len(missing), head(missing), len(twice), head(twice))
	}
}

func head(s []string) string {
	if len(s) > 5 {
		return strings.Join(s[:5], " | ") + " | ..."
	}
	return strings.Join(s, " | ")
}

func TestContainerRestartedFiveTimesWhileEmitting(t *testing.T) {
	t.Parallel()
	env := testdocker.New(t, testdocker.RequireDaemon(t))
	img := env.EmitterImage()
	name := env.Name("restarts")
	c := startSource(t, fmt.Sprintf(`containers = [%q]`, name), nil)
	id := env.Create(testdocker.Container{Name: name, Image: img, Start: true,
		Cmd: []string{"-rate", "300", "-stderr-every", "3"}})
	for i := 0; i < 5; i++ {
		c.poll(400 * time.Millisecond)
		env.Restart(id, 2)
	}
	c.poll(400 * time.Millisecond)
	env.Stop(id, 5)
	want := env.Logs(id, true)
	c.wait(60*time.Second, func() bool { return len(c.of(name)) >= len(want) })
	c.poll(300 * time.Millisecond) // anything extra would show up now
	sameMultiset(t, name, c.of(name), want, true)

	runs := map[string]bool{}
	for _, e := range c.of(name) {
		f := strings.Fields(string(e.Line))
		runs[f[1]] = true
		if e.Field("container_id") != id || e.Field("image") != img {
			t.Fatalf("fields %v, want container_id %s and image %s", e.Fields, id, img)
		}
		if !strings.HasSuffix(string(e.Line), "stream="+e.Stream) {
			t.Fatalf("line %q arrived on stream %q", e.Line, e.Stream)
		}
	}
	if len(runs) != 6 {
		t.Fatalf("lines from %d runs of the emitter, want 6 (1 + 5 restarts)", len(runs))
	}
	t.Logf("%d lines from 6 runs, all captured once", len(want))
}

// TestResumesFromCheckpointsAfterAStop stops the source without letting it finish (as a
// kill -9 of the agent would), lets the container log on, and starts a new source from the
// checkpoints the host stored: the gap's lines arrive, none twice.
func TestResumesFromCheckpointsAfterAStop(t *testing.T) {
	t.Parallel()
	env := testdocker.New(t, testdocker.RequireDaemon(t))
	img := env.EmitterImage()
	name := env.Name("resume")
	config := fmt.Sprintf(`containers = [%q]`, name)
	first := startSource(t, config, nil)
	id := env.Create(testdocker.Container{Name: name, Image: img, Start: true,
		Cmd: []string{"-rate", "500", "-stderr-every", "2"}})
	first.until(60*time.Second, "first lines", func() bool { return len(first.logs) > 200 })
	first.s.Stop()
	cps := first.s.Checkpoints()
	if _, ok := cps["container/"+name]; !ok {
		t.Fatalf("no checkpoint for the container: %v", cps)
	}
	time.Sleep(1500 * time.Millisecond) // the container keeps logging while nobody reads

	second := startSource(t, config, cps)
	second.poll(time.Second)
	env.Stop(id, 5)
	want := env.Logs(id, true)
	all := func() []sdk.Event { return append(append([]sdk.Event(nil), first.logs...), second.logs...) }
	second.wait(60*time.Second, func() bool { return len(all()) >= len(want) })
	second.poll(300 * time.Millisecond)
	sameMultiset(t, name, all(), want, true)
	t.Logf("%d lines before the stop, %d after; none lost, none twice", len(first.logs), len(second.logs))
}

func TestTwentyContainersAtOnce(t *testing.T) {
	t.Parallel()
	env := testdocker.New(t, testdocker.RequireDaemon(t))
	img := env.EmitterImage()
	c := startSource(t, fmt.Sprintf(`
labels = { %q = %q }
exclude {
  name_patterns = ["*-excluded-*"]
}
heartbeat_interval = "1s"
`, testdocker.RunLabel, env.Run), nil)

	ids, names := make([]string, 20), make([]string, 20)
	var wg sync.WaitGroup
	for i := range ids {
		names[i] = env.Name(fmt.Sprintf("c%02d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			ids[i], err = env.TryCreate(testdocker.Container{Name: names[i], Image: img, Start: true,
				Cmd: []string{"-count", "200", "-rate", "200", "-stderr-every", "4", "-linger"}})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	excluded := env.Create(testdocker.Container{Name: env.Name("excluded-1"), Image: img, Start: true,
		Cmd: []string{"-count", "50", "-rate", "0"}})
	c.until(60*time.Second, "4000 lines", func() bool { return len(c.logs) >= 4000 })
	c.poll(1500 * time.Millisecond)
	for i, id := range ids {
		sameMultiset(t, names[i], c.of(names[i]), env.Logs(id, true), true)
	}
	if n := len(c.of(env.Name("excluded-1"))); n != 0 {
		t.Fatalf("%d lines captured from an excluded container", n)
	}
	_ = excluded
	if len(c.beats) == 0 {
		t.Fatalf("no heartbeat in %d s", 2)
	}
	hb := c.beats[len(c.beats)-1]
	if hb.Field("containers") != "20" || !strings.HasPrefix(hb.Field("container."+names[7]), "running") {
		t.Fatalf("heartbeat fields %v", hb.Fields)
	}
	if !strings.Contains(string(hb.Line), names[0]+" running, following") {
		t.Fatalf("heartbeat line %q", hb.Line)
	}
}

func TestTTYContainer(t *testing.T) {
	t.Parallel()
	env := testdocker.New(t, testdocker.RequireDaemon(t))
	img := env.EmitterImage()
	name := env.Name("tty")
	c := startSource(t, fmt.Sprintf(`containers = [%q]`, name), nil)
	id := env.Create(testdocker.Container{Name: name, Image: img, TTY: true, Start: true,
		Cmd: []string{"-count", "300", "-rate", "1000", "-stderr-every", "3", "-long-every", "100", "-long-bytes", "40000"}})
	env.Wait(id, 60*time.Second)
	want := env.Logs(id, false)
	c.wait(60*time.Second, func() bool { return len(c.of(name)) >= len(want) })
	c.poll(300 * time.Millisecond)
	got := c.of(name)
	for _, e := range got {
		if e.Stream != "stdout" {
			t.Fatalf("a TTY line on stream %q", e.Stream)
		}
		if strings.HasSuffix(string(e.Line), "\r") {
			t.Fatalf("line keeps the terminal's carriage return: %q", e.Line)
		}
	}
	sameMultiset(t, name, got, want, false)
	long := 0
	for _, e := range got {
		if len(e.Line) == 40000 {
			long++
		}
	}
	if long != 3 {
		t.Fatalf("%d whole 40000-byte lines, want 3", long)
	}
}

func TestLineOf100KiBArrivesWhole(t *testing.T) {
	t.Parallel()
	env := testdocker.New(t, testdocker.RequireDaemon(t))
	img := env.EmitterImage()
	name := env.Name("long")
	c := startSource(t, fmt.Sprintf(`containers = [%q]`, name), nil)
	id := env.Create(testdocker.Container{Name: name, Image: img, Start: true,
		Cmd: []string{"-count", "40", "-rate", "50", "-stderr-every", "2", "-long-every", "5", "-long-bytes", "102400"}})
	env.Wait(id, 60*time.Second)
	want := env.Logs(id, false)
	c.wait(60*time.Second, func() bool { return len(c.of(name)) >= len(want) })
	c.poll(300 * time.Millisecond)
	got := c.of(name)
	sameMultiset(t, name, got, want, false)
	long := 0
	for _, e := range got {
		if len(e.Line) == 102400 {
			long++
			if e.Line[len(e.Line)-1] != '.' || e.Field("continued") != "" {
				t.Fatalf("long line not whole: ends %q, fields %v", e.Line[len(e.Line)-10:], e.Fields)
			}
		}
	}
	if long != 8 {
		t.Fatalf("%d lines of 100 KiB, want 8", long)
	}
}

// TestRecreatedUnderTheSameName removes a container and creates another one with the same
// name, as `docker compose up` does after a change: the new container is read from its first
// line, under the same origin, and its position replaces the old one.
func TestRecreatedUnderTheSameName(t *testing.T) {
	t.Parallel()
	env := testdocker.New(t, testdocker.RequireDaemon(t))
	img := env.EmitterImage()
	name := env.Name("web")
	c := startSource(t, fmt.Sprintf(`name_patterns = [%q]`, env.Name("w*")), nil)
	first := env.Create(testdocker.Container{Name: name, Image: img, Start: true,
		Cmd: []string{"-count", "100", "-rate", "500"}})
	env.Wait(first, 60*time.Second)
	wantFirst := env.Logs(first, true)
	c.until(60*time.Second, "the first container's lines", func() bool { return len(c.of(name)) >= 100 })
	env.Remove(first)
	c.until(60*time.Second, "the removed container's position to be dropped", func() bool {
		_, ok := c.s.Checkpoints()["container/"+name]
		return !ok
	})

	second := env.Create(testdocker.Container{Name: name, Image: img, Start: true,
		Cmd: []string{"-count", "150", "-rate", "500"}})
	env.Wait(second, 60*time.Second)
	wantSecond := env.Logs(second, true)
	c.until(60*time.Second, "the second container's lines", func() bool { return len(c.of(name)) >= 250 })
	c.poll(300 * time.Millisecond)
	var gotFirst, gotSecond []sdk.Event
	for _, e := range c.of(name) {
		if e.Field("container_id") == first {
			gotFirst = append(gotFirst, e)
		} else {
			gotSecond = append(gotSecond, e)
		}
	}
	sameMultiset(t, "first", gotFirst, wantFirst, true)
	sameMultiset(t, "second", gotSecond, wantSecond, true)
	cp := string(c.s.Checkpoints()["container/"+name])
	if !strings.Contains(cp, second) {
		t.Fatalf("checkpoint %s does not belong to the new container %s", cp, second)
	}
}

// TestDaemonRestartedUnderTheSource stops and restarts a private dockerd while a container
// with a restart policy logs: the source reports itself degraded, reconnects, and nothing is
// lost or repeated.
func TestDaemonRestartedUnderTheSource(t *testing.T) {
	t.Parallel()
	d := testdocker.StartDaemon(t)
	cli, err := testdocker.Connect(d.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	env := testdocker.New(t, cli)
	img := env.EmitterImage()
	name := env.Name("survivor")
	c := startSource(t, fmt.Sprintf(`
host = %q
containers = [%q]
reconnect_initial = "100ms"
reconnect_max = "500ms"
`, d.Host, name), nil)
	id := env.Create(testdocker.Container{Name: name, Image: img, Start: true, Restart: "always",
		Cmd: []string{"-rate", "200", "-stderr-every", "5"}})
	c.until(60*time.Second, "first lines", func() bool { return len(c.logs) > 100 })

	d.Stop()
	c.until(60*time.Second, "the source to report the daemon gone", func() bool {
		return len(c.status) > 0 && !c.status[len(c.status)-1].Healthy
	})
	reason := c.status[len(c.status)-1].Reason
	if !strings.Contains(reason, "cannot reach the Docker daemon") {
		t.Fatalf("degraded status says %q", reason)
	}
	d.Start()
	c.until(60*time.Second, "the source to reconnect", func() bool {
		return c.status[len(c.status)-1].Healthy
	})
	before := len(c.logs)
	c.until(60*time.Second, "lines after the restart", func() bool { return len(c.logs) > before+100 })

	// A cli made before the restart still works: the client reconnects per request.
	env.Stop(id, 5)
	want := env.Logs(id, true)
	c.wait(60*time.Second, func() bool { return len(c.of(name)) >= len(want) })
	c.poll(300 * time.Millisecond)
	sameMultiset(t, name, c.of(name), want, true)
	t.Logf("%d lines across a daemon restart; statuses: %v", len(want), c.status)
}
