package processor

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxgate/wxgate/schemas"
)

// metrics are the processor's Prometheus collectors.
type metrics struct {
	handled    *prometheus.CounterVec
	events     *prometheus.CounterVec
	consents   *prometheus.CounterVec
	deliveries *prometheus.CounterVec
	sendErrors *prometheus.CounterVec
	alerts     *prometheus.CounterVec
	unsettled  *prometheus.CounterVec
	partitions prometheus.Gauge
}

// Label values known before any message arrives, so that every configured
// app's series exist at zero from the start.
var (
	// decisions are the values of the decision label.
	decisions = []decision{ack, nak, deadLetter}
	// eventLabels are the values of the event label of processor events, as
	// metricEvent names them.
	eventLabels = []string{schemas.EventSubscribePopup, schemas.EventSubscribeChange, schemas.EventSubscribeSent, "other"}
	// consentEvents are the values of ConsentChange.Event.
	consentEvents = []string{ConsentAccepted, ConsentRejected, ConsentBanned, "consumed", "restored"}
	// messageStatuses are every message status, in lifecycle order.
	messageStatuses = []string{
		StatusQueued, StatusSending, StatusSent, StatusDelivered, StatusFailed,
		StatusRejected, StatusInvalid, StatusDead, StatusUnknown,
	}
	// sendErrcodes are the errcodes subscribeMessage.send is documented to
	// answer; any other errcode gets its series when it first happens.
	sendErrcodes = []int{-1, 40001, 40003, 40014, 40037, 40164, 41030, 42001, 43101, 43107, 43108, 45009, 45011, 45168, 47003}
	// alertReasons are the values of the reason label of wxgate_alerts_total.
	alertReasons = []string{"43107"}
)

// newMetrics registers the processor's collectors on reg and creates, at zero,
// the series each of appIDs can have that are known in advance: a rule that
// compares rates sees every app from the start, not from its first event of
// each kind.
func newMetrics(reg prometheus.Registerer, appIDs []string) (*metrics, error) {
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
		partitions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wxgate_processor_partitions",
			Help: "Partitions of the work stream this processor is assigned, out of " + strconv.Itoa(schemas.Partitions) + ".",
		}),
	}
	for _, c := range []prometheus.Collector{m.handled, m.events, m.consents, m.deliveries, m.sendErrors, m.alerts, m.unsettled, m.partitions} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, d := range decisions {
		m.handled.WithLabelValues(ConsumerName, string(d))
	}
	for _, app := range appIDs {
		for _, e := range eventLabels {
			m.events.WithLabelValues(app, e)
		}
		for _, e := range consentEvents {
			m.consents.WithLabelValues(app, e)
		}
		for _, s := range messageStatuses {
			m.deliveries.WithLabelValues(app, s)
		}
		for _, code := range sendErrcodes {
			m.sendErrors.WithLabelValues(app, strconv.Itoa(code))
		}
		for _, r := range alertReasons {
			m.alerts.WithLabelValues(app, r)
		}
		m.unsettled.WithLabelValues(app)
	}
	return m, nil
}
