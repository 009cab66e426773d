package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxgate/wxgate/crypto"
	"github.com/wxgate/wxgate/schemas"
)

// Publisher stores one event durably, on its subject for downstream services
// and on its work subject for the processors, and reports whether the stream
// already held it. The gateway answers success only after PublishWork returns
// nil.
type Publisher interface {
	PublishWork(ctx context.Context, subject, workSubject, id string, data []byte) (duplicate bool, err error)
}

// App is one mini program's push settings.
type App struct {
	AppID string
	// Token is the message-push Token that signs every request.
	Token string
	// EncodingAESKey and PreviousEncodingAESKey decrypt aes-mode pushes; both may be empty
	// for an app that only uses plaintext mode.
	EncodingAESKey         string
	PreviousEncodingAESKey string
}

// Config is what the gateway needs besides its publisher.
type Config struct {
	Apps []App
	// MaxSkew rejects pushes whose timestamp is further from now; 0 disables the check.
	MaxSkew time.Duration
	// MaxBody is the largest accepted body in bytes.
	MaxBody int64
	// PublishTimeout bounds the wait for the stream's acknowledgement.
	PublishTimeout time.Duration
	// Clock returns the current time, read once per request: it checks the
	// push's timestamp and is the CloudEvent's time. nil means time.Now. It
	// is called concurrently.
	Clock func() time.Time
}

// maxLoggedAppID bounds an appid from a request path in the log: real ones
// are 18 bytes, a made-up one may be anything.
const maxLoggedAppID = 64

// Errors the gateway maps to statuses; crypto and schemas sentinels are mapped too.
var (
	errUnknownApp  = errors.New("unknown appid")
	errTooLarge    = errors.New("body too large")
	errNoKey       = errors.New("push is encrypted but no key is configured")
	errUnavailable = errors.New("event not stored")
)

// Server serves the WeChat push URL of every configured app. It is safe for
// concurrent use; its apps may be replaced while it serves (SetApps), the rest
// of its configuration is fixed at construction.
type Server struct {
	// apps is replaced whole by SetApps and never changed in place, so a
	// request reads it without a lock.
	apps           atomic.Pointer[map[string]app]
	pub            Publisher
	log            *slog.Logger
	metrics        *metrics
	maxSkew        time.Duration
	maxBody        int64
	publishTimeout time.Duration
	clock          func() time.Time
}

type app struct {
	AppID  string
	Token  string
	Cipher *crypto.Cipher
}

// New builds a Server; it fails if an app's key is unusable. Metrics are
// registered on reg, with every configured app's series at zero.
func New(cfg Config, pub Publisher, logger *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	s := &Server{
		pub:            pub,
		log:            logger,
		maxSkew:        cfg.MaxSkew,
		maxBody:        cfg.MaxBody,
		publishTimeout: cfg.PublishTimeout,
		clock:          cfg.Clock,
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.maxBody <= 0 {
		s.maxBody = 1 << 20
	}
	if s.publishTimeout <= 0 {
		s.publishTimeout = 2 * time.Second
	}
	if err := s.SetApps(cfg.Apps); err != nil {
		return nil, err
	}
	appIDs := make([]string, 0, len(cfg.Apps))
	for _, a := range cfg.Apps {
		appIDs = append(appIDs, a.AppID)
	}
	m, err := newMetrics(reg, appIDs)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	return s, nil
}

// Register mounts GET and POST /wechat/:appid on r.
func (s *Server) Register(r gin.IRouter) {
	r.GET("/wechat/:appid", s.handle(func(c *gin.Context) (string, error) { return eventVerify, s.verifyURL(c) }))
	r.POST("/wechat/:appid", s.handle(s.receive))
}

// SetApps replaces the apps the gateway serves, all at once: adding, removing
// and re-keying apps. A request uses either the old apps or the new ones, never
// a mix, and requests under way finish with the apps they started with, so no
// callback is dropped. If an app's key is unusable, SetApps returns the error
// and the apps stay as they were. It is safe to call while serving.
func (s *Server) SetApps(apps []App) error {
	table := make(map[string]app, len(apps))
	for _, a := range apps {
		if _, dup := table[a.AppID]; dup {
			return fmt.Errorf("gateway: app %s: listed twice", a.AppID)
		}
		x := app{AppID: a.AppID, Token: a.Token}
		if a.EncodingAESKey != "" {
			c, err := crypto.NewCipher(a.AppID, a.EncodingAESKey, a.PreviousEncodingAESKey)
			if err != nil {
				return fmt.Errorf("gateway: app %s: %w", a.AppID, err)
			}
			x.Cipher = c
		}
		table[a.AppID] = x
	}
	s.apps.Store(&table)
	return nil
}

func (s *Server) app(appID string) (app, error) {
	a, ok := (*s.apps.Load())[appID]
	if !ok {
		return app{}, errUnknownApp
	}
	return a, nil
}

// handle adapts a handler that returns an error: the one place where errors
// become statuses, metrics and log lines. The caller sees a short fixed text;
// the detail goes to the log.
func (s *Server) handle(h func(*gin.Context) (string, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		appID := c.Param("appid")
		event, err := h(c)
		status, outcome := classify(err)
		// The metric's label is a configured appid or "unknown", so made-up
		// appids cannot grow its cardinality; the log names what was asked for.
		label := appID
		if _, known := (*s.apps.Load())[appID]; !known {
			label = "unknown"
		}
		if event == "" {
			event = eventNone
		}
		s.metrics.callbacks.WithLabelValues(label, outcome, event).Inc()
		s.metrics.latency.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
		if err == nil {
			return
		}
		level := slog.LevelWarn
		if status >= 500 {
			level = slog.LevelError
		}
		s.log.Log(c.Request.Context(), level, "callback rejected",
			"appid", schemas.Truncate(appID, maxLoggedAppID), "method", c.Request.Method, "status", status, "outcome", outcome, "err", err)
		c.Data(status, "text/plain; charset=utf-8", []byte(http.StatusText(status)))
	}
}

// classify maps an error to the HTTP status of the contract and a metric label.
func classify(err error) (int, string) {
	switch {
	case err == nil:
		return http.StatusOK, "ok"
	case errors.Is(err, errUnknownApp):
		return http.StatusNotFound, "unknown_app"
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge, "too_large"
	case errors.Is(err, crypto.ErrBadSignature):
		return http.StatusUnauthorized, "bad_signature"
	case errors.Is(err, crypto.ErrStaleTimestamp):
		return http.StatusUnauthorized, "stale_timestamp"
	case errors.Is(err, crypto.ErrAppIDMismatch):
		return http.StatusBadRequest, "appid_mismatch"
	case errors.Is(err, crypto.ErrBadCiphertext), errors.Is(err, crypto.ErrBadPadding),
		errors.Is(err, crypto.ErrBadLength), errors.Is(err, errNoKey):
		return http.StatusBadRequest, "undecryptable"
	case errors.Is(err, schemas.ErrMalformed):
		return http.StatusBadRequest, "malformed"
	case errors.Is(err, errUnavailable):
		return http.StatusServiceUnavailable, "unavailable"
	default:
		return http.StatusInternalServerError, "error"
	}
}

// eventLabel bounds the metric label to the known events, so a stream of made-up
// event names cannot grow the metric's cardinality.
func eventLabel(event, msgType string) string {
	switch event {
	case schemas.EventSubscribePopup, schemas.EventSubscribeChange, schemas.EventSubscribeSent:
		return event
	case "":
		switch msgType {
		case "text", "image", "voice", "video", "location", "link", "miniprogrampage":
			return msgType
		}
	}
	return "other"
}
