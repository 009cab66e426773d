package console

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/wxgate/wxgate/processor"
)

// userPage is one user of an app: the consent ledger, their messages and
// the callbacks received about them.
type userPage struct {
	base
	OpenID     string
	Consents   []consentView
	Messages   []processor.Message
	NextMsgs   string
	Events     []processor.EventRecord
	NextEvents string
}

// consentView is one ledger entry as the page shows it.
type consentView struct {
	processor.Consent
	KindPending bool
}

// userLookup answers GET /console/apps/{appid}/users?openid=: the form that
// finds a user.
func (c *Console) userLookup(ctx *gin.Context) error {
	openID := strings.TrimSpace(ctx.Query("openid"))
	if openID != "" && checkID(openID) == "" {
		ctx.Redirect(http.StatusSeeOther, prefix+"/apps/"+ctx.Param("appid")+"/users/"+url.PathEscape(openID))
		return nil
	}
	p := &userPage{base: c.common(ctx, "Users", "users", ctx.Param("appid"))}
	status := http.StatusOK
	if openID != "" {
		status = http.StatusBadRequest
	}
	c.render(ctx, status, "user", p)
	return nil
}

// user answers GET /console/apps/{appid}/users/{openid}.
func (c *Console) user(ctx *gin.Context) error {
	appID, openID := ctx.Param("appid"), ctx.Param("openid")
	if checkID(openID) != "" {
		return processor.ErrNotFound
	}
	p := &userPage{base: c.common(ctx, "User "+openID, "users", appID), OpenID: openID}
	f := newFilter(ctx.Request.URL.Query(), "mcursor", "ecursor")
	mq := processor.MessageQuery{AppID: appID, ToUser: openID, Page: processor.Page{Limit: pageSize, Cursor: f.cursor("mcursor")}}
	eq := processor.EventQuery{AppID: appID, OpenID: openID, Page: processor.Page{Limit: pageSize, Cursor: f.cursor("ecursor")}}
	if !f.ok() {
		return processor.ErrBadCursor
	}
	rctx := ctx.Request.Context()
	consents, err := c.svc.Consents(rctx, appID, openID)
	if err != nil {
		return err
	}
	for _, cs := range consents {
		v := consentView{Consent: cs}
		if v.Kind == "" {
			v.Kind, v.KindPending = processor.KindOneTime, true
		}
		slices.Reverse(v.History) // newest first
		p.Consents = append(p.Consents, v)
	}
	slices.SortFunc(p.Consents, func(a, b consentView) int { return strings.Compare(a.TemplateID, b.TemplateID) })
	var next string
	if p.Messages, next, err = c.svc.Messages(rctx, mq); err != nil {
		return err
	}
	p.NextMsgs = f.next("mcursor", next)
	if p.Events, next, err = c.svc.Events(rctx, eq); err != nil {
		return err
	}
	p.NextEvents = f.next("ecursor", next)
	c.render(ctx, http.StatusOK, "user", p)
	return nil
}
