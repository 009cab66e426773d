package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxgate/wxgate/crypto"
	"github.com/wxgate/wxgate/internal/metricstest"
	"github.com/wxgate/wxgate/schemas"
)

func TestMetricsStartAtZeroForEveryApp(t *testing.T) {
	reg := prometheus.NewRegistry()
	apps := []App{{AppID: "wx0000000000000001", Token: "t"}, {AppID: "wx0000000000000002", Token: "t"}}
	if _, err := New(Config{Apps: apps}, nil, slog.New(slog.DiscardHandler), reg); err != nil {
		t.Fatal(err)
	}
	got := metricstest.Gather(t, reg)
	for _, a := range apps {
		for _, o := range outcomes {
			app := a.AppID
			if o == "unknown_app" {
				app = "unknown"
			}
			found := false
			for _, e := range append([]string{eventNone, eventVerify}, eventLabels...) {
				key := fmt.Sprintf("wxgate_callbacks_total[app=%s event=%s outcome=%s]", app, e, o)
				if v, ok := got[key]; ok {
					found = true
					if v != 0 {
						t.Errorf("%s = %v, want 0", key, v)
					}
				}
			}
			if !found {
				t.Errorf("no wxgate_callbacks_total series for app %s, outcome %s", app, o)
			}
		}
		for _, e := range eventLabels {
			key := fmt.Sprintf("wxgate_callbacks_total[app=%s event=%s outcome=ok]", a.AppID, e)
			if _, ok := got[key]; !ok {
				t.Errorf("missing %s", key)
			}
		}
		if _, ok := got["wxgate_callback_duplicates_total[app="+a.AppID+"]"]; !ok {
			t.Errorf("missing wxgate_callback_duplicates_total for %s", a.AppID)
		}
	}
	for _, o := range outcomes {
		if _, ok := got["wxgate_callback_duration_seconds[outcome="+o+"]"]; !ok {
			t.Errorf("missing wxgate_callback_duration_seconds for outcome %s", o)
		}
	}
}

// The label values created at start must be the ones the handlers use, or
// the series at zero are not the ones that move.
func TestMetricLabelsAreTheHandlers(t *testing.T) {
	for _, err := range []error{
		nil, errUnknownApp, errTooLarge, errNoKey, errUnavailable, errors.New("other"),
		crypto.ErrBadSignature, crypto.ErrStaleTimestamp, crypto.ErrAppIDMismatch,
		crypto.ErrBadCiphertext, crypto.ErrBadPadding, crypto.ErrBadLength, schemas.ErrMalformed,
	} {
		if _, outcome := classify(err); !slices.Contains(outcomes, outcome) {
			t.Errorf("classify(%v) = %q, not among the outcomes %v", err, outcome, outcomes)
		}
	}
	for _, c := range []struct{ event, msgType string }{
		{schemas.EventSubscribePopup, "event"}, {schemas.EventSubscribeChange, "event"}, {schemas.EventSubscribeSent, "event"},
		{"", "text"}, {"", "image"}, {"", "voice"}, {"", "video"}, {"", "location"}, {"", "link"}, {"", "miniprogrampage"},
		{"", "shortvideo"}, {"subscribe", "event"}, {"made_up", "event"},
	} {
		if got := eventLabel(c.event, c.msgType); !slices.Contains(eventLabels, got) {
			t.Errorf("eventLabel(%q, %q) = %q, not among the event labels %v", c.event, c.msgType, got, eventLabels)
		}
	}
	for _, e := range eventLabels {
		if e == "other" {
			continue
		}
		if eventLabel(e, e) != e && eventLabel("", e) != e {
			t.Errorf("event label %q is never produced by eventLabel", e)
		}
	}
}
