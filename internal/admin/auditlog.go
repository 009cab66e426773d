package admin

import (
	"context"
	"crypto/rand"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
)

// AuditLog keeps the record of the API's state-changing calls. Implementations
// are safe for concurrent use and wrap the processor's store errors.
type AuditLog interface {
	// InsertAudit stores one record.
	InsertAudit(ctx context.Context, r *AuditRecord) error
	// Audit lists records, newest first, one page at a time, and returns the
	// cursor of the next page ("" on the last).
	Audit(ctx context.Context, q AuditQuery) ([]AuditRecord, string, error)
}

// AuditRecord is one state-changing call: who made it, what it asked for,
// when, and how it was answered. It holds names and ids only: never a token,
// template data or any other content of a request.
type AuditRecord struct {
	ID string `bson:"_id"`
	// At is when the call arrived.
	At time.Time `bson:"at"`
	// TokenName is the name of the token the call was made with.
	TokenName string `bson:"token_name"`
	Method    string `bson:"method"`
	// Route is the route's pattern, such as /v1/apps/{appid}/messages/{id}/resend.
	Route string `bson:"route"`
	// AppID is the app the call named, or for a dead letter's redrive the app
	// of the dead letter; empty for neither.
	AppID string `bson:"appid,omitempty"`
	// Targets are the ids the call acted on or created, by kind: the route's
	// own path parameters (id, openid) and what the call added (see auditTarget).
	Targets map[string]string `bson:"targets,omitempty"`
	// Status is the HTTP status of the answer.
	Status int `bson:"status"`
}

// AuditQuery selects audit records.
type AuditQuery struct {
	processor.Page
}

// Target kinds a handler adds to its call's record, besides the path's.
const (
	// targetID is the id of the message a send request created, as "id" in
	// the path of a message's routes is.
	targetID         = "id"
	targetToUser     = "touser"
	targetTemplateID = "template_id"
	targetOpenID     = "openid"
	targetRequestID  = "request_id"
)

// auditWriteTimeout bounds the write of one record; the caller waits for it.
const auditWriteTimeout = 5 * time.Second

// auditNoteKey keeps, in a request's gin.Context, what its handler adds to its record.
const auditNoteKey = "wxgate.admin.audit"

// auditNote is what a handler adds to its call's record.
type auditNote struct {
	appID   string
	targets map[string]string
}

// note returns the request's auditNote, making it on first use.
func note(c *gin.Context) *auditNote {
	if n, ok := c.Get(auditNoteKey); ok {
		return n.(*auditNote)
	}
	n := &auditNote{targets: map[string]string{}}
	c.Set(auditNoteKey, n)
	return n
}

// auditTarget adds an id the call acts on or created to its record.
func auditTarget(c *gin.Context, kind, id string) {
	if id != "" {
		note(c).targets[kind] = bounded(id)
	}
}

// auditApp names the app of a call whose path names none.
func auditApp(c *gin.Context, appID string) {
	note(c).appID = bounded(appID)
}

// bounded cuts a caller's id to the bound of a well-formed one, so that a
// record stays small whatever the path held.
func bounded(id string) string { return schemas.Truncate(id, maxID) }

// changesState reports whether a request of this method may change state.
func changesState(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// record writes the audit record of a state-changing call once the call is
// answered (or has panicked: the record then says 500, which is what
// gin.Recovery answers). The answer waits for the write; a failed write is
// logged at error level with the whole record, and the caller's answer stays
// what it was: the change is made by then, and refusing it afterwards would
// tell the caller a lie.
func (a *API) record(c *gin.Context) {
	if !changesState(c.Request.Method) {
		c.Next()
		return
	}
	at := time.Now().UTC().Truncate(time.Millisecond) // the store keeps milliseconds
	panicked := true
	defer func() {
		status := c.Writer.Status()
		if panicked {
			status = http.StatusInternalServerError
		}
		a.write(c, a.newRecord(c, at, status))
	}()
	c.Next()
	panicked = false
}

// newRecord makes the record of the call c, answered with status.
func (a *API) newRecord(c *gin.Context, at time.Time, status int) *AuditRecord {
	r := &AuditRecord{
		ID:      rand.Text(),
		At:      at,
		Method:  c.Request.Method,
		Route:   routePattern(c.FullPath()),
		AppID:   bounded(c.Param("appid")),
		Targets: map[string]string{},
		Status:  status,
	}
	if g := grantOf(c); g != nil {
		r.TokenName = g.name
	}
	for _, p := range c.Params {
		if p.Key != "appid" {
			r.Targets[p.Key] = bounded(p.Value)
		}
	}
	if n, ok := c.Get(auditNoteKey); ok {
		n := n.(*auditNote)
		for k, v := range n.targets {
			r.Targets[k] = v
		}
		if r.AppID == "" {
			r.AppID = n.appID
		}
	}
	if len(r.Targets) == 0 {
		r.Targets = nil
	}
	return r
}

// write stores r, or logs it at error level when it cannot.
func (a *API) write(c *gin.Context, r *AuditRecord) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), auditWriteTimeout)
	defer cancel()
	if err := a.audit.InsertAudit(ctx, r); err != nil {
		a.log.Error("admin audit record not written; the call was answered anyway: this log line is its only record",
			"audit_id", r.ID, "at", r.At, "token", r.TokenName, "method", r.Method, "route", r.Route,
			"appid", r.AppID, "targets", r.Targets, "status", r.Status, "err", err)
	}
}

// routePattern turns gin's route (/v1/apps/:appid/messages) into the
// README's and OpenAPI's form (/v1/apps/{appid}/messages).
func routePattern(fullPath string) string {
	segs := strings.Split(fullPath, "/")
	for i, s := range segs {
		if name, ok := strings.CutPrefix(s, ":"); ok {
			segs[i] = "{" + name + "}"
		} else if name, ok := strings.CutPrefix(s, "*"); ok {
			segs[i] = "{" + name + "}"
		}
	}
	return strings.Join(segs, "/")
}

// listAudit answers GET /v1/audit: the audit log, newest first.
func (a *API) listAudit(c *gin.Context) error {
	q := newQuery(c.Request.URL)
	aq := AuditQuery{Page: q.page()}
	if err := q.err(); err != nil {
		return err
	}
	rs, next, err := a.audit.Audit(c.Request.Context(), aq)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, newList(rs, next, viewAudit))
	return nil
}

// AuditView is one record of the audit log: GET /v1/audit.
type AuditView struct {
	ID        string            `json:"id"`
	At        time.Time         `json:"at"`
	TokenName string            `json:"token_name"`
	Method    string            `json:"method"`
	Route     string            `json:"route"`
	AppID     string            `json:"appid,omitempty"`
	Targets   map[string]string `json:"targets,omitempty"`
	Status    int               `json:"status"`
}

func viewAudit(r *AuditRecord) AuditView {
	return AuditView{
		ID: r.ID, At: r.At, TokenName: r.TokenName, Method: r.Method, Route: r.Route,
		AppID: r.AppID, Targets: r.Targets, Status: r.Status,
	}
}
