package console

import (
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/wxgate/wxgate/internal/admin"
	"github.com/wxgate/wxgate/processor"
)

// messagesPage is a search of an app's messages.
type messagesPage struct {
	base
	Filter   *filter
	Statuses []string
	Items    []processor.Message
	Next     string
}

// messages answers GET /console/apps/{appid}/messages: newest first, filtered
// by recipient, template, status and creation time, one page per cursor.
func (c *Console) messages(ctx *gin.Context) error {
	appID := ctx.Param("appid")
	p := &messagesPage{base: c.common(ctx, "Messages", "messages", appID), Statuses: statuses}
	f := newFilter(ctx.Request.URL.Query(), "touser", "template_id", "status", "since", "until", "cursor")
	q := processor.MessageQuery{AppID: appID, ToUser: f.id("touser"), TemplateID: f.id("template_id"), Status: f.status("status"), Page: f.page(p.Zone, "cursor")}
	p.Filter = f
	status := http.StatusOK
	if f.ok() {
		items, next, err := c.svc.Messages(ctx.Request.Context(), q)
		if err != nil {
			return err
		}
		p.Items, p.Next = items, f.next("cursor", next)
	} else {
		status = http.StatusBadRequest
	}
	c.render(ctx, status, "messages", p)
	return nil
}

// step is one entry of a message's timeline.
type step struct {
	processor.StatusChange
	Attempt int
}

// messagePage is one message: its timeline and the data sent.
type messagePage struct {
	base
	M        *processor.Message
	Steps    []step
	Keys     []string
	ErrCode  string
	Resent   bool
	Confirm  string
	Problem  string
	Redrives int
}

// message answers GET /console/apps/{appid}/messages/{id}.
func (c *Console) message(ctx *gin.Context) error {
	return c.renderMessage(ctx, http.StatusOK, "")
}

func (c *Console) renderMessage(ctx *gin.Context, status int, problem string) error {
	appID, id := ctx.Param("appid"), ctx.Param("id")
	if checkID(id) != "" {
		return processor.ErrNotFound
	}
	m, err := c.svc.Message(ctx.Request.Context(), appID, id)
	if err != nil {
		return err
	}
	p := &messagePage{base: c.common(ctx, "Message "+m.ID, "messages", appID), M: m, Confirm: confirmMaySendTwice,
		Problem: problem, Resent: ctx.Query("resent") == "1", Redrives: m.Redrives()}
	attempt := 0
	for _, h := range m.History {
		s := step{StatusChange: h}
		if h.Status == processor.StatusSending {
			attempt++
			s.Attempt = attempt
		}
		p.Steps = append(p.Steps, s)
	}
	for k := range m.Data {
		p.Keys = append(p.Keys, k)
	}
	slices.Sort(p.Keys)
	if m.Attempts > 0 || m.ErrCode != 0 {
		p.ErrCode = strconv.Itoa(m.ErrCode)
	}
	c.render(ctx, status, "message", p)
	return nil
}

// confirmMaySendTwice is the confirmation a resend needs, as in the admin API.
const confirmMaySendTwice = "may_send_twice"

// resend answers POST /console/apps/{appid}/messages/{id}/resend: a message
// whose outcome is unknown is sent again through the admin API's own service
// call, once the operator has confirmed that the user may get it twice.
func (c *Console) resend(ctx *gin.Context) error {
	appID, id := ctx.Param("appid"), ctx.Param("id")
	if err := c.need(ctx, admin.RoleAdmin, appID); err != nil {
		c.record(ctx, "/console/apps/{appid}/messages/{id}/resend", appID, map[string]string{"id": bounded(id)}, http.StatusForbidden)
		return err
	}
	if checkID(id) != "" {
		return processor.ErrNotFound
	}
	if ctx.PostForm("confirm") != confirmMaySendTwice {
		return c.renderMessage(ctx, http.StatusBadRequest,
			"Nothing was sent: tick the box to confirm that the user may receive this message twice.")
	}
	_, err := c.svc.Resend(ctx.Request.Context(), appID, id)
	status := http.StatusSeeOther
	if err != nil {
		status, _ = classify(err)
	}
	c.record(ctx, "/console/apps/{appid}/messages/{id}/resend", appID, map[string]string{"id": bounded(id)}, status)
	if errors.Is(err, processor.ErrNotUnknown) {
		return c.renderMessage(ctx, http.StatusConflict, "Nothing was sent: only a message whose outcome is unknown can be resent.")
	}
	if err != nil {
		return err
	}
	ctx.Redirect(http.StatusSeeOther, prefix+"/apps/"+appID+"/messages/"+id+"?resent=1")
	return nil
}

// bounded cuts an id for the audit log to the bound of a well-formed one.
func bounded(id string) string {
	if len(id) > maxID {
		return id[:maxID]
	}
	return id
}
