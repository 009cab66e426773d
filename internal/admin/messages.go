package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
)

// headerIdempotencyKey names the header that makes a POST safe to retry.
const headerIdempotencyKey = "Idempotency-Key"

// sendMessage answers POST /v1/apps/{appid}/messages: the request is decoded,
// checked against the keyword rules (and the template, when known) and queued.
// A retry with the same Idempotency-Key answers with the message of the first try.
func (a *API) sendMessage(c *gin.Context) error {
	appID, err := a.app(c)
	if err != nil {
		return err
	}
	key, err := idempotencyKey(c)
	if err != nil {
		return err
	}
	body, err := readBody(c)
	if err != nil {
		return err
	}
	var req schemas.SendRequest
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	tmpl, err := a.template(c, appID, req.TemplateID)
	if err != nil {
		return err
	}
	if errs := a.sends.Check(&req, tmpl); len(errs) > 0 {
		return invalidRequest(errs...)
	}
	auditTarget(c, targetToUser, req.ToUser)
	auditTarget(c, targetTemplateID, req.TemplateID)
	m, err := a.svc.RequestSend(c.Request.Context(), appID, &req, key)
	if err != nil && !errors.Is(err, processor.ErrDuplicateRequest) {
		return err
	}
	if m == nil {
		return fmt.Errorf("request send: no message returned (err %v)", err)
	}
	auditTarget(c, targetID, m.ID)
	c.Header("Location", "/v1/apps/"+appID+"/messages/"+m.ID)
	c.JSON(http.StatusAccepted, Accepted{ID: m.ID, Status: m.Status})
	return nil
}

// template looks up the request's template. A failed lookup is logged and the
// request is checked by key prefix only: WeChat still refuses data that does not
// fit the template, and the message then ends as invalid, so an unreachable
// template API should not stop every send.
func (a *API) template(c *gin.Context, appID, templateID string) (*schemas.Template, error) {
	if a.templates == nil || templateID == "" {
		return nil, nil
	}
	if reason, _ := checkID(templateID); reason != "" {
		return nil, nil // reported by the request's own checks
	}
	t, err := a.templates.Template(c.Request.Context(), appID, templateID)
	if errors.Is(err, schemas.ErrNoSuchTemplate) {
		return nil, invalidRequest(schemas.FieldError{Field: "template_id", Rule: "unknown_template",
			Message: "template_id is not one of the app's templates (gettemplate)"})
	}
	if err != nil {
		a.log.Warn("template lookup failed; checking the data by keyword type only", "appid", appID, "template_id", templateID, "err", err)
		return nil, nil
	}
	return t, nil
}

// getMessage answers GET /v1/apps/{appid}/messages/{id}.
func (a *API) getMessage(c *gin.Context) error {
	appID, err := a.app(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	if reason, _ := checkID(id); reason != "" {
		return processor.ErrNotFound // no message has such an id
	}
	m, err := a.svc.Message(c.Request.Context(), appID, id)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, viewMessage(m))
	return nil
}

// confirmMaySendTwice is the confirmation a resend of an unknown message needs.
const confirmMaySendTwice = "may_send_twice"

// resendRequest is the body of POST /v1/apps/{appid}/messages/{id}/resend.
type resendRequest struct {
	// Confirm must be "may_send_twice": WeChat may have accepted the first send.
	Confirm string `json:"confirm"`
}

// resendMessage answers POST /v1/apps/{appid}/messages/{id}/resend: a message
// whose send outcome is unknown is sent again, from a new grant, once the
// caller confirms that the user may get it twice. 202 with the message as it
// was; 409 when its outcome is known.
func (a *API) resendMessage(c *gin.Context) error {
	appID, err := a.app(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	if reason, _ := checkID(id); reason != "" {
		return processor.ErrNotFound
	}
	body, err := readBody(c)
	if err != nil {
		return err
	}
	var r resendRequest
	if err := decodeJSON(body, &r); err != nil {
		return err
	}
	if r.Confirm != confirmMaySendTwice {
		return invalidRequest(schemas.FieldError{Field: "confirm", Rule: "eq",
			Message: `confirm must be "` + confirmMaySendTwice + `": the first send may have reached the user, and a resend may reach them twice`})
	}
	m, err := a.svc.Resend(c.Request.Context(), appID, id)
	if err != nil {
		return err
	}
	c.JSON(http.StatusAccepted, viewMessage(m))
	return nil
}

// listMessages answers GET /v1/apps/{appid}/messages, newest first.
func (a *API) listMessages(c *gin.Context) error {
	appID, err := a.app(c)
	if err != nil {
		return err
	}
	q := newQuery(c.Request.URL)
	mq := processor.MessageQuery{
		AppID:      appID,
		ToUser:     q.id("touser"),
		TemplateID: q.id("template_id"),
		Status:     q.status("status"),
		Page:       q.page(),
	}
	if err := q.err(); err != nil {
		return err
	}
	ms, next, err := a.svc.Messages(c.Request.Context(), mq)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, newList(ms, next, viewMessage))
	return nil
}

// idempotencyKey reads the optional Idempotency-Key header.
func idempotencyKey(c *gin.Context) (string, error) {
	key := c.GetHeader(headerIdempotencyKey)
	if reason, rule := checkID(key); reason != "" {
		return "", invalidRequest(schemas.FieldError{Field: headerIdempotencyKey, Rule: rule, Message: headerIdempotencyKey + " " + reason})
	}
	return key, nil
}

// readBody reads the request body, at most maxBody bytes.
func readBody(c *gin.Context) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, errTooLarge
	}
	if err != nil {
		return nil, fmt.Errorf("reading the request body: %w", err)
	}
	return body, nil
}

// decodeJSON decodes a request body into v, a pointer to a struct. Field errors
// from v's own decoding pass through; a syntax error or a member of the wrong
// type becomes a field error naming the member, never repeating its value.
func decodeJSON(body []byte, v any) error {
	err := json.Unmarshal(body, v)
	var fes schemas.FieldErrors
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fes):
		return invalidRequest(fes...)
	case errors.As(err, &typeErr) && typeErr.Field != "":
		field := memberPath(reflect.TypeOf(v), typeErr.Field)
		return invalidRequest(schemas.FieldError{Field: field, Rule: "type", Message: fmt.Sprintf("%s must be a JSON %s", field, jsonType(typeErr))})
	default:
		return invalidRequest(schemas.FieldError{Field: "", Rule: "json", Message: "the body must be a JSON object"})
	}
}

// memberPath turns encoding/json's path of a failed field, which names Go
// embedded types ("plain.touser"), into the JSON path the caller sent
// ("touser"): it starts at the first segment that is a member of t.
func memberPath(t reflect.Type, path string) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	members := map[string]bool{}
	if t != nil && t.Kind() == reflect.Struct {
		for _, f := range reflect.VisibleFields(t) {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name != "" && name != "-" {
				members[name] = true
			}
		}
	}
	segs := strings.Split(path, ".")
	for i, s := range segs {
		if members[s] {
			segs = segs[i:]
			break
		}
	}
	for i := range segs {
		segs[i] = schemas.ShownKey(segs[i])
	}
	return strings.Join(segs, ".")
}

// jsonType names the JSON type a Go destination expects.
func jsonType(e *json.UnmarshalTypeError) string {
	if e.Type == nil {
		return "value"
	}
	switch e.Type.Kind() {
	case reflect.String:
		return "string"
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Bool:
		return "boolean"
	default:
		return "number"
	}
}
