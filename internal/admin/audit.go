package admin

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
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
	dq := deadLetterQuery(q)
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

// replayEvent answers POST /v1/apps/{appid}/events/{id}/replay: the event is
// applied again; the answer says whether that changed anything.
func (a *API) replayEvent(c *gin.Context) error {
	appID, err := a.app(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	if reason, _ := checkID(id); reason != "" {
		return processor.ErrNotFound
	}
	res, err := a.svc.ReplayEvent(c.Request.Context(), appID, id)
	if err != nil {
		return err
	}
	c.JSON(replayStatus(res), res)
	return nil
}

// replayEvents answers POST /v1/apps/{appid}/events/replay?since=&until=:
// every event of the app received in [since, until) is applied again, oldest
// first; the answer counts the ones applied and the no-ops.
func (a *API) replayEvents(c *gin.Context) error {
	appID, err := a.app(c)
	if err != nil {
		return err
	}
	q := newQuery(c.Request.URL)
	since, until := q.time("since"), q.time("until")
	if since.IsZero() {
		q.fail("since", "required", "is required: the start of the time range to replay")
	}
	if until.IsZero() {
		q.fail("until", "required", "is required: the end of the time range to replay")
	} else if !until.After(since) {
		q.fail("until", "gtfield", "must be after since")
	}
	if err := q.err(); err != nil {
		return err
	}
	res, err := a.svc.ReplayEvents(c.Request.Context(), appID, since, until)
	if err != nil {
		return err
	}
	c.JSON(replayStatus(res), res)
	return nil
}

// replayStatus is 202 when some replayed events are still on their way to
// their processor, 200 when every one was applied.
func replayStatus(res processor.ReplayResult) int {
	if res.Queued > 0 {
		return http.StatusAccepted
	}
	return http.StatusOK
}

// deadLetterQuery reads the dead-letter filters: appid, consumer, errcode
// (the cause WeChat answered), since and until, limit and cursor.
func deadLetterQuery(q *query) processor.DeadLetterQuery {
	return processor.DeadLetterQuery{AppID: q.id("appid"), Consumer: q.id("consumer"), ErrCode: q.errcode("errcode"), Page: q.page()}
}

// bulkQuery reads the filter of a bulk redrive or delete, which must narrow
// the dead letters down or say all=true: a bare request never acts on all.
func bulkQuery(c *gin.Context) (processor.DeadLetterQuery, error) {
	q := newQuery(c.Request.URL)
	dq := deadLetterQuery(q)
	if err := q.err(); err != nil {
		return dq, err
	}
	narrowed := dq.AppID != "" || dq.Consumer != "" || dq.ErrCode != nil || !dq.Since.IsZero() || !dq.Until.IsZero()
	if !narrowed && c.Query("all") != "true" {
		return dq, invalidQuery(schemas.FieldError{Field: "all", Rule: "required_without",
			Message: "give a filter (appid, consumer, errcode, since, until) or all=true"})
	}
	return dq, nil
}

// redriveMatching answers POST /v1/dlq/redrive?filters: every matching dead
// letter is redriven; the answer counts them.
func (a *API) redriveMatching(c *gin.Context) error {
	dq, err := bulkQuery(c)
	if err != nil {
		return err
	}
	n, err := a.svc.RedriveMatching(c.Request.Context(), dq)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"redriven": n})
	return nil
}

// deleteMatching answers DELETE /v1/dlq?filters: every matching dead letter
// is deleted; the answer counts them.
func (a *API) deleteMatching(c *gin.Context) error {
	dq, err := bulkQuery(c)
	if err != nil {
		return err
	}
	n, err := a.svc.DeleteMatching(c.Request.Context(), dq)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, gin.H{"deleted": n})
	return nil
}

// deleteDeadLetter answers DELETE /v1/dlq/{id}.
func (a *API) deleteDeadLetter(c *gin.Context) error {
	id := c.Param("id")
	if reason, _ := checkID(id); reason != "" {
		return processor.ErrNotFound
	}
	if err := a.svc.DeleteDeadLetter(c.Request.Context(), id); err != nil {
		return err
	}
	c.Status(http.StatusNoContent)
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
