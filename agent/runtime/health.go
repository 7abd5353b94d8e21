package runtime

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ComponentHealth is the state of one component instance.
type ComponentHealth struct {
	Address  string    `json:"address"`
	Healthy  bool      `json:"healthy"`
	Reason   string    `json:"reason,omitempty"`
	Since    time.Time `json:"since"`
	Restarts int       `json:"restarts"`
	Queued   int       `json:"queued,omitempty"`
	// Spilled, Dropped and DeadLetters are a sink's buffer figures: events on disk only,
	// events dropped by when_full = "drop", and batches set aside as dead letters.
	Spilled     int `json:"spilled,omitempty"`
	Dropped     int `json:"dropped,omitempty"`
	DeadLetters int `json:"dead_letters,omitempty"`
	Pid         int `json:"pid,omitempty"`
	// Report is what a healthy source says about itself (a fleet detector: its partitions
	// and the edges it hears from); an unhealthy one says it in Reason.
	Report string `json:"report,omitempty"`
}

// Health tracks every component's state; a source detached, a plugin restarting or a sink
// failing makes the system degraded.
//
// Each instance has one record, the only source of truth for it, made of facets, each
// written by one owner: the supervisor writes the process facet (exited, restarting, hung),
// the component's runner writes the component facet (set: a sink failing, a source failing to
// read), a source plugin writes the status facet (what it reports about itself). An instance
// is healthy only while every facet is; one owner clearing its facet never hides what another
// reported, so a plugin restarted while its sink still fails stays failing.
type Health struct {
	mu         sync.Mutex
	components map[string]*ComponentHealth
	facets     map[string]*[numFacets]facet
	// expiring holds the records with a facet that clears itself at its until time; reading
	// the state clears what has expired.
	expiring map[string]struct{}
	now      func() time.Time
}

// facetKind names who reports a facet; the order is the order of the reasons.
type facetKind int

const (
	facetProcess facetKind = iota
	facetComponent
	facetStatus
	numFacets
)

type facet struct {
	failing bool
	reason  string
	// until, when set, is when a failing facet clears itself: what it reports is a condition
	// seen recently (lines with impossible clocks), not one that stays until someone clears it.
	until time.Time
}

// StoreAddress is the address under which the state store's health is kept.
const StoreAddress = "agent.state"

func newHealth() *Health {
	return &Health{components: map[string]*ComponentHealth{}, facets: map[string]*[numFacets]facet{},
		expiring: map[string]struct{}{}, now: time.Now}
}

func (h *Health) get(addr string) *ComponentHealth {
	c, ok := h.components[addr]
	if !ok {
		c = &ComponentHealth{Address: addr, Healthy: true, Since: h.now()}
		h.components[addr] = c
		h.facets[addr] = &[numFacets]facet{}
	}
	return c
}

func (h *Health) register(addr string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.get(addr)
}

// set records what a component's runner found: healthy, or failing with a reason.
func (h *Health) set(addr string, healthy bool, reason string) {
	h.setFacet(addr, facetComponent, healthy, reason)
}

// setProcess records the supervisor's view of the instance's process.
func (h *Health) setProcess(addr string, healthy bool, reason string) {
	h.setFacet(addr, facetProcess, healthy, reason)
}

// setStatus records the status a source plugin reported about itself.
func (h *Health) setStatus(addr string, healthy bool, reason string) {
	h.setFacet(addr, facetStatus, healthy, reason)
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.get(addr)
	c.Report = ""
	if healthy {
		c.Report = reason
	}
}

// setStore records whether the last write to the state store succeeded (err nil) and, when
// it failed, what the operator should do.
func (h *Health) setStore(path string, err error) {
	if err == nil {
		h.setLazy(StoreAddress, true, "")
		return
	}
	h.setLazy(StoreAddress, false, fmt.Sprintf(
		"cannot write %s: %s; free space (or fix the file's permissions); tda keeps reading, but after a restart it re-reads everything since the last checkpoint",
		path, rootCause(err)))
}

// setLazy sets the component facet of a record that exists only once something went wrong
// with it (the state store, a checkpoint group): healthy news for an unknown record is no
// news.
func (h *Health) setLazy(addr string, healthy bool, reason string) {
	if healthy {
		h.mu.Lock()
		_, known := h.components[addr]
		h.mu.Unlock()
		if !known {
			return
		}
	}
	h.setFacet(addr, facetComponent, healthy, reason)
}

func (h *Health) setFacet(addr string, kind facetKind, healthy bool, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.get(addr)
	if healthy {
		reason = ""
	}
	h.facets[addr][kind] = facet{failing: !healthy, reason: reason}
	h.recompute(addr)
}

// setRecent reports the component facet of addr failing with reason until the given time,
// when it clears by itself unless reported again. The record exists only from the first
// report on.
func (h *Health) setRecent(addr, reason string, until time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.get(addr)
	h.facets[addr][facetComponent] = facet{failing: true, reason: reason, until: until}
	h.expiring[addr] = struct{}{}
	h.recompute(addr)
}

// expire clears the facets whose time has passed. h.mu is held.
func (h *Health) expire() {
	now := h.now()
	for addr := range h.expiring {
		f := h.facets[addr]
		left := false
		for i := range f {
			if f[i].until.IsZero() {
				continue
			}
			if !now.Before(f[i].until) {
				f[i] = facet{}
			} else {
				left = true
			}
		}
		if !left {
			delete(h.expiring, addr)
		}
		h.recompute(addr)
	}
}

// recompute derives a record's health and reason from its facets. h.mu is held.
func (h *Health) recompute(addr string) {
	c := h.components[addr]
	f := h.facets[addr]
	ok := true
	var reasons []string
	for _, x := range f {
		if x.failing {
			ok = false
			if x.reason != "" {
				reasons = append(reasons, x.reason)
			}
		}
	}
	if c.Healthy != ok {
		c.Since = h.now()
	}
	c.Healthy, c.Reason = ok, strings.Join(reasons, "; ")
}

func (h *Health) restarted(addr string, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.get(addr).Restarts = n
}

func (h *Health) setQueued(addr string, n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.get(addr).Queued = n
}

func (h *Health) setPid(addr string, pid int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.get(addr).Pid = pid
}

// rootCause returns the innermost error's message (a file system error's "no space left on
// device" rather than the chain of what was being written).
func rootCause(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// Components returns every component's state, by address.
func (h *Health) Components() []ComponentHealth {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expire()
	out := make([]ComponentHealth, 0, len(h.components))
	for _, c := range h.components {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

// Degraded returns the reasons the system is degraded (none when every component is fine).
func (h *Health) Degraded() []string {
	var reasons []string
	for _, c := range h.Components() {
		if !c.Healthy {
			reasons = append(reasons, c.Address+": "+c.Reason)
		}
	}
	return reasons
}

// metrics are the runtime's Prometheus metrics.
type metrics struct {
	registry         *prometheus.Registry
	eventsIn         *prometheus.CounterVec
	eventsOut        *prometheus.CounterVec
	restarts         *prometheus.CounterVec
	queueDepth       *prometheus.GaugeVec
	sinkFailures     *prometheus.CounterVec
	alerts           *prometheus.CounterVec
	detectionLatency prometheus.Histogram
	commits          prometheus.Counter
	commitsSkipped   prometheus.Counter
	commitSeconds    prometheus.Histogram
	droppedBatches   *prometheus.CounterVec
	inflightBatches  *prometheus.GaugeVec
	inflightBytes    *prometheus.GaugeVec
	clockSkew        *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		eventsIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tda_events_in_total",
			Help: "Events received by a component instance."}, []string{"instance"}),
		eventsOut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tda_events_out_total",
			Help: "Events a component instance passed on (sources: emitted; processors: returned; sinks: delivered)."},
			[]string{"instance"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tda_plugin_restarts_total",
			Help: "Plugin processes restarted after a crash."}, []string{"instance"}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tda_sink_queue_events",
			Help: "Events waiting in a sink's queue."}, []string{"instance"}),
		sinkFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tda_sink_failures_total",
			Help: "Failed sink writes by kind (retry, permanent)."}, []string{"instance", "kind"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tda_alerts_total",
			Help: "Alert records produced, by rule and state."}, []string{"rule", "state"}),
		detectionLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tda_detection_latency_seconds",
			Help:    "From a batch arriving from a source to the alerts it raised being queued for the sinks.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{Name: "tda_checkpoint_commits_total",
			Help: "Checkpoint barriers committed to the state store."}),
		commitsSkipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "tda_checkpoint_commits_unchanged_total",
			Help: "Checkpoint barriers committed without a write: the store already held every snapshot and position (counted in tda_checkpoint_commits_total too)."}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tda_checkpoint_commit_seconds",
			Help: "Duration of a checkpoint barrier, from marking to commit.", Buckets: prometheus.DefBuckets}),
		droppedBatches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tda_dropped_batches_total",
			Help: "Batches a processor rejected three times, or a sink rejected permanently without a fallback."},
			[]string{"instance"}),
	}
	m.inflightBatches = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tda_pipeline_inflight_batches",
		Help: "Source batches a pipeline holds that its sinks have not all accepted."}, []string{"pipeline"})
	m.inflightBytes = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tda_pipeline_inflight_bytes",
		Help: "Bytes of the source batches a pipeline holds that its sinks have not all accepted (max_inflight_bytes bounds it)."},
		[]string{"pipeline"})
	m.clockSkew = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tda_event_clock_skew_total",
		Help: "Lines a processor counted at their arrival time instead of their own: dated too far ahead (clock=future_skew) or outside any real clock (clock=out_of_range)."},
		[]string{"pipeline", "clock"})
	m.registry.MustRegister(m.clockSkew)
	m.registry.MustRegister(m.eventsIn, m.eventsOut, m.restarts, m.queueDepth, m.sinkFailures,
		m.alerts, m.detectionLatency, m.commits, m.commitsSkipped, m.commitSeconds, m.droppedBatches, m.inflightBatches, m.inflightBytes)
	return m
}
