package docker

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tda-dev/tda/sdk"
)

type itemKind int

const (
	// itemLines carries lines of one container and its position after the last of them.
	itemLines itemKind = iota
	// itemAttach names a container about to be read, with its starting position (stored at
	// once when persist is set).
	itemAttach
	// itemRename moves a container's position to its new name.
	itemRename
	// itemForget drops the position of a removed container.
	itemForget
	// itemCheckpoints carries checkpoint changes alone.
	itemCheckpoints
)

// item is what the tailers and the supervisor hand to the batcher, in order.
type item struct {
	kind    itemKind
	id      string
	name    string
	pos     position
	persist bool
	events  []sdk.Event
	bytes   int
	cps     []sdk.Checkpoint
}

// batcher is the only caller of Output.Emit: it gathers lines into batches, attaches the
// checkpoint of every container the batch advanced, names lines after their container (so
// that a rename takes effect exactly between two lines), and adds the heartbeat.
type batcher struct {
	r       *run
	names   map[string]string   // container ID -> name
	last    map[string]position // container ID -> last position handed over
	events  []sdk.Event
	bytes   int
	cps     map[string]sdk.Checkpoint
	cpOrder []string
}

func newBatcher(r *run) *batcher {
	return &batcher{r: r, names: map[string]string{}, last: map[string]position{},
		cps: map[string]sdk.Checkpoint{}}
}

func (b *batcher) run(ctx context.Context, first []sdk.Checkpoint) {
	for _, c := range first {
		b.checkpoint(c)
	}
	if !b.flush(ctx) {
		return
	}
	var tick <-chan time.Time
	if b.r.set.heartbeat > 0 {
		t := time.NewTicker(b.r.set.heartbeat)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-b.r.items:
			b.add(it)
		drain:
			for len(b.events) < batchMaxEvents && b.bytes < batchMaxBytes {
				select {
				case it := <-b.r.items:
					b.add(it)
				default:
					break drain
				}
			}
		case now := <-tick:
			b.events = append(b.events, b.heartbeat(now))
		}
		if !b.flush(ctx) {
			return
		}
	}
}

func (b *batcher) add(it item) {
	switch it.kind {
	case itemLines:
		name := b.names[it.id]
		for i := range it.events {
			it.events[i].Origin = name
		}
		b.events = append(b.events, it.events...)
		b.bytes += it.bytes
		b.last[it.id] = it.pos
		b.checkpoint(sdk.Checkpoint{Key: containerKey(name), Value: it.pos.encode()})
	case itemAttach:
		if old, ok := b.names[it.id]; ok && old != it.name {
			b.rename(it.id, it.name)
		}
		b.names[it.id] = it.name
		b.last[it.id] = it.pos
		if it.persist {
			b.checkpoint(sdk.Checkpoint{Key: containerKey(it.name), Value: it.pos.encode()})
		}
	case itemRename:
		b.rename(it.id, it.name)
	case itemForget:
		if name, ok := b.names[it.id]; ok {
			b.checkpoint(sdk.Checkpoint{Key: containerKey(name), Delete: true})
		}
		delete(b.names, it.id)
		delete(b.last, it.id)
	case itemCheckpoints:
		for _, c := range it.cps {
			b.checkpoint(c)
		}
	}
}

func (b *batcher) rename(id, name string) {
	old, ok := b.names[id]
	b.names[id] = name
	if !ok || old == name {
		return
	}
	b.checkpoint(sdk.Checkpoint{Key: containerKey(old), Delete: true})
	if p, ok := b.last[id]; ok {
		b.checkpoint(sdk.Checkpoint{Key: containerKey(name), Value: p.encode()})
	}
}

// checkpoint records a checkpoint change for the next batch; a later change of the same key
// replaces an earlier one.
func (b *batcher) checkpoint(c sdk.Checkpoint) {
	if _, ok := b.cps[c.Key]; !ok {
		b.cpOrder = append(b.cpOrder, c.Key)
	}
	b.cps[c.Key] = c
}

// flush emits what was gathered; it returns false when the source is stopping.
func (b *batcher) flush(ctx context.Context) bool {
	if len(b.events) == 0 && len(b.cps) == 0 {
		return true
	}
	cps := make([]sdk.Checkpoint, 0, len(b.cpOrder))
	for _, k := range b.cpOrder {
		cps = append(cps, b.cps[k])
	}
	events := b.events
	b.events, b.bytes, b.cpOrder = nil, 0, b.cpOrder[:0]
	clear(b.cps)
	return b.r.out.Emit(ctx, events, cps...) == nil
}

// heartbeat builds the heartbeat event: one line and one field per watched container.
func (b *batcher) heartbeat(now time.Time) sdk.Event {
	r := b.r
	r.mu.Lock()
	ws := make([]*watch, 0, len(r.watched))
	for _, w := range r.watched {
		c := *w
		ws = append(ws, &c)
	}
	daemon := r.daemon
	connected := r.connected
	r.mu.Unlock()
	sort.Slice(ws, func(i, j int) bool { return ws[i].name < ws[j].name })

	fields := map[string]string{"daemon": daemon, "containers": fmt.Sprint(len(ws))}
	parts := make([]string, 0, len(ws))
	for _, w := range ws {
		state := w.state
		if w.following {
			state += ", following"
		}
		if w.problem != "" {
			state += ", problem: " + w.problem
		}
		fields["container."+w.name] = state
		parts = append(parts, w.describe())
	}
	var line string
	switch {
	case !connected:
		line = fmt.Sprintf("docker daemon %s; %s known", daemon, containers(len(ws)))
	case len(ws) == 0:
		line = fmt.Sprintf("docker daemon %s; no container matches the selection", daemon)
	default:
		line = fmt.Sprintf("docker daemon %s; watching %s: %s", daemon, containers(len(ws)), strings.Join(parts, "; "))
	}
	r.log.Info("heartbeat", "daemon", daemon, "containers", len(ws), "state", strings.Join(parts, "; "))
	return sdk.Event{Time: now.UTC(), Kind: sdk.KindHeartbeat, Line: []byte(line), Fields: fields}
}

// containers says "1 container" or "n containers".
func containers(n int) string {
	if n == 1 {
		return "1 container"
	}
	return fmt.Sprintf("%d containers", n)
}
