package wechat

import (
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxgate/wxgate/internal/broker/natstest"
	"github.com/wxgate/wxgate/internal/checkfor"
	"github.com/wxgate/wxgate/internal/sim"
)

// tokenMetrics gathers the token counters registered on reg, by name and app.
func tokenMetrics(t *testing.T, reg *prometheus.Registry) map[string]map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]float64{}
	for _, mf := range families {
		out[mf.GetName()] = map[string]float64{}
		for _, m := range mf.GetMetric() {
			out[mf.GetName()][m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	return out
}

func TestTokenMetrics(t *testing.T) {
	s, base := startSim(t, sim.Config{})
	srv := natstest.Start(t)
	tk := newTokens(t, srv, []App{testApp(base, TokenAPIStable)}, TokenOptions{})
	reg := prometheus.NewRegistry()
	reg.MustRegister(tk)
	ctx := testCtx(t)

	counts := func(refreshes, failures float64) map[string]map[string]float64 {
		return map[string]map[string]float64{
			"wxgate_token_refreshes_total":        {testAppID: refreshes},
			"wxgate_token_refresh_failures_total": {testAppID: failures},
			"wxgate_token_forced_refreshes_total": {testAppID: 0},
		}
	}
	if got, want := tokenMetrics(t, reg), counts(0, 0); !reflect.DeepEqual(got, want) {
		t.Errorf("before any call: token metrics = %v, want %v", got, want)
	}

	if err := s.SetFaults(sim.Faults{TokenErrcode: CodeBusy, TokenErrcodeNext: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := tk.Token(ctx, testAppID); err == nil {
		t.Fatal("Token() with WeChat busy succeeded")
	}
	if got, want := tokenMetrics(t, reg), counts(1, 1); !reflect.DeepEqual(got, want) {
		t.Errorf("after a failed call: token metrics = %v, want %v", got, want)
	}

	// Inside the back-off Token answers the recorded failure without a call.
	checkfor.Eventually(t, 3*time.Second, 10*time.Millisecond, func() error {
		_, err := tk.Token(ctx, testAppID)
		return err
	})
	if got, want := tokenMetrics(t, reg), counts(2, 1); !reflect.DeepEqual(got, want) {
		t.Errorf("after the call that succeeded: token metrics = %v, want %v", got, want)
	}
}
