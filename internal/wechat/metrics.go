package wechat

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"
)

// Descriptions of the token metrics: this instance's calls to the token
// endpoint, per app. Summed over instances they are the deployment's calls,
// which WeChat counts against the app's daily quota.
var (
	descTokenRefreshes = prometheus.NewDesc("wxgate_token_refreshes_total",
		"Calls to WeChat's token endpoint (stable_token or token) by this instance, failed ones included.",
		[]string{"app"}, nil)
	descTokenRefreshFailures = prometheus.NewDesc("wxgate_token_refresh_failures_total",
		"Calls to WeChat's token endpoint by this instance that returned no token; the processor logs the errcode.",
		[]string{"app"}, nil)
	descTokenForcedRefreshes = prometheus.NewDesc("wxgate_token_forced_refreshes_total",
		"stable_token calls with force_refresh by this instance (WeChat allows 20 a day per app).",
		[]string{"app"}, nil)
)

var _ prometheus.Collector = (*Tokens)(nil)

// Describe sends the descriptions of the token metrics: Tokens is a
// prometheus.Collector, registered by the caller.
func (t *Tokens) Describe(ch chan<- *prometheus.Desc) {
	ch <- descTokenRefreshes
	ch <- descTokenRefreshFailures
	ch <- descTokenForcedRefreshes
}

// Collect sends the token counters of every configured app, zero until the
// first call, so that every app has its series from the start. It reads
// atomic counters only and is safe for concurrent use.
func (t *Tokens) Collect(ch chan<- prometheus.Metric) {
	ids := make([]string, 0, len(t.apps))
	for id := range t.apps {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		st := t.apps[id]
		ch <- prometheus.MustNewConstMetric(descTokenRefreshes, prometheus.CounterValue, float64(st.fetches.Load()), id)
		ch <- prometheus.MustNewConstMetric(descTokenRefreshFailures, prometheus.CounterValue, float64(st.failures.Load()), id)
		ch <- prometheus.MustNewConstMetric(descTokenForcedRefreshes, prometheus.CounterValue, float64(st.forced.Load()), id)
	}
}
