package runtime_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tda-dev/tda/agent/agenttest"
)

// componentState is what `tda state -json` says of one component.
type componentState struct {
	Address  string `json:"address"`
	Healthy  bool   `json:"healthy"`
	Reason   string `json:"reason"`
	Restarts int    `json:"restarts"`
}

func componentStates(t *testing.T, bins agenttest.Binaries, a *agenttest.Agent) map[string]componentState {
	t.Helper()
	code, stdout, stderr := agenttest.RunCLI(t, bins, a.Dir, "state", "-json", "-config", a.Config)
	if code != 0 && code != 2 {
		t.Fatalf("tda state exited %d: %s", code, stderr)
	}
	var st struct {
		Components []componentState `json:"components"`
	}
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("tda state -json printed %q: %v", stdout, err)
	}
	out := map[string]componentState{}
	for _, c := range st.Components {
		out[c.Address] = c
	}
	return out
}

// The plugins built into tda serve every instance from one process, except an instance with
// isolate = true. SIGKILL of the shared process mid-stream restarts every instance it
// served, each shows its restart in the state, and nothing is lost or repeated; the
// isolated instance (here the processor) keeps its process.
func TestSharedProcessCrashRestartsEveryInstance(t *testing.T) {
	bins := agenttest.Build(t).BuiltinOnly(t) // the plugins built into tda serve it all
	a := agenttest.New(t, bins, `
agent {
  data_dir            = "DIR/data"
  checkpoint_interval = "200ms"
  bundled_plugins     = "shared_process"
}
source "file" "in" {
  paths = ["DIR/in/*.log"]
}
processor "override" "flags" {
  isolate = true
}
sink "jsonl" "out" {
  path = "DIR/out.jsonl"
}
sink "console" "screen" {}
pipeline "p" {
  from    = [source.file.in]
  through = [processor.override.flags]
  to      = [sink.jsonl.out, sink.console.screen]
}
`)
	if err := os.MkdirAll(a.Path("in"), 0o755); err != nil {
		t.Fatal(err)
	}
	input := a.Path("in", "app.log")
	appendLines(t, input, 0, 1000)
	a.Start()
	pids := a.PluginPids()
	if len(pids) != 2 {
		t.Fatalf("want 2 plugin processes (one shared by three instances, one isolated), got %v", pids)
	}
	out := a.Path("out.jsonl")
	agenttest.WaitFor(t, "the first lines", 60*time.Second, func() bool { return agenttest.CountLines(out) >= 1000 })

	// Which process is whose: the isolated processor's is the one the state names for it.
	before := componentStates(t, bins, a)
	isolatedPid := pidOf(t, a, "processor.override.flags")
	sharedPid := 0
	for pid := range pids {
		if pid != isolatedPid {
			sharedPid = pid
		}
	}
	if sharedPid == 0 || isolatedPid == 0 {
		t.Fatalf("shared %d, isolated %d among %v", sharedPid, isolatedPid, pids)
	}
	shared := []string{"source.file.in", "sink.jsonl.out", "sink.console.screen"}
	for _, addr := range shared {
		if got := pidOf(t, a, addr); got != sharedPid {
			t.Fatalf("%s runs in process %d, want the shared %d", addr, got, sharedPid)
		}
	}

	const total = 30000
	written := make(chan struct{})
	go func() {
		defer close(written)
		for i := 1000; i < total; i += 500 {
			appendLines(t, input, i, i+500)
			time.Sleep(25 * time.Millisecond)
		}
	}()
	agenttest.WaitFor(t, "10000 lines", 60*time.Second, func() bool { return agenttest.CountLines(out) >= 10000 })
	if err := syscall.Kill(sharedPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-written
	agenttest.WaitFor(t, "every line", 90*time.Second, func() bool { return agenttest.CountLines(out) >= total })
	// Every instance of the killed process shows it: the busy ones (the source, the jsonl
	// sink) restarted; the idle console sink, which gets alerts only, restarted or reports
	// the exit until it is next called. The isolated processor did neither.
	agenttest.WaitFor(t, "the restarts in the state", 30*time.Second, func() bool {
		st := componentStates(t, bins, a)
		for _, addr := range []string{"source.file.in", "sink.jsonl.out"} {
			if st[addr].Restarts <= before[addr].Restarts {
				return false
			}
		}
		idle := st["sink.console.screen"]
		return idle.Restarts > before["sink.console.screen"].Restarts ||
			(!idle.Healthy && strings.Contains(idle.Reason, fmt.Sprintf("plugin process %d exited", sharedPid)))
	})
	if st := componentStates(t, bins, a); st["processor.override.flags"].Restarts != before["processor.override.flags"].Restarts {
		t.Fatalf("the isolated processor restarted too: %+v", st["processor.override.flags"])
	}
	if got := len(a.PluginPids()); got != 2 {
		t.Fatalf("after the restart: %d plugin processes, want 2 (the three instances share the new one)", got)
	}
	if _, alive := a.PluginPids()[isolatedPid]; !alive {
		t.Fatalf("the isolated processor's process %d was replaced", isolatedPid)
	}
	if code, took := a.Stop(); code != 0 || took > 10*time.Second {
		t.Fatalf("stop: exit %d after %v\n%s", code, took, a.Logs())
	}
	counts, _ := lineCounts(t, out)
	for i := 0; i < total; i++ {
		if counts[i] != 1 {
			t.Fatalf("line %d delivered %d times", i, counts[i])
		}
	}
}

// pidOf is the plugin process id the agent's log names for an instance at its last start.
func pidOf(t *testing.T, a *agenttest.Agent, addr string) int {
	t.Helper()
	code, stdout, stderr := agenttest.RunCLI(t, agenttest.Build(t), a.Dir, "state", "-json", "-config", a.Config)
	if code != 0 && code != 2 {
		t.Fatalf("tda state exited %d: %s", code, stderr)
	}
	var st struct {
		Components []struct {
			Address string `json:"address"`
			Pid     int    `json:"pid"`
		} `json:"components"`
	}
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatal(err)
	}
	for _, c := range st.Components {
		if c.Address == addr {
			return c.Pid
		}
	}
	t.Fatalf("%s is not in the state: %s", addr, strings.TrimSpace(fmt.Sprint(stdout)))
	return 0
}

// A shared process that stops answering (SIGSTOP) is a hung plugin for every instance in
// it. Here the source is stopped with it, so no call runs into its call_timeout: the
// process's watchdog, whose ping goes unanswered, gets it SIGKILLed; every instance restarts
// in a new process, and nothing is lost or repeated.
func TestHungSharedProcessIsKilledAndReplaced(t *testing.T) {
	bins := agenttest.Build(t).BuiltinOnly(t)
	a := agenttest.New(t, bins, `
agent {
  data_dir            = "DIR/data"
  checkpoint_interval = "200ms"
  bundled_plugins     = "shared_process"
}
source "file" "in" {
  paths        = ["DIR/in/*.log"]
  call_timeout = "2s"
}
processor "override" "flags" {
  call_timeout = "2s"
}
sink "jsonl" "out" {
  path         = "DIR/out.jsonl"
  call_timeout = "2s"
}
pipeline "p" {
  from    = [source.file.in]
  through = [processor.override.flags]
  to      = [sink.jsonl.out]
}
`)
	if err := os.MkdirAll(a.Path("in"), 0o755); err != nil {
		t.Fatal(err)
	}
	input := a.Path("in", "app.log")
	appendLines(t, input, 0, 2000)
	a.Start()
	pids := a.PluginPids()
	if len(pids) != 1 {
		t.Fatalf("want 1 plugin process for the three instances, got %v", pids)
	}
	var stopped int
	for pid := range pids {
		stopped = pid
	}
	out := a.Path("out.jsonl")
	agenttest.WaitFor(t, "the first lines", 60*time.Second, func() bool { return agenttest.CountLines(out) >= 2000 })
	if err := syscall.Kill(stopped, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(stopped, syscall.SIGKILL) // never left stopped, whatever happens
	appendLines(t, input, 2000, 5000)
	agenttest.WaitFor(t, "every line through a new process", 120*time.Second, func() bool {
		return agenttest.CountLines(out) >= 5000
	})
	after := a.PluginPids()
	if _, still := after[stopped]; still || len(after) != 1 {
		t.Fatalf("the stopped process %d is still a child, or not one process serves them: %v", stopped, after)
	}
	if code, took := a.Stop(); code != 0 || took > 10*time.Second {
		t.Fatalf("stop: exit %d after %v\n%s", code, took, a.Logs())
	}
	counts, _ := lineCounts(t, out)
	for i := 0; i < 5000; i++ {
		if counts[i] != 1 {
			t.Fatalf("line %d delivered %d times", i, counts[i])
		}
	}
	if !strings.Contains(a.Logs(), "plugin restarted") {
		t.Fatalf("no restart in the log:\n%s", a.Logs())
	}
}
