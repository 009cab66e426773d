package admin

import (
	"crypto/rand"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
)

// consentReport is the body of POST /v1/apps/{appid}/consents: the results of
// one wx.requestSubscribeMessage call, as the mini program's backend received them.
type consentReport struct {
	OpenID string `json:"openid" validate:"required,max=128,printascii"`
	// Results maps each template id to accept, reject, ban or filter.
	Results map[string]string `json:"results" validate:"required,min=1,max=64,dive,keys,required,max=128,printascii,endkeys,oneof=accept reject ban filter"`
	// RequestID identifies the call; the Idempotency-Key header may carry it instead.
	RequestID string `json:"request_id" validate:"omitempty,max=128,printascii"`
}

// getConsents answers GET /v1/apps/{appid}/consents/{openid}. A user never seen
// has an empty ledger, not a 404.
func (a *API) getConsents(c *gin.Context) error {
	appID, err := a.app(c)
	if err != nil {
		return err
	}
	openID := c.Param("openid")
	if reason, rule := checkID(openID); reason != "" {
		return invalidRequest(schemas.FieldError{Field: "openid", Rule: rule, Message: "openid " + reason})
	}
	consents, err := a.svc.Consents(c.Request.Context(), appID, openID)
	if err != nil {
		return err
	}
	c.JSON(http.StatusOK, newLedger(appID, openID, consents))
	return nil
}

// reportConsents answers POST /v1/apps/{appid}/consents with the ledger entries
// the report changed, once the processor has applied it, or 202 when it is
// stored and not applied within a few seconds.
//
// The request id (request_id in the body, or the Idempotency-Key header) makes
// the report safe to retry: the same id reported again changes nothing. Without
// either, the API picks a random id, so a retried POST counts the popup again;
// the answer carries the id to retry with.
func (a *API) reportConsents(c *gin.Context) error {
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
	var r consentReport
	if err := decodeJSON(body, &r); err != nil {
		return err
	}
	if err := a.check(&r); err != nil {
		return err
	}
	switch {
	case key != "" && r.RequestID != "" && key != r.RequestID:
		return invalidRequest(schemas.FieldError{Field: "request_id", Rule: "eqfield",
			Message: "request_id and the " + headerIdempotencyKey + " header differ; give one of them"})
	case r.RequestID == "":
		r.RequestID = key
	}
	if r.RequestID == "" {
		r.RequestID = "api-" + rand.Text()
	}
	auditTarget(c, targetOpenID, r.OpenID)
	auditTarget(c, targetRequestID, r.RequestID)
	consents, err := a.svc.ReportConsent(c.Request.Context(), appID, r.OpenID, r.RequestID, r.Results)
	if errors.Is(err, processor.ErrReportQueued) {
		// Stored on the stream, not applied yet: it will be, in order with the
		// user's other changes.
		c.JSON(http.StatusAccepted, gin.H{"request_id": r.RequestID, "status": "queued"})
		return nil
	}
	if err != nil {
		return err
	}
	l := newLedger(appID, r.OpenID, consents)
	l.RequestID = r.RequestID
	c.JSON(http.StatusOK, l)
	return nil
}
