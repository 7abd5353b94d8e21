package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/errdefs"

	"github.com/tda-dev/tda/plugins/internal/logpos"
	"github.com/tda-dev/tda/sdk"
)

// tailer reads one container's log: it follows the log while the container runs, reads what
// is left when it stops, and waits to be woken when it starts again. It exits when the
// container is removed or its context ends.
type tailer struct {
	r      *run
	id     string
	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

func (t *tailer) wake() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// Retry delays of a tailer whose reads fail while the daemon answers.
const (
	retryInitial = 500 * time.Millisecond
	retryMax     = 30 * time.Second
)

func (t *tailer) run(ctx context.Context) {
	defer close(t.done)
	retry := retryInitial
	var lastStart string
	for ctx.Err() == nil {
		info, err := t.r.cli.ContainerInspect(ctx, t.id)
		if errdefs.IsNotFound(err) {
			t.gone(ctx)
			return
		}
		if err != nil {
			if !t.pause(ctx, retry) {
				return
			}
			retry = min(retry*2, retryMax)
			continue
		}
		running := info.State != nil && info.State.Running
		startedAt := ""
		if info.State != nil {
			startedAt = info.State.StartedAt
		}
		t.update(info, running)
		n, err := t.read(ctx, info, running)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if errdefs.IsNotFound(err) {
				t.gone(ctx)
				return
			}
			t.problem(err)
			if !t.pause(ctx, retry) {
				return
			}
			retry = min(retry*2, retryMax)
			continue
		}
		retry = retryInitial
		t.problem(nil)
		if running {
			// The stream ended: the container stopped (or restarted). Look again at once: a
			// stopped container's log is read to its end, a restarted one is followed again.
			if n == 0 && startedAt == lastStart {
				// Nothing new and the same run: do not spin should the daemon end follow
				// streams early.
				if !t.pause(ctx, retryInitial) {
					return
				}
			}
			lastStart = startedAt
			continue
		}
		lastStart = startedAt
		select {
		case <-ctx.Done():
			return
		case <-t.kick:
		}
	}
}

// pause waits d or until woken; it returns false when ctx ended.
func (t *tailer) pause(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
	case <-t.kick:
	}
	return true
}

// gone reports a removed container: its position is forgotten (nothing is left to read).
func (t *tailer) gone(ctx context.Context) {
	t.r.mu.Lock()
	delete(t.r.positions, t.id)
	t.r.mu.Unlock()
	select {
	case t.r.items <- item{kind: itemForget, id: t.id}:
	case <-ctx.Done():
	}
}

func (t *tailer) update(info container.InspectResponse, running bool) {
	t.r.mu.Lock()
	defer t.r.mu.Unlock()
	w := t.r.watched[t.id]
	if w == nil {
		return
	}
	if info.Config != nil {
		w.image = info.Config.Image
	}
	if info.State != nil {
		w.state = info.State.Status
		if !running && info.State.Status == "exited" {
			w.state = fmt.Sprintf("exited (code %d)", info.State.ExitCode)
		}
	}
	w.following = running
}

func (t *tailer) problem(err error) {
	t.r.mu.Lock()
	defer t.r.mu.Unlock()
	w := t.r.watched[t.id]
	if w == nil {
		return
	}
	if err == nil {
		w.problem = ""
		return
	}
	msg := err.Error()
	if w.problem != msg {
		t.r.log.Warn("cannot read the container's log; retrying", "container", w.name, "error", msg)
	}
	w.problem = msg
	w.following = false
}

// read reads the log from the container's position to its end, or on and on while it runs
// (follow). It returns how many lines it delivered.
func (t *tailer) read(ctx context.Context, info container.InspectResponse, follow bool) (int, error) {
	pos := t.r.position(t.id)
	tty := info.Config != nil && info.Config.Tty
	opts := container.LogsOptions{
		ShowStdout: t.r.set.stdout || tty,
		ShowStderr: t.r.set.stderr,
		Timestamps: true,
		Follow:     follow,
		Since:      pos.since(),
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	body, err := t.r.cli.ContainerLogs(rctx, t.id, opts)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	if follow {
		since := opts.Since
		if since == "" {
			since = "the start of its log"
		}
		t.r.log.Info("following container", "container", strings.TrimPrefix(info.Name, "/"), "id", shortID(t.id),
			"since", since)
	}

	fields := eventFields(t.id, info)
	dec := newDecoder(body, tty, t.r.set.maxLineBytes)
	filter := newResumeFilter(pos)
	var occ occurrences
	var ready []logLine
	delivered := 0
	// Lines are handed to the batcher in groups: everything decoded from what was already
	// read from the daemon leaves together, so a burst makes one batch, not one per line.
	var group []sdk.Event
	groupBytes := 0
	send := func() error {
		if len(group) == 0 {
			return nil
		}
		select {
		case t.r.items <- item{kind: itemLines, id: t.id, pos: pos, events: group, bytes: groupBytes}:
		case <-ctx.Done():
			return ctx.Err()
		}
		t.r.delivered(t.id, pos, group[len(group)-1].Time, len(group))
		delivered += len(group)
		group, groupBytes = nil, 0
		return nil
	}
	renumbered := false
	add := func(lines []logLine) error {
		if filter.lost && !renumbered && len(lines) > 0 {
			// The position's own line is gone from the log: the lines from here on are not
			// the continuation of the numbered reading, so they start a new one.
			pos.Epoch, renumbered = "", true
		}
		for _, l := range lines {
			if tty && !t.r.set.stdout {
				continue
			}
			pos.advance(l.ts.UnixNano(), l.occ)
			pos.From = 0
			if since, ok := dec.pendingSince(); ok {
				pos.From = since.UnixNano()
			}
			ev := sdk.Event{Time: l.ts, Kind: sdk.KindLog, Stream: l.stream, Line: l.line,
				Fields: make(map[string]string, len(fields)+2)}
			for k, v := range fields {
				ev.Fields[k] = v
			}
			ev.Fields[logpos.Field] = logpos.Format(pos.stream(), pos.Seq)
			if l.continued {
				ev.Fields["continued"] = "true"
			}
			group = append(group, ev)
			groupBytes += len(l.line) + 64
		}
		if len(group) >= groupMaxEvents || groupBytes >= groupMaxBytes || !dec.buffered() {
			return send()
		}
		return nil
	}
	for {
		l, err := dec.next()
		if err != nil {
			if aerr := add(filter.end(ready[:0])); aerr != nil {
				return delivered, aerr
			}
			if serr := send(); serr != nil {
				return delivered, serr
			}
			if errors.Is(err, io.EOF) {
				return delivered, nil
			}
			if ctx.Err() != nil {
				return delivered, ctx.Err()
			}
			return delivered, fmt.Errorf("reading the log stream: %w", err)
		}
		if l.daemonErr != "" {
			t.r.log.Warn("the daemon reported an error while reading the container's log",
				"id", shortID(t.id), "error", l.daemonErr)
			continue
		}
		l.occ = occ.count(l.ts.UnixNano())
		ready = filter.push(l, l.occ, ready[:0])
		if err := add(ready); err != nil {
			return delivered, err
		}
	}
}

// A group of lines handed to the batcher at once is at most this large.
const (
	groupMaxEvents = 1000
	groupMaxBytes  = 1 << 20
)

// eventFields are the fields every line of the container carries.
func eventFields(id string, info container.InspectResponse) map[string]string {
	f := map[string]string{"container_id": id}
	if info.Config != nil {
		if info.Config.Image != "" {
			f["image"] = info.Config.Image
		}
		if s := info.Config.Labels["com.docker.compose.service"]; s != "" {
			f["compose_service"] = s
		}
		if p := info.Config.Labels["com.docker.compose.project"]; p != "" {
			f["compose_project"] = p
		}
	}
	return f
}

// describe is the heartbeat's text for a container.
func (w *watch) describe() string {
	var b strings.Builder
	b.WriteString(w.name)
	b.WriteString(" ")
	b.WriteString(w.state)
	if w.following {
		b.WriteString(", following")
	}
	fmt.Fprintf(&b, ", %d lines", w.lines)
	if !w.lastLine.IsZero() {
		fmt.Fprintf(&b, ", last at %s", w.lastLine.UTC().Format(time.RFC3339))
	}
	if w.problem != "" {
		b.WriteString(", problem: ")
		b.WriteString(w.problem)
	}
	return b.String()
}
