// Command demo runs the fleet of docs/fleet.md on this machine: a three-node JetStream
// cluster (embedded nats-server, on 127.0.0.1), two detector agents (configs/fleet-detector.hcl)
// and three edge agents (configs/fleet-edge.hcl), each edge reading the log of one replica of
// the app from examples/fleet/logs. It prints the alert the detectors raise for the password
// resets spread over the three replicas, then stops everything. `make fleet-demo` runs it.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tda-dev/tda/plugins/nats/natstest"
)

func main() {
	tda := flag.String("tda", "bin/tda", "the tda binary")
	pluginDir := flag.String("plugin-dir", "bin/plugins", "the plugin directory")
	logs := flag.String("logs", "examples/fleet/logs", "one log per replica: <host>.log")
	configs := flag.String("configs", "configs", "where fleet-edge.hcl and fleet-detector.hcl are")
	work := flag.String("work", "run/fleet-demo", "working directory (emptied first)")
	timeout := flag.Duration("timeout", 2*time.Minute, "how long to wait for the alert")
	flag.Parse()
	if err := run(*tda, *pluginDir, *logs, *configs, *work, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "fleet-demo:", err)
		os.Exit(1)
	}
}

type agent struct {
	name string
	dir  string
	cmd  *exec.Cmd
	log  *os.File
}

func run(tda, pluginDir, logs, configs, work string, timeout time.Duration) error {
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	tda, pluginDir, logs, configs, work = abs(tda), abs(pluginDir), abs(logs), abs(configs), abs(work)
	if err := os.RemoveAll(work); err != nil {
		return err
	}
	hostLogs, err := filepath.Glob(filepath.Join(logs, "*.log"))
	if err != nil || len(hostLogs) == 0 {
		return fmt.Errorf("no <host>.log under %s", logs)
	}

	fmt.Println("== starting a three-node JetStream cluster on 127.0.0.1")
	cluster, err := natstest.Start(filepath.Join(work, "nats"), 3)
	if err != nil {
		return err
	}
	defer cluster.Shutdown()
	natsURL := strings.Join(cluster.URLs(), ",")
	fmt.Println("   ", natsURL)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var agents []*agent
	defer func() {
		for _, a := range agents {
			a.stop()
		}
	}()
	start := func(name, config string, env ...string) (*agent, error) {
		a := &agent{name: name, dir: filepath.Join(work, name)}
		if err := os.MkdirAll(a.dir, 0o755); err != nil {
			return nil, err
		}
		log, err := os.Create(filepath.Join(a.dir, "tda.log"))
		if err != nil {
			return nil, err
		}
		a.log = log
		a.cmd = exec.Command(tda, "run", "-config", filepath.Join(configs, config), "-plugin-dir", pluginDir)
		a.cmd.Dir = a.dir
		a.cmd.Env = append(os.Environ(), append(env, "NATS_URL="+natsURL)...)
		a.cmd.Stdout, a.cmd.Stderr = io.Discard, log
		if err := a.cmd.Start(); err != nil {
			return nil, fmt.Errorf("start %s: %w", name, err)
		}
		agents = append(agents, a)
		fmt.Printf("    %-10s pid %d, log %s\n", name, a.cmd.Process.Pid, filepath.Join(a.dir, "tda.log"))
		return a, nil
	}

	fmt.Println("== two detectors (configs/fleet-detector.hcl)")
	var detectors []*agent
	for i := 1; i <= 2; i++ {
		a, err := start(fmt.Sprintf("detector-%d", i), "fleet-detector.hcl", fmt.Sprintf("TDA_MEMBER=detector-%d", i))
		if err != nil {
			return err
		}
		detectors = append(detectors, a)
	}
	// The detectors announce themselves before they split the partitions.
	time.Sleep(4 * time.Second)

	fmt.Println("== three edges (configs/fleet-edge.hcl), one per replica of the app")
	for _, l := range hostLogs {
		host := strings.TrimSuffix(filepath.Base(l), ".log")
		appLogs := filepath.Join(work, host, "app")
		if err := os.MkdirAll(appLogs, 0o755); err != nil {
			return err
		}
		data, err := os.ReadFile(l)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(appLogs, "flask.log"), data, 0o644); err != nil {
			return err
		}
		if _, err := start(host, "fleet-edge.hcl", "TDA_HOST="+host, "TDA_APP_LOGS="+filepath.Join(appLogs, "*.log")); err != nil {
			return err
		}
	}

	fmt.Println("== waiting for the detectors' alert")
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return errors.New("interrupted")
		case <-time.After(500 * time.Millisecond):
		}
		for _, d := range detectors {
			if !d.running() {
				return fmt.Errorf("%s exited; see %s", d.name, d.log.Name())
			}
		}
		alerts := firing(detectors)
		if len(alerts) == 0 {
			continue
		}
		// A moment more, to show that no second alert follows.
		time.Sleep(3 * time.Second)
		alerts = firing(detectors)
		for _, a := range alerts {
			fmt.Printf("\n%s %s (%s) from %s:\n  %s\n  fingerprint %s\n", a.Severity, a.Rule, a.State, a.from, a.summary(), a.Fingerprint)
		}
		fmt.Printf("\n%d alert(s) from %d detector(s); the lines stay on the hosts, only the detection events crossed NATS.\n",
			len(alerts), len(detectors))
		fmt.Println("\n== the detectors' state (tda state): partitions, consumers acknowledged up to the commit, edges")
		for _, d := range detectors {
			fmt.Printf("  %s: %s\n", d.name, d.sourceState(tda, filepath.Join(configs, "fleet-detector.hcl")))
		}
		if len(alerts) != 1 {
			return fmt.Errorf("%d alerts, want exactly one", len(alerts))
		}
		return nil
	}
	return fmt.Errorf("no alert within %s; see the logs under %s", timeout, work)
}

// sourceState returns what tda state says of an agent's nats source.
func (a *agent) sourceState(tda, config string) string {
	cmd := exec.Command(tda, "state", "-json", "-config", config)
	cmd.Dir, cmd.Env = a.dir, a.cmd.Env
	out, err := cmd.Output()
	if err != nil {
		return fmt.Sprintf("tda state failed: %v", err)
	}
	var st struct {
		Reports []string `json:"reports"`
		Reasons []string `json:"reasons"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return fmt.Sprintf("tda state -json: %v", err)
	}
	for _, r := range append(st.Reports, st.Reasons...) {
		if strings.HasPrefix(r, "source.nats.") {
			return r
		}
	}
	return "(no report from the nats source yet)"
}

func (a *agent) running() bool {
	return a.cmd.ProcessState == nil && a.cmd.Process.Signal(syscall.Signal(0)) == nil
}

// stop asks the agent to stop and waits for it (killing it after 20 s).
func (a *agent) stop() {
	_ = a.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() {
		_ = a.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = a.cmd.Process.Kill()
		<-done
	}
	_ = a.log.Close()
}

type alert struct {
	Rule        string `json:"rule"`
	Severity    string `json:"severity"`
	State       string `json:"state"`
	Count       int    `json:"count"`
	Fingerprint string `json:"fingerprint"`
	Explanation string `json:"explanation"`
	Kind        string `json:"kind"`
	from        string
}

// summary is the explanation's last sentence, the per-replica split.
func (a alert) summary() string {
	if i := strings.LastIndex(a.Explanation, ". "); i >= 0 && strings.Contains(a.Explanation[i:], "across") {
		return strings.TrimSuffix(a.Explanation[i+2:], ".")
	}
	return a.Explanation
}

// firing reads the firing alerts from every detector's alerts/alerts.jsonl.
func firing(detectors []*agent) []alert {
	var out []alert
	for _, d := range detectors {
		f, err := os.Open(filepath.Join(d.dir, "alerts", "alerts.jsonl"))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var a alert
			if json.Unmarshal(sc.Bytes(), &a) == nil && a.Kind == "alert" && a.State == "firing" {
				a.from = d.name
				out = append(out, a)
			}
		}
		_ = f.Close()
	}
	return out
}
