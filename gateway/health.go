package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check reports whether one dependency is ready. An error made by Unready
// shows its reason in the /readyz body; any other shows only "unavailable".
type Check func(ctx context.Context) error

// unready is a Check's error with a reason fit for callers.
type unready struct {
	reason string
	err    error
}

func (u *unready) Error() string { return u.err.Error() }
func (u *unready) Unwrap() error { return u.err }

// Unready wraps err, the reason a check fails, with a few words that /readyz
// may show to anyone ("no stream leader", "unreachable"). The reason must hold
// no address, credential or other internal detail; err goes only to the log.
func Unready(reason string, err error) error { return &unready{reason: reason, err: err} }

// publicReason is what the /readyz body says of a failing check.
func publicReason(err error) string {
	if u, ok := errors.AsType[*unready](err); ok {
		return "unavailable: " + u.reason
	}
	return "unavailable"
}

// readyTimeout bounds one /readyz answer: probes time out after a few seconds.
const readyTimeout = 2 * time.Second

// readiness remembers which checks failed at the last probe, so that a change
// is logged once and a probe that finds the same state logs nothing.
type readiness struct {
	log *slog.Logger

	mu      sync.Mutex
	failing map[string]string // check name -> the error it failed with
}

// observe records one probe's results and logs the checks that changed:
// "not ready" when one starts failing, "ready" when it passes again, with the
// reason it had failed.
func (r *readiness) observe(results map[string]error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(results)) {
		err := results[name]
		was, failed := r.failing[name]
		switch {
		case err != nil && !failed:
			r.failing[name] = err.Error()
			r.log.Warn("not ready", "check", name, "reason", publicReason(err), "err", err)
		case err == nil && failed:
			delete(r.failing, name)
			r.log.Info("ready", "check", name, "was", was)
		}
	}
}

// RegisterHealth mounts /healthz (the process is alive), /readyz (every check
// passes within two seconds; they run concurrently) and /metrics (Prometheus text from g) on r.
// /readyz answers 200 or 503 with {"check": "ok"} or {"check": "unavailable:
// reason"} for each check; the checks' errors go to log, once when a check
// starts failing ("not ready") and once when it recovers ("ready"), never
// once per probe, since probes come every few seconds.
func RegisterHealth(r gin.IRouter, checks map[string]Check, g prometheus.Gatherer, log *slog.Logger) {
	rd := &readiness{log: log, failing: map[string]string{}}
	r.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	r.GET("/readyz", func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), readyTimeout)
		defer cancel()
		// The checks run at once, each with the whole time: one that hangs
		// until the deadline must not make the others fail for want of time.
		results := make(map[string]error, len(checks))
		var mu sync.Mutex
		var wg sync.WaitGroup
		for name, check := range checks {
			wg.Go(func() {
				err := check(ctx)
				mu.Lock()
				defer mu.Unlock()
				results[name] = err
			})
		}
		wg.Wait()
		status, body := http.StatusOK, make(map[string]string, len(results))
		for name, err := range results {
			if err != nil {
				status, body[name] = http.StatusServiceUnavailable, publicReason(err)
				continue
			}
			body[name] = "ok"
		}
		if c.Request.Context().Err() == nil {
			// A probe whose caller gave up says nothing about the checks.
			rd.observe(results)
		}
		c.JSON(status, body)
	})
	h := promhttp.HandlerFor(g, promhttp.HandlerOpts{})
	r.GET("/metrics", gin.WrapH(h))
}

// Starting is the handler of a process that has not yet connected to its
// dependencies: /healthz answers 200, since the process is alive and busy
// waiting, /readyz answers 503 with reasons (such as {"nats": "unavailable:
// starting"}), and everything else 503.
func Starting(reasons map[string]string) http.Handler {
	body, _ := json.Marshal(reasons) // a map of strings always encodes
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch req.URL.Path {
		case "/healthz":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("ok"))
		case "/readyz":
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write(body)
		default:
			http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
		}
	})
}
