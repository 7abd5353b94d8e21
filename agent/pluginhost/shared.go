package pluginhost

import (
	"context"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/host"
)

// Processes starts the plugin processes of a running agent's instances. An instance of a
// component whose binary serves several instances (Binary.Shares) joins the one process of
// that binary; every other instance (a separate plugin binary, a component under a
// memory_limit, an instance with isolate = true) gets a process of its own, as one process
// per instance always did.
type Processes struct {
	reg *Registry
	// env is added to every process's environment; stdout receives what they print.
	env    []string
	stdout io.Writer

	mu sync.Mutex
	// shared holds one entry per binary that shares its process, so it is bounded by the
	// registry's binaries.
	shared map[string]*sharedProcess
	// prestarts are the launches Prestart began; Close waits for them.
	prestarts sync.WaitGroup
	// watchdogs are the goroutines that ping the shared processes (see watchdog); each ends
	// when its process exits or Close cancels ctx.
	watchdogs sync.WaitGroup
	ctx       context.Context
	cancel    context.CancelFunc
	// pingEvery and pingTimeout pace the watchdogs.
	pingEvery, pingTimeout time.Duration
}

// A shared process is pinged every PingEvery; one that has not answered within PingTimeout
// is hung (stopped, deadlocked, stuck in the kernel) and gets SIGKILL. Its instances then
// see it exit and restart. Without this, a hung process whose instances are all idle, or
// whose source is the only thing that would feed the others, would never be noticed: no
// call to it would run past its call_timeout.
const (
	PingEvery   = 5 * time.Second
	PingTimeout = 20 * time.Second
)

// NewProcesses returns the process starter of a registry's plugins.
func NewProcesses(reg *Registry, env []string, stdout io.Writer) *Processes {
	ctx, cancel := context.WithCancel(context.Background())
	return &Processes{reg: reg, env: env, stdout: stdout, shared: map[string]*sharedProcess{},
		ctx: ctx, cancel: cancel, pingEvery: PingEvery, pingTimeout: PingTimeout}
}

// SetPing changes how often the shared processes are pinged and how long a ping may take
// (tests); call it before the first Start.
func (p *Processes) SetPing(every, timeout time.Duration) {
	p.pingEvery, p.pingTimeout = every, timeout
}

// sharedProcess is the process a binary's instances share.
type sharedProcess struct {
	// mu is held while the process starts, so that instances starting together (or
	// restarting together after it crashed) get one process, not one each.
	mu   sync.Mutex
	proc *host.Process
	// users counts the instances that hold proc and have not released it; the last one to
	// release it stops it.
	users int
}

// Instance is one configured instance's hold on the process that serves it.
type Instance struct {
	// Conn reaches the instance: in a shared process, every call names it.
	*host.Conn
	proc     *host.Process
	kind     sdk.ComponentKind
	instance string
	// shared is the process entry the instance joined; nil for a process of its own.
	shared *sharedProcess
	once   sync.Once
}

// closeTimeout bounds the Close an instance leaving a shared process sends it.
const closeTimeout = 2 * time.Second

// Start starts (or joins) the process that serves the instance named instance (its address)
// of component kind.typ. isolate asks for a process of its own whatever the binary allows.
func (p *Processes) Start(kind sdk.ComponentKind, typ, instance string, isolate bool, logger hclog.Logger) (*Instance, error) {
	b, c, ok := p.reg.Lookup(kind, typ)
	if !ok {
		return nil, fmt.Errorf("no plugin in %s offers %s %q", p.reg.Dir, kind, typ)
	}
	if isolate || !b.Shares(c) {
		proc, err := launchBinary(b, c, logger, p.env, p.stdout)
		if err != nil {
			return nil, err
		}
		return &Instance{Conn: proc.Conn, proc: proc, kind: kind, instance: instance}, nil
	}
	sp := p.entry(b)
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if err := p.ensureLocked(sp, b, c, logger); err != nil {
		return nil, err
	}
	sp.users++
	return &Instance{Conn: sp.proc.Conn.ForInstance(instance), proc: sp.proc, kind: kind, instance: instance, shared: sp}, nil
}

// entry returns the shared process entry of b.
func (p *Processes) entry(b *Binary) *sharedProcess {
	p.mu.Lock()
	defer p.mu.Unlock()
	sp, ok := p.shared[b.Path]
	if !ok {
		sp = &sharedProcess{}
		p.shared[b.Path] = sp
	}
	return sp
}

// ensureLocked launches sp's process unless it runs; sp.mu is held.
func (p *Processes) ensureLocked(sp *sharedProcess, b *Binary, c sdk.ComponentDescription, logger hclog.Logger) error {
	if sp.proc != nil && !sp.proc.Exited() {
		return nil
	}
	// The process's log lines name their instance themselves; the process is the binary's,
	// not the first instance's.
	proc, err := launchBinary(b, c, logger.ResetNamed("plugins"), p.env, p.stdout)
	if err != nil {
		return err
	}
	sp.proc, sp.users = proc, 0
	p.watchdogs.Add(1)
	go p.watchdog(proc, logger.ResetNamed("plugins"))
	return nil
}

// watchdog pings a shared process until it exits or Close is called, and kills it with
// SIGKILL when a ping goes unanswered for pingTimeout.
func (p *Processes) watchdog(proc *host.Process, logger hclog.Logger) {
	defer p.watchdogs.Done()
	t := time.NewTicker(p.pingEvery)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		if proc.Exited() {
			return
		}
		ctx, cancel := context.WithTimeout(p.ctx, p.pingTimeout)
		err := proc.Ping(ctx)
		cancel()
		if err == nil || proc.Exited() {
			continue
		}
		if p.ctx.Err() != nil {
			return // the agent is stopping: a failed ping is its doing
		}
		pid := proc.Pid()
		logger.Error("the shared plugin process did not answer a ping; killing it, and every instance in it restarts",
			"pid", pid, "timeout", p.pingTimeout, "error", err)
		if pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		return
	}
}

// Prestart begins launching the shared process that will serve component kind.typ, so that
// it starts while the agent prepares the rest (state, control socket, pipelines); the
// instance's Start then finds it running, or waits for it. It does nothing for a component
// that gets a process of its own. A launch that fails is tried again, and reported, by Start.
func (p *Processes) Prestart(kind sdk.ComponentKind, typ string, logger hclog.Logger) {
	b, c, ok := p.reg.Lookup(kind, typ)
	if !ok || !b.Shares(c) {
		return
	}
	sp := p.entry(b)
	p.prestarts.Add(1)
	go func() {
		defer p.prestarts.Done()
		sp.mu.Lock()
		defer sp.mu.Unlock()
		_ = p.ensureLocked(sp, b, c, logger)
	}()
}

// Close waits for the launches Prestart began, stops the watchdogs, and stops the shared
// processes that no instance holds (the agent stopped before starting them, or after
// releasing them all).
func (p *Processes) Close() {
	p.prestarts.Wait()
	p.cancel()
	p.watchdogs.Wait()
	p.mu.Lock()
	entries := make([]*sharedProcess, 0, len(p.shared))
	for _, sp := range p.shared {
		entries = append(entries, sp)
	}
	p.mu.Unlock()
	for _, sp := range entries {
		sp.mu.Lock()
		if sp.proc != nil && sp.users == 0 {
			sp.proc.Kill()
			sp.proc = nil
		}
		sp.mu.Unlock()
	}
}

// Pid is the process id of the instance's process.
func (i *Instance) Pid() int { return i.proc.Pid() }

// Exited reports whether the instance's process has exited.
func (i *Instance) Exited() bool { return i.proc.Exited() }

// Shared reports whether the instance runs in a process it shares with others.
func (i *Instance) Shared() bool { return i.shared != nil }

// Kill stops the instance's process because it failed (crashed, hung, unreachable): in a
// shared process, every instance it serves fails with it, and each restarts as its own
// supervisor decides; the next Start launches a new process.
func (i *Instance) Kill() {
	if sp := i.shared; sp != nil {
		sp.mu.Lock()
		if sp.proc == i.proc {
			sp.proc, sp.users = nil, 0
		}
		sp.mu.Unlock()
	}
	i.proc.Kill()
}

// Release ends the instance (the agent stops, or the instance failed to start): a process
// of its own stops; a shared process is told to close the instance and stops when the last
// of its instances is released. Release is idempotent.
func (i *Instance) Release() {
	i.once.Do(i.release)
}

func (i *Instance) release() {
	sp := i.shared
	if sp == nil {
		i.proc.Kill()
		return
	}
	sp.mu.Lock()
	current := sp.proc == i.proc
	last := false
	if current {
		sp.users--
		if last = sp.users <= 0; last {
			sp.proc, sp.users = nil, 0
		}
	}
	sp.mu.Unlock()
	switch {
	case !current || last:
		// A process already replaced has exited (Start replaces only those); the last
		// instance's process stops with it.
		i.proc.Kill()
	default:
		// A Close that fails leaves the instance's memory in the process until it stops.
		_ = i.closeInProcess()
	}
}

// closeInProcess tells the shared process to close the instance and forget it.
func (i *Instance) closeInProcess() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	switch i.kind {
	case sdk.KindSource:
		return i.Conn.Source().Close(ctx)
	case sdk.KindProcessor:
		return i.Conn.Processor().Close(ctx)
	default:
		return i.Conn.Sink().Close(ctx)
	}
}
