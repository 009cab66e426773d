package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxgate/wxgate/schemas"
)

// metrics are the gateway's Prometheus collectors. Labels are bounded: unknown
// appids and event names are folded into "unknown" and "other".
type metrics struct {
	callbacks  *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	duplicates *prometheus.CounterVec
}

// outcomes are the values of the outcome label, as classify names them.
var outcomes = []string{
	"ok", "unknown_app", "too_large", "bad_signature", "stale_timestamp",
	"appid_mismatch", "undecryptable", "malformed", "unavailable", "error",
}

// eventLabels are the values of the event label for a push that was parsed,
// as eventLabel names them.
var eventLabels = []string{
	schemas.EventSubscribePopup, schemas.EventSubscribeChange, schemas.EventSubscribeSent,
	"text", "image", "voice", "video", "location", "link", "miniprogrampage", "other",
}

// Event labels of a request that carried no event: a URL verification, and a
// push rejected before its event was parsed.
const (
	eventVerify = "verify"
	eventNone   = "none"
)

// newMetrics registers the gateway's collectors on reg and creates, at zero,
// the series each of appIDs can have: a rule that compares rates, or looks for
// an app whose callbacks stopped, then sees every app from the start rather
// than from its first callback of each kind.
func newMetrics(reg prometheus.Registerer, appIDs []string) (*metrics, error) {
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
	for _, o := range outcomes {
		m.latency.WithLabelValues(o)
	}
	m.callbacks.WithLabelValues("unknown", "unknown_app", eventNone)
	m.callbacks.WithLabelValues("unknown", "unknown_app", eventVerify)
	for _, app := range appIDs {
		m.duplicates.WithLabelValues(app)
		for _, pair := range callbackSeries() {
			m.callbacks.WithLabelValues(app, pair[0], pair[1])
		}
	}
	return m, nil
}

// callbackSeries returns the (outcome, event) pairs a configured app's
// callbacks can produce: a verification by its outcome; a push stored or not
// stored by its event; a push rejected before parsing with no event.
func callbackSeries() [][2]string {
	var pairs [][2]string
	for _, o := range []string{"ok", "bad_signature", "stale_timestamp", "malformed", "error"} {
		pairs = append(pairs, [2]string{o, eventVerify})
	}
	for _, e := range eventLabels {
		pairs = append(pairs, [2]string{"ok", e}, [2]string{"unavailable", e})
	}
	for _, o := range outcomes {
		switch o {
		case "ok", "unknown_app", "unavailable":
		default:
			pairs = append(pairs, [2]string{o, eventNone})
		}
	}
	return pairs
}
