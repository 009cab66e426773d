package processor

import "github.com/prometheus/client_golang/prometheus"

// metrics are the processor's Prometheus collectors.
type metrics struct {
	handled    *prometheus.CounterVec
	events     *prometheus.CounterVec
	consents   *prometheus.CounterVec
	deliveries *prometheus.CounterVec
	sendErrors *prometheus.CounterVec
	alerts     *prometheus.CounterVec
	unsettled  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxgate_processor_messages_total",
			Help: "Stream messages settled by consumer and decision (ack, nak, dead_letter).",
		}, []string{"consumer", "decision"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxgate_processor_events_total",
			Help: "Inbound events applied by app and event.",
		}, []string{"app", "event"}),
		consents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxgate_consent_changes_total",
			Help: "Consent ledger changes by app and event.",
		}, []string{"app", "event"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxgate_message_status_total",
			Help: "Message status changes by app and status.",
		}, []string{"app", "status"}),
		sendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxgate_send_errors_total",
			Help: "subscribeMessage.send calls answered with a non-zero errcode, by app and errcode.",
		}, []string{"app", "errcode"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxgate_alerts_total",
			Help: "Conditions an operator must act on (43107: the app's subscription-message ability is banned).",
		}, []string{"app", "reason"}),
		unsettled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxgate_send_unsettled_total",
			Help: "Messages whose send outcome is still unknown processor.unknown_after after it became unknown: WeChat may or may not have them; an operator decides.",
		}, []string{"app"}),
	}
	for _, c := range []prometheus.Collector{m.handled, m.events, m.consents, m.deliveries, m.sendErrors, m.alerts, m.unsettled} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
