package admin

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/wxgate/wxgate/processor"
)

// listEvents answers GET /v1/apps/{appid}/events: received callback events,
// newest first.
func (a *API) listEvents(c *gin.Context) error {
	appID, err := a.app(c)
	if err != nil {
		return err
	}
	q := newQuery(c.Request.URL)
	eq := processor.EventQuery{AppID: appID, OpenID: q.id("openid"), Event: q.id("event"), Page: q.page()}
	if err := q.err(); err != nil {
		return err
	}
	evs, next, err := a.svc.Events(c.Request.Context(), eq)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, newList(evs, next, viewEvent))
	return nil
}

// listDeadLetters answers GET /v1/dlq, newest first. The appid filter is not
// limited to the configured apps: a message on a subject of an app removed
// from the configuration still shows.
func (a *API) listDeadLetters(c *gin.Context) error {
	q := newQuery(c.Request.URL)
	dq := processor.DeadLetterQuery{AppID: q.id("appid"), Consumer: q.id("consumer"), Page: q.page()}
	if err := q.err(); err != nil {
		return err
	}
	dls, next, err := a.svc.DeadLetters(c.Request.Context(), dq)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, newList(dls, next, viewDeadLetter))
	return nil
}

// redrive answers POST /v1/dlq/{id}/redrive: the dead letter's message goes back
// on its subject, and the answer is the dead letter with its redrive counted.
func (a *API) redrive(c *gin.Context) error {
	id := c.Param("id")
	if reason, _ := checkID(id); reason != "" {
		return processor.ErrNotFound // no dead letter has such an id
	}
	d, err := a.svc.Redrive(c.Request.Context(), id)
	if err != nil {
		return err
	}
	auditApp(c, d.AppID)
	c.JSON(http.StatusAccepted, viewDeadLetter(d))
	return nil
}
