package runtime

import (
	"sort"
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
}

// Health tracks every component's state; a source detached, a plugin restarting or a sink
// failing makes the system degraded.
type Health struct {
	mu         sync.Mutex
	components map[string]*ComponentHealth
	now        func() time.Time
}

func newHealth() *Health {
	return &Health{components: map[string]*ComponentHealth{}, now: time.Now}
}

func (h *Health) get(addr string) *ComponentHealth {
	c, ok := h.components[addr]
	if !ok {
		c = &ComponentHealth{Address: addr, Healthy: true, Since: h.now()}
		h.components[addr] = c
	}
	return c
}

func (h *Health) register(addr string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.get(addr)
}

func (h *Health) set(addr string, healthy bool, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.get(addr)
	if c.Healthy != healthy || c.Reason != reason {
		if c.Healthy != healthy {
			c.Since = h.now()
		}
		c.Healthy, c.Reason = healthy, reason
	}
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

// Components returns every component's state, by address.
func (h *Health) Components() []ComponentHealth {
	h.mu.Lock()
	defer h.mu.Unlock()
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
	commitSeconds    prometheus.Histogram
	droppedBatches   *prometheus.CounterVec
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
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tda_checkpoint_commit_seconds",
			Help: "Duration of a checkpoint barrier, from marking to commit.", Buckets: prometheus.DefBuckets}),
		droppedBatches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tda_dropped_batches_total",
			Help: "Batches a processor rejected three times, or a sink rejected permanently without a fallback."},
			[]string{"instance"}),
	}
	m.registry.MustRegister(m.eventsIn, m.eventsOut, m.restarts, m.queueDepth, m.sinkFailures,
		m.alerts, m.detectionLatency, m.commits, m.commitSeconds, m.droppedBatches)
	return m
}
