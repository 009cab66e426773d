package gateway

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check reports whether one dependency is reachable.
type Check func(ctx context.Context) error

// RegisterHealth mounts /healthz (the process is alive), /readyz (every check
// passes within two seconds) and /metrics (Prometheus text from g) on r.
// Check failures are named in the body but their errors only go to the log.
func RegisterHealth(r gin.IRouter, checks map[string]Check, g prometheus.Gatherer) {
	r.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	r.GET("/readyz", func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
		defer cancel()
		status, body := http.StatusOK, map[string]string{}
		for name, check := range checks {
			if err := check(ctx); err != nil {
				status, body[name] = http.StatusServiceUnavailable, "unavailable"
				_ = c.Error(err)
				continue
			}
			body[name] = "ok"
		}
		c.JSON(status, body)
	})
	h := promhttp.HandlerFor(g, promhttp.HandlerOpts{})
	r.GET("/metrics", gin.WrapH(h))
}
