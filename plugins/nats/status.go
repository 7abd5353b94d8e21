package nats

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tda-dev/tda/sdk"
)

// quietAfter is how long an edge may publish nothing before the state calls it quiet.
const quietAfter = 5 * time.Minute

// maxEdges bounds the edges the status keeps; the least recently seen is forgotten.
const maxEdges = 1024

// edgeSeen is what the status knows of one edge.
type edgeSeen struct {
	lag    time.Duration // stored minus event time of its newest event
	seenAt time.Time     // when its newest event was read
	events uint64
}

// fleetStatus is the detector's view of the fleet for the system state.
type fleetStatus struct {
	partitions    int
	group, member string

	mu    sync.Mutex
	owned []int
	err   error
	edges map[string]*edgeSeen
	// lags is the consumer of each partition held, as last read (every lagEvery).
	lags map[int]consumerLag
}

func newFleetStatus(partitions int, group, member string) *fleetStatus {
	return &fleetStatus{partitions: partitions, group: group, member: member, edges: map[string]*edgeSeen{}}
}

func (f *fleetStatus) setOwned(owned []int, err error) {
	f.mu.Lock()
	f.owned, f.err = owned, err
	f.mu.Unlock()
}

// held returns the partitions held.
func (f *fleetStatus) held() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.owned...)
}

func (f *fleetStatus) setLags(l map[int]consumerLag) {
	f.mu.Lock()
	f.lags = l
	f.mu.Unlock()
}

func (f *fleetStatus) observe(host string, evTime, stored, now time.Time) {
	if host == "" {
		host = "(no host)"
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.edges[host]
	if !ok {
		if len(f.edges) >= maxEdges {
			var oldest string
			for h, x := range f.edges {
				if oldest == "" || x.seenAt.Before(f.edges[oldest].seenAt) {
					oldest = h
				}
			}
			delete(f.edges, oldest)
		}
		e = &edgeSeen{}
		f.edges[host] = e
	}
	e.events++
	e.seenAt = now
	if !evTime.IsZero() {
		e.lag = max(stored.Sub(evTime), 0)
	}
}

// status renders the fleet for the system state: the partitions held, and every edge seen
// with its lag (how long its newest event took from the line's time to the stream, in whole
// seconds) and, after quietAfter without events, how long it has been quiet; problem (when
// not "") says why the connection is down. It changes only
// when one of these does, so the state (and the agent's log) is not rewritten every report.
func (f *fleetStatus) status(problem string, now time.Time) sdk.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	parts := make([]string, len(f.owned))
	for i, p := range f.owned {
		parts[i] = strconv.Itoa(p)
	}
	fmt.Fprintf(&b, "fleet %s member %s: partitions [%s] of %d", f.group, f.member, strings.Join(parts, ","), f.partitions)
	// Per partition held: the consumer's ack floor (the newest sequence committed and
	// acknowledged) and its lag (messages not read yet, or read and not committed).
	var acks []string
	for _, p := range f.owned {
		if l, ok := f.lags[p]; ok {
			acks = append(acks, fmt.Sprintf("%d: acked %d, lag %d", p, l.ackFloor, l.lag))
		}
	}
	if len(acks) > 0 {
		fmt.Fprintf(&b, "; consumers: %s", strings.Join(acks, "; "))
	}
	hosts := make([]string, 0, len(f.edges))
	for h := range f.edges {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	if len(hosts) > 0 {
		b.WriteString("; edges:")
		for _, h := range hosts {
			e := f.edges[h]
			fmt.Fprintf(&b, " %s (lag %s", h, e.lag.Round(time.Second))
			if quiet := now.Sub(e.seenAt); quiet >= quietAfter {
				fmt.Fprintf(&b, ", quiet %s", quiet.Round(time.Minute))
			}
			b.WriteString(")")
		}
	}
	switch {
	case problem != "":
		return sdk.Status{Healthy: false, Reason: problem + "; the client reconnects by itself. " + b.String()}
	case f.err != nil:
		return sdk.Status{Healthy: false, Reason: fmt.Sprintf("partition leases not renewed (%v): if this lasts longer than lease_ttl another detector takes the partitions. %s", f.err, b.String())}
	}
	return sdk.Status{Healthy: true, Reason: b.String()}
}
