package processor

import (
	"fmt"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxgate/wxgate/internal/metricstest"
	"github.com/wxgate/wxgate/schemas"
)

func TestMetricsStartAtZeroForEveryApp(t *testing.T) {
	reg := prometheus.NewRegistry()
	apps := []string{"wx0000000000000001", "wx0000000000000002"}
	if _, err := newMetrics(reg, apps); err != nil {
		t.Fatal(err)
	}
	got := metricstest.Gather(t, reg)
	var want []string
	for _, d := range decisions {
		want = append(want, fmt.Sprintf("wxgate_processor_messages_total[consumer=%s decision=%s]", ConsumerName, d))
	}
	for _, app := range apps {
		for _, e := range eventLabels {
			want = append(want, fmt.Sprintf("wxgate_processor_events_total[app=%s event=%s]", app, e))
		}
		for _, e := range consentEvents {
			want = append(want, fmt.Sprintf("wxgate_consent_changes_total[app=%s event=%s]", app, e))
		}
		for _, s := range messageStatuses {
			want = append(want, fmt.Sprintf("wxgate_message_status_total[app=%s status=%s]", app, s))
		}
		for _, code := range []string{"43101", "43107", "45009", "40164", "47003"} {
			want = append(want, fmt.Sprintf("wxgate_send_errors_total[app=%s errcode=%s]", app, code))
		}
		want = append(want,
			fmt.Sprintf("wxgate_alerts_total[app=%s reason=43107]", app),
			fmt.Sprintf("wxgate_send_unsettled_total[app=%s]", app))
	}
	for _, key := range want {
		v, ok := got[key]
		switch {
		case !ok:
			t.Errorf("missing %s", key)
		case v != 0:
			t.Errorf("%s = %v, want 0", key, v)
		}
	}
}

// The label values created at start must be the ones the handlers use, or
// the series at zero are not the ones that move.
func TestMetricLabelsAreTheHandlers(t *testing.T) {
	for _, code := range sendErrcodes {
		e, ok := schemas.LookupErrcode(code)
		if !ok || e.Means == schemas.MeansOK {
			t.Errorf("send errcode %d: LookupErrcode = %+v, %v; want a known failure", code, e, ok)
		}
	}
	actions := []string{ActionAccept, ActionReject, ActionBan, ActionFilter, ActionConsume, ActionRestore, ActionZero, ActionKind}
	for _, a := range actions {
		for _, s := range []string{ConsentAccepted, ConsentRejected, ConsentBanned} {
			if got := (ConsentChange{Action: a, Status: s}).Event(); !slices.Contains(consentEvents, got) {
				t.Errorf("ConsentChange{Action: %q, Status: %q}.Event() = %q, not among %v", a, s, got, consentEvents)
			}
		}
	}
	for _, e := range []string{schemas.EventSubscribePopup, schemas.EventSubscribeChange, schemas.EventSubscribeSent, "subscribe", "text", ""} {
		if got := metricEvent(e); !slices.Contains(eventLabels, got) {
			t.Errorf("metricEvent(%q) = %q, not among %v", e, got, eventLabels)
		}
	}
}
