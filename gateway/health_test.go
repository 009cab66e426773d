package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxgate/wxgate/gateway"
	"github.com/wxgate/wxgate/internal/broker"
	"github.com/wxgate/wxgate/internal/broker/natstest"
	"github.com/wxgate/wxgate/internal/checkfor"
	"github.com/wxgate/wxgate/schemas"
)

// probe asks /readyz once and returns its status and body.
func probe(t *testing.T, h http.Handler) (int, map[string]string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("/readyz body %q: %v", rec.Body.String(), err)
	}
	return rec.Code, body
}

// TestReadyzLogsOncePerChange takes a real NATS server away and brings it
// back under /readyz probes: the answer follows the server at every probe,
// while the log says "not ready" once when the check starts failing and
// "ready" once when it recovers, however many probes come in between.
func TestReadyzLogsOncePerChange(t *testing.T) {
	srv := natstest.Start(t)
	nc, js := srv.Connect()
	logs := &lockedBuffer{}
	engine := gin.New()
	gateway.RegisterHealth(engine, map[string]gateway.Check{
		"nats": func(ctx context.Context) error {
			if err := broker.StreamWritable(ctx, nc, js, schemas.StreamName); err != nil {
				return gateway.Unready(broker.WritableReason(err), err)
			}
			return nil
		},
	}, prometheus.NewRegistry(), slog.New(slog.NewJSONHandler(logs, nil)))
	count := func(msg string) int { return strings.Count(logs.String(), `"msg":"`+msg+`"`) }
	const probes = 5
	downReasons := []string{"unavailable: not connected", "unavailable: no stream info"}

	for range probes {
		if code, body := probe(t, engine); code != http.StatusOK || body["nats"] != "ok" {
			t.Fatalf("/readyz with NATS up = %d %v, want 200 ok", code, body)
		}
	}
	if n, m := count("not ready"), count("ready"); n+m != 0 {
		t.Errorf("while ready: %d \"not ready\" and %d \"ready\" lines, want none:\n%s", n, m, logs)
	}

	srv.Stop()
	for range probes {
		// The first probe may find the client still believing it is
		// connected, and its request for the stream unanswered.
		code, body := probe(t, engine)
		if code != http.StatusServiceUnavailable || len(body) != 1 || !slices.Contains(downReasons, body["nats"]) {
			t.Fatalf("/readyz with NATS down = %d %v, want 503 with nats one of %q", code, body, downReasons)
		}
	}
	if n := count("not ready"); n != 1 {
		t.Errorf("after %d failing probes: %d \"not ready\" lines, want 1:\n%s", probes, n, logs)
	}

	srv.Restart()
	checkfor.Eventually(t, 30*time.Second, 50*time.Millisecond, func() error {
		if code, body := probe(t, engine); code != http.StatusOK {
			return fmt.Errorf("/readyz after NATS came back = %d %v", code, body)
		}
		return nil
	})
	for range probes {
		if code, _ := probe(t, engine); code != http.StatusOK {
			t.Fatalf("/readyz = %d after it recovered", code)
		}
	}
	if n, m := count("not ready"), count("ready"); n != 1 || m != 1 {
		t.Errorf("after recovering: %d \"not ready\" and %d \"ready\" lines, want 1 and 1:\n%s", n, m, logs)
	}
	if !strings.Contains(logs.String(), `"msg":"ready","check":"nats","was":"no stream info`) && !strings.Contains(logs.String(), `"msg":"ready","check":"nats","was":"not connected`) {
		t.Errorf("the \"ready\" line does not say why it was not ready:\n%s", logs)
	}
}

// TestStartingHandler: while a process waits for its dependencies it is alive
// but not ready, and serves nothing else.
func TestStartingHandler(t *testing.T) {
	h := gateway.Starting(map[string]string{"nats": "unavailable: starting"})
	tests := []struct {
		name, path string
		want       int
	}{
		{"alive", "/healthz", http.StatusOK},
		{"not ready", "/readyz", http.StatusServiceUnavailable},
		{"callbacks refused", "/wechat/wx0123456789abcdef", http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if rec.Code != tt.want {
				t.Errorf("GET %s = %d, want %d", tt.path, rec.Code, tt.want)
			}
		})
	}
	if code, body := probe(t, h); code != http.StatusServiceUnavailable || body["nats"] != "unavailable: starting" {
		t.Errorf("/readyz = %d %v, want 503 naming nats", code, body)
	}
}
