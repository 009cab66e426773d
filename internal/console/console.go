// Package console serves wxgate's web console at /console: delivery audits
// for people, rendered on the server from templates embedded in the binary,
// signed in with the admin API's tokens and held to their scopes.
package console

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/wxgate/wxgate/internal/admin"
	"github.com/wxgate/wxgate/internal/derrors"
	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
)

// Service is what the console asks of the processor; *processor.Processor
// implements it, as it does the admin API's. Implementations must be safe for
// concurrent use.
type Service interface {
	RequestSend(ctx context.Context, appID string, req *schemas.SendRequest, idempotencyKey string) (*processor.Message, error)
	Message(ctx context.Context, appID, id string) (*processor.Message, error)
	Messages(ctx context.Context, q processor.MessageQuery) ([]processor.Message, string, error)
	Consents(ctx context.Context, appID, openID string) ([]processor.Consent, error)
	Events(ctx context.Context, q processor.EventQuery) ([]processor.EventRecord, string, error)
	DeadLetters(ctx context.Context, q processor.DeadLetterQuery) ([]processor.DeadLetter, string, error)
	DeadLetter(ctx context.Context, id string) (*processor.DeadLetter, error)
	Redrive(ctx context.Context, id string) (*processor.DeadLetter, error)
	RedriveMatching(ctx context.Context, q processor.DeadLetterQuery) (int, error)
	// Resend sends a message whose outcome is unknown again; it may reach the
	// user twice.
	Resend(ctx context.Context, appID, id string) (*processor.Message, error)
}

// Templates lists an app's templates (gettemplate) and finds one of them.
// Implementations must be safe for concurrent use.
type Templates interface {
	Templates(ctx context.Context, appID string) ([]schemas.Template, error)
	Template(ctx context.Context, appID, templateID string) (*schemas.Template, error)
}

// Stats adds up an app's figures since a time, for the overview.
type Stats interface {
	Counts(ctx context.Context, appID string, since time.Time) (processor.Counts, error)
}

// Auth tells what a token may do; *admin.API implements it, so the console
// accepts exactly the admin API's tokens with their scopes.
type Auth interface {
	Identify(token string) (admin.Identity, bool)
}

// Config is the console's fixed configuration.
type Config struct {
	// AppIDs are the apps the console shows; any other appid answers 404.
	AppIDs []string
	// Zone is the time zone pages use when the browser has not told its own;
	// nil means Asia/Shanghai, where WeChat's operators mostly are.
	Zone *time.Location
}

//go:embed templates static
var files embed.FS

// prefix is where the console is mounted; its session cookie is scoped to it.
const prefix = "/console"

// Console serves /console. It is safe for concurrent use; its configuration is
// fixed at construction.
type Console struct {
	svc       Service
	templates Templates
	stats     Stats
	auth      Auth
	audit     admin.AuditLog
	log       *slog.Logger
	apps      []string
	known     map[string]bool
	zone      *time.Location
	pages     map[string]*template.Template
	sends     *schemas.Validator
	now       func() time.Time
}

// New returns the console. audit receives a record of every state-changing
// action, as the admin API's calls are recorded; it must not be nil.
func New(cfg Config, svc Service, templates Templates, stats Stats, auth Auth, audit admin.AuditLog, logger *slog.Logger) (*Console, error) {
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	zone := cfg.Zone
	if zone == nil {
		if zone, err = time.LoadLocation(defaultZone); err != nil {
			return nil, err
		}
	}
	c := &Console{
		svc: svc, templates: templates, stats: stats, auth: auth, audit: audit, log: logger,
		apps: append([]string(nil), cfg.AppIDs...), known: map[string]bool{}, zone: zone,
		pages: pages, sends: schemas.NewValidator(), now: time.Now,
	}
	for _, id := range cfg.AppIDs {
		c.known[id] = true
	}
	return c, nil
}

// defaultZone is Beijing time, WeChat's own (its daily quotas reset at its midnight).
const defaultZone = "Asia/Shanghai"

// Register mounts the console's routes on r.
func (c *Console) Register(r gin.IRouter) {
	static, _ := fs.Sub(files, "static") // the directory is embedded above
	g := r.Group(prefix, c.secure)
	g.StaticFS("/static", http.FS(static))
	g.GET("/signin", c.page(c.signInPage))
	g.POST("/signin", c.page(c.signIn))

	s := g.Group("", c.session)
	s.POST("/signout", c.page(c.signOut))
	s.GET("", c.page(c.home))
	s.GET("/", c.page(c.home))
	app := s.Group("/apps/:appid", c.appScope)
	app.GET("", c.page(c.overview))
	app.GET("/messages", c.page(c.messages))
	app.GET("/messages/:id", c.page(c.message))
	app.POST("/messages/:id/resend", c.page(c.resend))
	app.GET("/users", c.page(c.userLookup))
	app.GET("/users/:openid", c.page(c.user))
	app.GET("/dlq", c.page(c.deadLetters))
	app.GET("/dlq/:id/redrive", c.page(c.confirmRedrive))
	app.POST("/dlq/:id/redrive", c.page(c.redrive))
	app.GET("/dlq-redrive", c.page(c.confirmRedriveMatching))
	app.POST("/dlq-redrive", c.page(c.redriveMatching))
	app.GET("/templates", c.page(c.templateList))
	app.GET("/templates/:tid", c.page(c.templateForm))
	app.POST("/templates/:tid", c.page(c.templateSubmit))
}

// contentSecurityPolicy allows the console's own stylesheet and script, images
// from itself and data: URLs, and forms posting to itself; nothing else, and
// no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// secure sets the headers every console answer carries.
func (c *Console) secure(ctx *gin.Context) {
	h := ctx.Writer.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	ctx.Next()
}

// appScope answers 404 for an app the console does not serve and 403 when the
// session's token may not read it.
func (c *Console) appScope(ctx *gin.Context) {
	id := ctx.Param("appid")
	if !c.known[id] {
		c.fail(ctx, errUnknownApp)
		return
	}
	if err := c.need(ctx, admin.RoleRead, id); err != nil {
		c.fail(ctx, err)
		return
	}
	ctx.Next()
}

// need returns a forbiddenError unless the session holds role on appID.
func (c *Console) need(ctx *gin.Context, role admin.Role, appID string) error {
	if sessionOf(ctx).id.Allows(role, appID) {
		return nil
	}
	return &forbiddenError{scope: admin.MissingScope(role, appID)}
}

// Errors the console maps to pages, besides the processor's kinds.
var (
	errUnknownApp = errors.New("unknown appid")
	errBadForm    = errors.New("the form is out of date or was not sent by this console; reload the page and try again")
)

// forbiddenError is an action the session's token lacks the scope for.
type forbiddenError struct{ scope string }

func (e *forbiddenError) Error() string { return "forbidden: the token lacks " + e.scope }

// page adapts a handler that renders its page and returns an error: the one
// place where errors become status codes and error pages. The detail goes to
// the log, never to the page.
func (c *Console) page(h func(*gin.Context) error) gin.HandlerFunc {
	return func(ctx *gin.Context) {
		if err := h(ctx); err != nil {
			c.fail(ctx, err)
		}
	}
}

// fail renders the error page of err and stops the request.
func (c *Console) fail(ctx *gin.Context, err error) {
	status, text := classify(err)
	level := slog.LevelInfo
	if status >= http.StatusInternalServerError {
		level = slog.LevelError
	}
	c.log.Log(ctx.Request.Context(), level, "console request failed", "method", ctx.Request.Method,
		"route", ctx.FullPath(), "appid", ctx.Param("appid"), "token", sessionOf(ctx).id.Name(), "status", status, "err", err)
	c.render(ctx, status, "error", &errorPage{Status: status, Text: text})
	ctx.Abort()
}

// classify maps an error to its status and the sentence the page shows.
func classify(err error) (int, string) {
	var forbidden *forbiddenError
	switch {
	case errors.As(err, &forbidden):
		return http.StatusForbidden, "Your token lacks " + forbidden.scope + ": ask an administrator for a token with that scope."
	case errors.Is(err, errUnknownApp):
		return http.StatusNotFound, "This console serves no app with that appid."
	case errors.Is(err, errBadForm):
		return http.StatusForbidden, errBadForm.Error()
	case errors.Is(err, processor.ErrBadCursor):
		return http.StatusBadRequest, "The page link is not one this console made; start from the first page."
	}
	switch derrors.KindOf(err) {
	case derrors.Invalid:
		return http.StatusBadRequest, "The request is not valid."
	case derrors.NotFound:
		return http.StatusNotFound, "Not found."
	case derrors.Conflict, derrors.Duplicate:
		return http.StatusConflict, "It changed meanwhile; reload the page and try again."
	case derrors.Unavailable:
		return http.StatusServiceUnavailable, "The store or the stream is unavailable; try again shortly."
	}
	return http.StatusInternalServerError, "Something went wrong on the server; the details are in its log."
}

// errorPage is the page of a refused or failed request.
type errorPage struct {
	base
	Status int
	Text   string
}

// home sends a signed-in operator to the first app they may read.
func (c *Console) home(ctx *gin.Context) error {
	for _, id := range c.apps {
		if sessionOf(ctx).id.Allows(admin.RoleRead, id) {
			ctx.Redirect(http.StatusSeeOther, prefix+"/apps/"+id)
			return nil
		}
	}
	return &forbiddenError{scope: "read on any app this console serves"}
}

// record adds an action to the audit log. A failed write is logged with the
// record; the action stands, as in the admin API.
func (c *Console) record(ctx *gin.Context, route, appID string, targets map[string]string, status int) {
	r := &admin.AuditRecord{
		ID: auditID(), At: c.now().UTC(), TokenName: sessionOf(ctx).id.Name(), Method: ctx.Request.Method,
		Route: route, AppID: appID, Targets: targets, Status: status,
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx.Request.Context()), 5*time.Second)
	defer cancel()
	if err := c.audit.InsertAudit(wctx, r); err != nil {
		c.log.Error("console audit record not written", "record", r, "err", err)
	}
}
