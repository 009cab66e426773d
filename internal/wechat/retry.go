package wechat

import (
	"errors"

	"github.com/wxgate/wxgate/internal/derrors"
	"github.com/wxgate/wxgate/schemas"
)

// SendOutcome is what an error from Client.Send means for the message being
// sent. SendOutcomeOf is the one retry policy for subscribeMessage.send; the
// errcodes it reads are the table in schemas (LookupErrcode).
type SendOutcome int

// What a send's error means.
const (
	// SendRetry: WeChat did not accept the send and may later (busy, a
	// concurrent send to the user, a refused token, no token, the network
	// before the request was written, HTTP 5xx or 429). Retry with backoff.
	SendRetry SendOutcome = iota + 1
	// SendPause: the app's daily quota is used up (45009); retry after it resets.
	SendPause
	// SendInvalid: WeChat refused the request itself (openid, template, page,
	// data); it never succeeds and the user's consent was not used.
	SendInvalid
	// SendNoConsent: the user has no consent left (43101).
	SendNoConsent
	// SendBanned: the app's subscription-message ability is banned (43107).
	SendBanned
	// SendUnknown: WeChat may or may not have accepted the send (the answer was
	// lost or could not be read). Never retry blindly: it could deliver twice.
	SendUnknown
	// SendFailed: any other failure; permanent.
	SendFailed
)

// SendOutcomeOf classifies an error returned by Client.Send.
func SendOutcomeOf(err error) SendOutcome {
	var api *APIError
	if errors.As(err, &api) && api.Op == OpSend {
		known, ok := schemas.LookupErrcode(api.Code)
		if !ok {
			return SendFailed
		}
		switch known.Means {
		case schemas.MeansBusy, schemas.MeansTokenRefused:
			return SendRetry
		case schemas.MeansBadRequest:
			return SendInvalid
		case schemas.MeansNoConsent:
			return SendNoConsent
		case schemas.MeansQuota:
			return SendPause
		case schemas.MeansBanned:
			return SendBanned
		}
		return SendFailed
	}
	switch {
	case errors.Is(err, derrors.Ambiguous):
		return SendUnknown
	case errors.Is(err, ErrTokenUnavailable), errors.Is(err, derrors.Unavailable), IsRetryable(err):
		// No token yet (the cause may be a configuration error an operator
		// fixes), or the call never reached WeChat.
		return SendRetry
	}
	return SendFailed
}
