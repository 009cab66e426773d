package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's Prometheus collectors. Labels are bounded: unknown
// appids and event names are folded into "unknown" and "other".
type metrics struct {
	callbacks  *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	duplicates *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxgate_callbacks_total",
			Help: "WeChat callbacks by app, outcome and event.",
		}, []string{"app", "outcome", "event"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wxgate_callback_duration_seconds",
			Help:    "Time from request to answer, including the wait for the stream's acknowledgement.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"outcome"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxgate_callback_duplicates_total",
			Help: "Pushes answered success that the stream already held (WeChat retries).",
		}, []string{"app"}),
	}
	for _, c := range []prometheus.Collector{m.callbacks, m.latency, m.duplicates} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
