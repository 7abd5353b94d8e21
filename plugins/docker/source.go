package docker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/hashicorp/go-hclog"

	"github.com/tda-dev/tda/sdk"
)

// Component returns the "docker" source component.
func Component() sdk.Component {
	return sdk.SourceComponent("docker", spec, newSource)
}

func newSource(c *sdk.Config, res sdk.Resources) (sdk.Source, error) {
	set, err := parseSettings(c)
	if err != nil {
		return nil, err
	}
	return &source{set: set, log: res.Logger}, nil
}

// source is one configured instance.
type source struct {
	set settings
	log hclog.Logger
}

// Batching limits: a batch leaves as soon as the tailers have nothing more to hand over, or
// when it reaches either limit.
const (
	batchMaxEvents = 2000
	batchMaxBytes  = 2 << 20
	itemQueue      = 4096
)

// Run implements sdk.Source.
func (s *source) Run(ctx context.Context, out sdk.Output) error {
	opts := []client.Opt{client.FromEnv}
	if s.set.host != "" {
		opts = append(opts, client.WithHost(s.set.host))
	}
	if s.set.apiVersion != "" {
		opts = append(opts, client.WithVersion(s.set.apiVersion))
	} else {
		opts = append(opts, client.WithAPIVersionNegotiation())
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		out.SetStatus(sdk.Status{Healthy: false, Reason: fmt.Sprintf("Docker client: %v; check host and DOCKER_HOST", err)})
		<-ctx.Done()
		return nil
	}
	defer cli.Close()
	r := newRun(s.set, s.log, out, cli)
	return r.run(ctx)
}

// run is the state of one Run of the source.
type run struct {
	set settings
	log hclog.Logger
	out sdk.Output
	cli *client.Client

	// restored are the positions found in the checkpoints, by container ID, with the name
	// they were stored under; restoredNames are the names with a stored position.
	restored      map[string]restoredPosition
	restoredNames map[string]string
	baseline      int64
	pruned        bool

	items chan item

	mu        sync.Mutex
	positions map[string]position // last position handed to the batcher, by container ID
	watched   map[string]*watch   // selected containers, by ID
	connected bool
	daemon    string // what the heartbeat says about the daemon
	status    sdk.Status
}

type restoredPosition struct {
	name string
	pos  position
}

// watch is what the heartbeat reports about one container.
type watch struct {
	name      string
	image     string
	state     string
	following bool
	lines     uint64
	lastLine  time.Time
	problem   string
}

func newRun(set settings, log hclog.Logger, out sdk.Output, cli *client.Client) *run {
	r := &run{set: set, log: log, out: out, cli: cli,
		restored: map[string]restoredPosition{}, restoredNames: map[string]string{},
		items: make(chan item, itemQueue), positions: map[string]position{}, watched: map[string]*watch{}}
	for key, val := range out.Checkpoints() {
		if key == baselineKey {
			var ns int64
			if _, err := fmt.Sscan(string(val), &ns); err == nil {
				r.baseline = ns
			}
			continue
		}
		name, ok := checkpointName(key)
		if !ok {
			continue
		}
		p, err := decodePosition(val)
		if err != nil {
			log.Warn("ignoring an unreadable checkpoint; the container is read from the baseline",
				"container", name, "error", err)
			continue
		}
		r.restored[p.ID] = restoredPosition{name: name, pos: p}
		r.restoredNames[name] = p.ID
	}
	return r
}

func (r *run) run(ctx context.Context) error {
	var first []sdk.Checkpoint
	if r.baseline == 0 {
		r.baseline = time.Now().UnixNano()
		first = append(first, sdk.Checkpoint{Key: baselineKey, Value: []byte(fmt.Sprint(r.baseline))})
	}
	b := newBatcher(r)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.run(ctx, first)
	}()
	r.connectLoop(ctx)
	wg.Wait()
	return nil
}

// connectLoop keeps a session with the daemon, reconnecting with backoff when it goes away.
func (r *run) connectLoop(ctx context.Context) {
	delay := r.set.reconnectInitial
	for ctx.Err() == nil {
		started := time.Now()
		err := r.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > r.set.reconnectMax {
			delay = r.set.reconnectInitial
		}
		wait := delay/2 + rand.N(delay/2+1)
		r.setDisconnected(fmt.Sprintf("cannot reach the Docker daemon at %s: %v "+
			"(check that dockerd is running and that tda may read its socket); retrying with backoff",
			r.cli.DaemonHost(), err))
		r.log.Debug("reconnecting", "in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		delay = min(delay*2, r.set.reconnectMax)
	}
}

func (r *run) setStatus(s sdk.Status) {
	r.mu.Lock()
	changed := r.status != s
	r.status = s
	r.mu.Unlock()
	if changed {
		r.out.SetStatus(s)
		if s.Healthy {
			r.log.Info(s.Reason)
		} else {
			r.log.Warn(s.Reason)
		}
	}
}

func (r *run) setDisconnected(reason string) {
	r.mu.Lock()
	r.connected = false
	r.daemon = "unreachable"
	for _, w := range r.watched {
		w.following = false
		w.state = "unknown"
	}
	r.mu.Unlock()
	r.setStatus(sdk.Status{Healthy: false, Reason: reason})
}

// session follows the daemon until its event stream breaks or ctx ends.
func (r *run) session(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ping, err := r.cli.Ping(ctx)
	if err != nil {
		return err
	}
	ver, err := r.cli.ServerVersion(ctx)
	if err != nil {
		return err
	}
	// Subscribe before listing (replaying the last seconds) so that no start is missed.
	evs, errs := r.cli.Events(ctx, events.ListOptions{
		Since:   fmt.Sprint(time.Now().Add(-2 * time.Second).Unix()),
		Filters: filters.NewArgs(filters.Arg("type", string(events.ContainerEventType))),
	})
	list, err := r.cli.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return err
	}
	sup := &supervisor{r: r, tailers: map[string]*tailer{}, stopping: map[string]*tailer{},
		exits: make(chan *tailer, 16), cancel: cancel}
	defer sup.stopAll()

	r.mu.Lock()
	r.watched = map[string]*watch{}
	r.connected = true
	r.daemon = fmt.Sprintf("connected (Docker %s, API %s)", ver.Version, ping.APIVersion)
	r.mu.Unlock()

	names := map[string]bool{}
	for _, c := range list {
		name := containerName(c.Names)
		names[name] = true
		if r.set.sel.selected(name, c.Labels) {
			sup.ensure(ctx, c.ID, name)
		}
	}
	r.pruneCheckpoints(ctx, names)
	r.setStatus(sdk.Status{Healthy: true, Reason: fmt.Sprintf(
		"connected to Docker %s (API %s) at %s; watching %s",
		ver.Version, r.cli.ClientVersion(), r.cli.DaemonHost(), containers(len(sup.tailers)))})

	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errs:
			return fmt.Errorf("event stream: %w", err)
		case m := <-evs:
			sup.handle(ctx, m)
		case t := <-sup.exits:
			sup.exited(t)
		}
	}
}

// pruneCheckpoints drops, once per run, the stored positions of containers that no longer
// exist under their name.
func (r *run) pruneCheckpoints(ctx context.Context, names map[string]bool) {
	if r.pruned {
		return
	}
	r.pruned = true
	var cps []sdk.Checkpoint
	for name := range r.restoredNames {
		if !names[name] {
			cps = append(cps, sdk.Checkpoint{Key: containerKey(name), Delete: true})
		}
	}
	if len(cps) > 0 {
		sort.Slice(cps, func(i, j int) bool { return cps[i].Key < cps[j].Key })
		select {
		case r.items <- item{kind: itemCheckpoints, cps: cps}:
		case <-ctx.Done():
		}
	}
}

// initialPosition returns where to start reading a container tda has not read in this run.
func (r *run) initialPosition(id, name string) (pos position, persist bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.positions[id]; ok {
		return p, false
	}
	if rp, ok := r.restored[id]; ok {
		// Stored under another name: the container was renamed while tda was away.
		return rp.pos, rp.name != name
	}
	if r.set.fromBeginning {
		return position{ID: id}, false
	}
	// Lines from before this source first started are not wanted; a container created since
	// is read from its first line.
	return position{ID: id, TS: r.baseline}, false
}

func (r *run) setPosition(id string, p position) {
	r.mu.Lock()
	r.positions[id] = p
	r.mu.Unlock()
}

func (r *run) position(id string) position {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.positions[id]
}

// delivered records lines handed to the batcher: n of them, the last stamped ts.
func (r *run) delivered(id string, p position, ts time.Time, n int) {
	r.mu.Lock()
	r.positions[id] = p
	if w := r.watched[id]; w != nil {
		w.lines += uint64(n)
		w.lastLine = ts
	}
	r.mu.Unlock()
}

// containerName returns a container's name without the leading slash (the first of its names
// that is not a link alias).
func containerName(names []string) string {
	for _, n := range names {
		n = strings.TrimPrefix(n, "/")
		if !strings.Contains(n, "/") {
			return n
		}
	}
	if len(names) > 0 {
		return strings.TrimPrefix(names[0], "/")
	}
	return ""
}

// supervisor owns the tailers of one session.
type supervisor struct {
	r       *run
	tailers map[string]*tailer
	// stopping are tailers cancelled while the session goes on; a new tailer for the same
	// container waits for the old one to finish.
	stopping map[string]*tailer
	exits    chan *tailer
	wg       sync.WaitGroup
	// cancel ends the session, and with it every tailer.
	cancel context.CancelFunc
}

// ensure starts a tailer for the container unless one runs, and wakes it.
func (s *supervisor) ensure(ctx context.Context, id, name string) {
	if t, ok := s.tailers[id]; ok {
		t.wake()
		return
	}
	if old, ok := s.stopping[id]; ok {
		<-old.done
		delete(s.stopping, id)
	}
	pos, persist := s.r.initialPosition(id, name)
	s.r.setPosition(id, pos)
	select {
	case s.r.items <- item{kind: itemAttach, id: id, name: name, pos: pos, persist: persist}:
	case <-ctx.Done():
		return
	}
	tctx, cancel := context.WithCancel(ctx)
	t := &tailer{r: s.r, id: id, kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	s.tailers[id] = t
	s.r.mu.Lock()
	s.r.watched[id] = &watch{name: name, state: "unknown"}
	s.r.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t.run(tctx)
		select {
		case s.exits <- t:
		case <-ctx.Done():
		}
	}()
}

func (s *supervisor) exited(t *tailer) {
	if s.stopping[t.id] == t {
		delete(s.stopping, t.id)
	}
	if s.tailers[t.id] == t {
		delete(s.tailers, t.id)
		s.r.mu.Lock()
		delete(s.r.watched, t.id)
		s.r.mu.Unlock()
	}
}

// stopAll ends the session's tailers and waits for them.
func (s *supervisor) stopAll() {
	s.cancel()
	s.wg.Wait()
}

// handle reacts to one container event.
func (s *supervisor) handle(ctx context.Context, m events.Message) {
	id := m.Actor.ID
	switch m.Action {
	case events.ActionCreate, events.ActionStart, events.ActionRestart, events.ActionRename, events.ActionUnPause:
	case events.ActionDie, events.ActionStop, events.ActionKill, events.ActionDestroy, events.ActionOOM:
		// The tailer's stream ends by itself; waking it makes it look at the container now.
		if t, ok := s.tailers[id]; ok {
			t.wake()
		}
		return
	default:
		return
	}
	info, err := s.r.cli.ContainerInspect(ctx, id)
	if err != nil {
		if t, ok := s.tailers[id]; ok {
			t.wake()
		}
		return
	}
	name := strings.TrimPrefix(info.Name, "/")
	var labels map[string]string
	if info.Config != nil {
		labels = info.Config.Labels
	}
	selected := s.r.set.sel.selected(name, labels)
	t, running := s.tailers[id]
	switch {
	case running && !selected:
		s.r.log.Info("container no longer selected; stopped following it", "container", name, "id", shortID(id))
		t.cancel()
		delete(s.tailers, id)
		s.stopping[id] = t
		s.r.mu.Lock()
		delete(s.r.watched, id)
		s.r.mu.Unlock()
	case running:
		s.r.mu.Lock()
		w := s.r.watched[id]
		renamed := w != nil && w.name != name
		if w != nil {
			w.name = name
		}
		s.r.mu.Unlock()
		if renamed {
			select {
			case s.r.items <- item{kind: itemRename, id: id, name: name}:
			case <-ctx.Done():
			}
		}
		t.wake()
	case selected:
		s.ensure(ctx, id, name)
	}
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
