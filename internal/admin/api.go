// Package admin serves wxgate's admin HTTP API under /v1: send requests,
// message status, the consent ledger, the events audit trail, dead letters,
// and the audit log of the API's own state-changing calls. Every request
// needs a bearer token whose scope, a role on some apps, covers its route.
package admin

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

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
	// RedriveMatching and DeleteMatching redrive or delete every dead letter a
	// query matches, up to a bound, and return how many.
	RedriveMatching(ctx context.Context, q processor.DeadLetterQuery) (int, error)
	DeleteMatching(ctx context.Context, q processor.DeadLetterQuery) (int, error)
	DeleteDeadLetter(ctx context.Context, id string) error
	// Resend sends a message whose outcome is unknown again; it may reach the
	// user twice. processor.ErrNotUnknown refuses any other message.
	Resend(ctx context.Context, appID, id string) (*processor.Message, error)
	// ReplayEvent and ReplayEvents apply received events again through the
	// processor's normal path, idempotently, and count what changed.
	ReplayEvent(ctx context.Context, appID, id string) (processor.ReplayResult, error)
	ReplayEvents(ctx context.Context, appID string, since, until time.Time) (processor.ReplayResult, error)
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
	// Tokens are the bearer tokens accepted by /v1 and their scopes. With
	// none, every request is refused.
	Tokens []Token
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
	audit     AuditLog
	log       *slog.Logger
	// grants are the accepted tokens, kept as SHA-256 digests: comparing
	// digests takes the same time whatever the lengths of the token and the guess.
	grants []grant
	// scopes maps "METHOD /v1/route" to what the route needs.
	scopes map[string]routeScope
	apps   map[string]bool
	sends  *schemas.Validator
}

// New returns the API; audit keeps the record of its state-changing calls and
// must not be nil. A token that cannot be accepted (no name, no secret, an
// unknown role, a malformed hash) is left out and logged, so that a bad
// entry never opens the API. Tokens should differ: of two entries with the
// same token, the last one counts.
func New(cfg Config, svc Service, templates Templates, audit AuditLog, logger *slog.Logger) *API {
	a := &API{
		svc:       svc,
		templates: templates,
		audit:     audit,
		log:       logger,
		scopes:    map[string]routeScope{},
		apps:      make(map[string]bool, len(cfg.AppIDs)),
		sends:     schemas.NewValidator(),
	}
	for i, t := range cfg.Tokens {
		g, err := newGrant(t)
		if err != nil {
			a.log.Error("admin token left out", "index", i, "name", t.Name, "err", err)
			continue
		}
		a.grants = append(a.grants, g)
	}
	for _, rt := range a.routes() {
		a.scopes[rt.method+" "+prefix+rt.path] = routeScope{role: rt.role, perApp: strings.Contains(rt.path, "/:appid/")}
	}
	for _, id := range cfg.AppIDs {
		a.apps[id] = true
	}
	return a
}

// prefix is where the API is mounted.
const prefix = "/v1"

// route is one route of the API and the role it needs: on the app in its
// path, or on all apps for a route that names none.
type route struct {
	method, path string
	role         Role
	h            func(*gin.Context) error
}

// routes lists the API's routes; it is the table of scopes the README shows.
func (a *API) routes() []route {
	return []route{
		{http.MethodPost, "/apps/:appid/messages", RoleSend, a.sendMessage},
		{http.MethodGet, "/apps/:appid/messages", RoleRead, a.listMessages},
		{http.MethodGet, "/apps/:appid/messages/:id", RoleRead, a.getMessage},
		{http.MethodPost, "/apps/:appid/messages/:id/resend", RoleAdmin, a.resendMessage},
		{http.MethodGet, "/apps/:appid/consents/:openid", RoleRead, a.getConsents},
		{http.MethodPost, "/apps/:appid/consents", RoleSend, a.reportConsents},
		{http.MethodGet, "/apps/:appid/events", RoleRead, a.listEvents},
		{http.MethodPost, "/apps/:appid/events/replay", RoleAdmin, a.replayEvents},
		{http.MethodPost, "/apps/:appid/events/:id/replay", RoleAdmin, a.replayEvent},
		{http.MethodGet, "/dlq", RoleAdmin, a.listDeadLetters},
		{http.MethodPost, "/dlq/:id/redrive", RoleAdmin, a.redrive},
		{http.MethodDelete, "/dlq/:id", RoleAdmin, a.deleteDeadLetter},
		{http.MethodPost, "/dlq/redrive", RoleAdmin, a.redriveMatching},
		{http.MethodDelete, "/dlq", RoleAdmin, a.deleteMatching},
		{http.MethodGet, "/audit", RoleAdmin, a.listAudit},
	}
}

// Register mounts the /v1 routes on r. Every request is authenticated, then
// recorded in the audit log if it may change state, then authorized, so that
// a refused attempt is recorded too.
func (a *API) Register(r gin.IRouter) {
	v1 := r.Group(prefix, a.authenticate, a.record, a.authorize)
	for _, rt := range a.routes() {
		v1.Handle(rt.method, rt.path, a.handle(rt.h))
	}
	// The API's own description, for any valid token.
	r.Group(prefix, a.authenticate).GET("/openapi.json", a.serveOpenAPI)
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
		if err := h(c); err != nil {
			a.fail(c, err)
		}
	}
}

// fail answers a request with err's status and body, logs why and stops the
// request's remaining handlers.
func (a *API) fail(c *gin.Context, err error) {
	resp := classify(err)
	level := slog.LevelInfo
	if resp.status >= http.StatusInternalServerError {
		level = slog.LevelError
	}
	token := ""
	if g := grantOf(c); g != nil {
		token = g.name
	}
	a.log.Log(c.Request.Context(), level, "admin request failed",
		"method", c.Request.Method, "route", c.FullPath(), "appid", c.Param("appid"), "token", token,
		"status", resp.status, "err", err)
	c.AbortWithStatusJSON(resp.status, resp.body)
}
