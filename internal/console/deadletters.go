package console

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/wxgate/wxgate/internal/admin"
	"github.com/wxgate/wxgate/processor"
)

// Dead letters are shown per app, to anyone who may read the app; redriving
// them needs admin on the app. (The admin API lists and redrives them across
// apps, with admin on all apps.)

// deadLettersPage lists an app's dead letters.
type deadLettersPage struct {
	base
	Filter *filter
	Items  []processor.DeadLetter
	Next   string
	Query  string
	Done   string
}

// deadLetterFilter reads the dead-letter filters: consumer, errcode, since,
// until and the cursor.
func deadLetterFilter(ctx *gin.Context, appID string, p *base) (*filter, processor.DeadLetterQuery) {
	f := newFilter(ctx.Request.URL.Query(), "consumer", "errcode", "since", "until", "cursor")
	q := processor.DeadLetterQuery{AppID: appID, Consumer: f.id("consumer"), Page: f.page(p.Zone, "cursor")}
	if v := f.Get("errcode"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < -1 || n > 999999 {
			f.Errors["errcode"] = "A WeChat errcode: a whole number from -1 to 999999."
		} else {
			q.ErrCode = &n
		}
	}
	return f, q
}

// deadLetters answers GET /console/apps/{appid}/dlq.
func (c *Console) deadLetters(ctx *gin.Context) error {
	appID := ctx.Param("appid")
	p := &deadLettersPage{base: c.common(ctx, "Dead letters", "dlq", appID), Done: ctx.Query("redriven")}
	f, q := deadLetterFilter(ctx, appID, &p.base)
	p.Filter = f
	status := http.StatusOK
	if f.ok() {
		items, next, err := c.svc.DeadLetters(ctx.Request.Context(), q)
		if err != nil {
			return err
		}
		p.Items, p.Next = items, f.next("cursor", next)
		filters := *f
		filters.Values = cloneWithout(f.Values, "cursor")
		p.Query = filters.Values.Encode()
	} else {
		status = http.StatusBadRequest
	}
	c.render(ctx, status, "deadletters", p)
	return nil
}

// confirmPage asks before a redrive.
type confirmPage struct {
	base
	// One is the dead letter of a single redrive; nil for a bulk one.
	One    *processor.DeadLetter
	Filter *filter
	Query  string
}

// deadLetterOf reads a dead letter of the app in the path; one of another
// app is not found, so that a token scoped to one app cannot act on another's.
func (c *Console) deadLetterOf(ctx *gin.Context) (*processor.DeadLetter, error) {
	id := ctx.Param("id")
	if checkID(id) != "" {
		return nil, processor.ErrNotFound
	}
	d, err := c.svc.DeadLetter(ctx.Request.Context(), id)
	if err != nil {
		return nil, err
	}
	if d.AppID != ctx.Param("appid") {
		return nil, processor.ErrNotFound
	}
	return d, nil
}

// confirmRedrive answers GET /console/apps/{appid}/dlq/{id}/redrive: the
// confirmation of one redrive.
func (c *Console) confirmRedrive(ctx *gin.Context) error {
	appID := ctx.Param("appid")
	if err := c.need(ctx, admin.RoleAdmin, appID); err != nil {
		return err
	}
	d, err := c.deadLetterOf(ctx)
	if err != nil {
		return err
	}
	c.render(ctx, http.StatusOK, "confirm", &confirmPage{base: c.common(ctx, "Redrive a dead letter", "dlq", appID), One: d})
	return nil
}

// redrive answers POST /console/apps/{appid}/dlq/{id}/redrive.
func (c *Console) redrive(ctx *gin.Context) error {
	appID, id := ctx.Param("appid"), ctx.Param("id")
	const route = "/console/apps/{appid}/dlq/{id}/redrive"
	if err := c.need(ctx, admin.RoleAdmin, appID); err != nil {
		c.record(ctx, route, appID, map[string]string{"id": bounded(id)}, http.StatusForbidden)
		return err
	}
	if _, err := c.deadLetterOf(ctx); err != nil {
		return err
	}
	_, err := c.svc.Redrive(ctx.Request.Context(), id)
	status := http.StatusSeeOther
	if err != nil {
		status, _ = classify(err)
	}
	c.record(ctx, route, appID, map[string]string{"id": bounded(id)}, status)
	if err != nil {
		return err
	}
	ctx.Redirect(http.StatusSeeOther, prefix+"/apps/"+appID+"/dlq?redriven=1")
	return nil
}

// confirmRedriveMatching answers GET /console/apps/{appid}/dlq-redrive?filters:
// the confirmation of a redrive of every dead letter the filters match.
func (c *Console) confirmRedriveMatching(ctx *gin.Context) error {
	appID := ctx.Param("appid")
	if err := c.need(ctx, admin.RoleAdmin, appID); err != nil {
		return err
	}
	p := &confirmPage{base: c.common(ctx, "Redrive dead letters", "dlq", appID)}
	f, _ := deadLetterFilter(ctx, appID, &p.base)
	if !f.ok() {
		return processor.ErrBadCursor
	}
	p.Filter = f
	p.Query = cloneWithout(f.Values, "cursor").Encode()
	c.render(ctx, http.StatusOK, "confirm", p)
	return nil
}

// redriveMatching answers POST /console/apps/{appid}/dlq-redrive?filters.
func (c *Console) redriveMatching(ctx *gin.Context) error {
	appID := ctx.Param("appid")
	const route = "/console/apps/{appid}/dlq-redrive"
	if err := c.need(ctx, admin.RoleAdmin, appID); err != nil {
		c.record(ctx, route, appID, nil, http.StatusForbidden)
		return err
	}
	var b base
	b.Zone = c.zoneOf(ctx)
	f, q := deadLetterFilter(ctx, appID, &b)
	if !f.ok() {
		return errBadForm
	}
	n, err := c.svc.RedriveMatching(ctx.Request.Context(), q)
	status := http.StatusSeeOther
	if err != nil {
		status, _ = classify(err)
	}
	c.record(ctx, route, appID, map[string]string{"redriven": strconv.Itoa(n)}, status)
	if err != nil {
		return err
	}
	ctx.Redirect(http.StatusSeeOther, prefix+"/apps/"+appID+"/dlq?redriven="+strconv.Itoa(n))
	return nil
}
