// Package admin serves wxgate's admin HTTP API under /v1: send requests,
// message status, the consent ledger, the events audit trail and dead letters.
package admin

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
)

// Service is what the API asks of the processor; *processor.Processor implements it.
// Implementations must be safe for concurrent use: every request calls it from its
// own goroutine.
type Service interface {
	// RequestSend stores a validated send request as a queued message. With an
	// idempotency key a retried request returns the existing message and
	// processor.ErrDuplicateRequest.
	RequestSend(ctx context.Context, appID string, req *schemas.SendRequest, idempotencyKey string) (*processor.Message, error)
	Message(ctx context.Context, appID, id string) (*processor.Message, error)
	Messages(ctx context.Context, q processor.MessageQuery) ([]processor.Message, string, error)
	Consents(ctx context.Context, appID, openID string) ([]processor.Consent, error)
	// ReportConsent records one wx.requestSubscribeMessage call; the same requestID
	// reported again changes nothing.
	ReportConsent(ctx context.Context, appID, openID, requestID string, results map[string]string) ([]processor.Consent, error)
	Events(ctx context.Context, q processor.EventQuery) ([]processor.EventRecord, string, error)
	DeadLetters(ctx context.Context, q processor.DeadLetterQuery) ([]processor.DeadLetter, string, error)
	Redrive(ctx context.Context, id string) (*processor.DeadLetter, error)
	// Resend sends a message whose outcome is unknown again; it may reach the
	// user twice. processor.ErrNotUnknown refuses any other message.
	Resend(ctx context.Context, appID, id string) (*processor.Message, error)
	Ready(ctx context.Context) error
}

// Templates finds an app's template, so that a send request is checked against
// the template's keywords. A nil Templates, or a (nil, nil) answer, means the
// template is unknown: the data is then checked by key prefix only.
// Implementations must be safe for concurrent use.
type Templates interface {
	Template(ctx context.Context, appID, templateID string) (*schemas.Template, error)
}

// Config is the API's fixed configuration.
type Config struct {
	// Tokens are the bearer tokens accepted by /v1. With none, every request is refused.
	Tokens []string
	// AppIDs are the apps the API serves; any other appid in a path answers 404.
	AppIDs []string
}

// maxBody bounds a request body. A send request with 64 keywords of 20
// characters, or a consent report of 64 templates, is a few KiB.
const maxBody = 64 << 10

// API serves /v1. It is safe for concurrent use; its configuration is fixed at
// construction.
type API struct {
	svc       Service
	templates Templates
	log       *slog.Logger
	// tokens are the SHA-256 digests of the accepted tokens: comparing digests
	// takes the same time whatever the lengths of the token and the guess.
	tokens [][sha256.Size]byte
	apps   map[string]bool
	sends  *schemas.Validator
}

// New returns the API. Empty tokens are ignored, so that an empty entry in the
// configuration never opens the API.
func New(cfg Config, svc Service, templates Templates, logger *slog.Logger) *API {
	a := &API{
		svc:       svc,
		templates: templates,
		log:       logger,
		apps:      make(map[string]bool, len(cfg.AppIDs)),
		sends:     schemas.NewValidator(),
	}
	for _, t := range cfg.Tokens {
		if t != "" {
			a.tokens = append(a.tokens, sha256.Sum256([]byte(t)))
		}
	}
	for _, id := range cfg.AppIDs {
		a.apps[id] = true
	}
	return a
}

// Register mounts the /v1 routes on r, every one behind bearer authentication.
func (a *API) Register(r gin.IRouter) {
	v1 := r.Group("/v1", a.authenticate)
	v1.POST("/apps/:appid/messages", a.handle(a.sendMessage))
	v1.GET("/apps/:appid/messages", a.handle(a.listMessages))
	v1.GET("/apps/:appid/messages/:id", a.handle(a.getMessage))
	v1.POST("/apps/:appid/messages/:id/resend", a.handle(a.resendMessage))
	v1.GET("/apps/:appid/consents/:openid", a.handle(a.getConsents))
	v1.POST("/apps/:appid/consents", a.handle(a.reportConsents))
	v1.GET("/apps/:appid/events", a.handle(a.listEvents))
	v1.GET("/dlq", a.handle(a.listDeadLetters))
	v1.POST("/dlq/:id/redrive", a.handle(a.redrive))
	v1.GET("/openapi.json", a.serveOpenAPI)
}

// app returns the path's appid, or errUnknownApp.
func (a *API) app(c *gin.Context) (string, error) {
	id := c.Param("appid")
	if !a.apps[id] {
		return "", errUnknownApp
	}
	return id, nil
}

// handle adapts a handler that writes its success and returns an error: the one
// place where errors become statuses, bodies and log lines. The caller sees a
// short fixed text (and, for a bad request, the fields to fix); the detail goes
// to the log.
func (a *API) handle(h func(*gin.Context) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		err := h(c)
		if err == nil {
			return
		}
		resp := classify(err)
		level := slog.LevelInfo
		if resp.status >= http.StatusInternalServerError {
			level = slog.LevelError
		}
		a.log.Log(c.Request.Context(), level, "admin request failed",
			"method", c.Request.Method, "route", c.FullPath(), "appid", c.Param("appid"),
			"status", resp.status, "err", err)
		c.JSON(resp.status, resp.body)
	}
}
