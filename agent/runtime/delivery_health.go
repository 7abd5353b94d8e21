package runtime

import (
	"github.com/prometheus/client_golang/prometheus"
)

// deliveryMetrics are the sinks' buffer and dead-letter figures in /metrics.
type deliveryMetrics struct {
	bufferBytes *prometheus.GaugeVec
	spilled     *prometheus.GaugeVec
	dropped     *prometheus.CounterVec
	deadLetters *prometheus.GaugeVec
	hung        *prometheus.CounterVec
}

// deliveryMetrics returns the runtime's delivery metrics, registered once.
func (rt *Runtime) deliveryMetrics() *deliveryMetrics {
	rt.metricsOnce.Do(func() {
		m := &deliveryMetrics{
			bufferBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tda_sink_buffer_bytes",
				Help: "Bytes of events a sink holds in memory."}, []string{"instance"}),
			spilled: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tda_sink_spilled_events",
				Help: "Events a sink holds on disk only (spilled, or a durable queue beyond its memory)."}, []string{"instance"}),
			dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tda_sink_dropped_events_total",
				Help: "Events a sink dropped because its buffer was full (when_full = \"drop\")."}, []string{"instance"}),
			deadLetters: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tda_dead_letters",
				Help: "Dead letters an instance set aside, kept until replayed or dropped."}, []string{"instance"}),
			hung: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tda_plugin_hung_total",
				Help: "Plugin calls that passed call_timeout; the plugin was killed and restarted."}, []string{"instance"}),
		}
		rt.metrics.registry.MustRegister(m.bufferBytes, m.spilled, m.dropped, m.deadLetters, m.hung)
		rt.delivery = m
	})
	return rt.delivery
}

// publishFigures updates a sink's figures in the state and the metrics.
func (k *sinkRunner) publishFigures() {
	k.mu.Lock()
	queued, spilled, dropped, memBytes := k.memEvents+k.tailEvents, k.tailEvents, k.dropped, k.memBytes
	k.mu.Unlock()
	letters := k.rt.deadLetterStore().countFor(k.addr())
	k.rt.metrics.queueDepth.WithLabelValues(k.addr()).Set(float64(queued))
	k.metrics.bufferBytes.WithLabelValues(k.addr()).Set(float64(memBytes))
	k.metrics.spilled.WithLabelValues(k.addr()).Set(float64(spilled))
	k.metrics.deadLetters.WithLabelValues(k.addr()).Set(float64(letters))
	k.rt.health.setQueued(k.addr(), queued)
	k.rt.health.setDelivery(k.addr(), spilled, int(dropped), letters)
}

// setDelivery records a sink's buffer and dead-letter figures.
func (h *Health) setDelivery(addr string, spilled, dropped, deadLetters int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.get(addr)
	c.Spilled, c.Dropped, c.DeadLetters = spilled, dropped, deadLetters
}
