package wechat

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/wxgate/wxgate/internal/derrors"
	"github.com/wxgate/wxgate/schemas"
)

// Errcodes WeChat returns that callers branch on.
const (
	// CodeBusy (-1): system busy; retry with back-off.
	CodeBusy = -1
	// CodeInvalidCredential (40001): from an API call, the access token is
	// invalid or not the latest; from a token endpoint, the AppSecret is wrong.
	CodeInvalidCredential = 40001
	// CodeInvalidOpenID (40003): touser is not a valid openid.
	CodeInvalidOpenID = 40003
	// CodeInvalidAppID (40013): the appid is not valid.
	CodeInvalidAppID = 40013
	// CodeInvalidAccessToken (40014): the access token is malformed.
	CodeInvalidAccessToken = 40014
	// CodeInvalidTemplateID (40037): template_id is not one of the app's.
	CodeInvalidTemplateID = 40037
	// CodeIPNotWhitelisted (40164): the caller's IP is not in the app's API IP whitelist.
	CodeIPNotWhitelisted = 40164
	// CodeInvalidPage (41030): page does not exist in the released mini program.
	CodeInvalidPage = 41030
	// CodeAccessTokenExpired (42001): the access token has expired.
	CodeAccessTokenExpired = 42001
	// CodeUserRefused (43101): the user refused or has no one-time consent left.
	CodeUserRefused = 43101
	// CodeAbilityBanned (43107): the account's subscription-message ability is banned.
	CodeAbilityBanned = 43107
	// CodeConcurrentSend (43108): another send to the same user is in progress.
	CodeConcurrentSend = 43108
	// CodeDailyQuota (45009): the API's daily quota is used up.
	CodeDailyQuota = 45009
	// CodeRateLimited (45011): calls too frequent, e.g. two force_refresh calls within 30 s.
	CodeRateLimited = 45011
	// CodeSensitiveContent (45168): the content contains a sensitive word.
	CodeSensitiveContent = 45168
	// CodeInvalidData (47003): template data invalid; errmsg names the field.
	CodeInvalidData = 47003
)

// Operations named in errors: the WeChat API that failed.
const (
	OpSend        = "subscribe/send"
	OpTemplates   = "gettemplate"
	OpStableToken = "stable_token"
	OpToken       = "token"
)

// Sentinel errors.
var (
	// ErrUnknownApp means the appid is not one of the configured apps.
	ErrUnknownApp = errors.New("wechat: unknown appid")
	// ErrInvalidApp is wrapped by configuration errors of NewTokens; the
	// message names the field and never repeats the secret.
	ErrInvalidApp = errors.New("wechat: invalid app configuration")
	// ErrMalformedResponse means WeChat answered with a body that is not the
	// documented JSON (or is over the size limit). Its kind is
	// derrors.Ambiguous: for a send the outcome is unknown and a retry could
	// deliver twice.
	ErrMalformedResponse = fmt.Errorf("wechat: malformed response (%w)", derrors.Ambiguous)
	// ErrTokenUnavailable is wrapped by every error of Tokens.Token and
	// Tokens.Invalidate: no usable access token could be obtained. The cause is
	// wrapped too (an *APIError from the token endpoint, a *NetError, ...).
	ErrTokenUnavailable = errors.New("wechat: access token unavailable")
	// ErrClosed means the Tokens was closed or its context ended.
	ErrClosed = errors.New("wechat: token manager closed")
)

// maxErrmsgBytes bounds how much of WeChat's errmsg an error repeats.
const maxErrmsgBytes = 256

// APIError is a non-zero errcode from WeChat. Msg is WeChat's errmsg, kept
// because it names the offending field for 47003 and the caller's IP for
// 40164; it is bounded and never contains the secret or the token.
type APIError struct {
	// Code is WeChat's errcode.
	Code int
	// Msg is WeChat's errmsg.
	Msg string
	// Op is the API that answered: OpSend, OpTemplates, OpStableToken or OpToken.
	Op string
	// AppID is the app the call was for.
	AppID string
}

// Error describes the failure, with a hint for the token endpoints' errcodes,
// whose causes are configuration problems an operator has to fix.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("wechat ")
	b.WriteString(e.Op)
	if e.AppID != "" {
		b.WriteString(" for ")
		b.WriteString(e.AppID)
	}
	b.WriteString(": errcode ")
	b.WriteString(strconv.Itoa(e.Code))
	if e.Msg != "" {
		b.WriteString(": ")
		b.WriteString(e.Msg)
	}
	if hint := e.hint(); hint != "" {
		b.WriteString(" (")
		b.WriteString(hint)
		b.WriteString(")")
	}
	return b.String()
}

func (e *APIError) hint() string {
	if !e.tokenEndpoint() {
		return ""
	}
	switch e.Code {
	case CodeBusy:
		return "WeChat busy; retrying after a back-off"
	case CodeInvalidCredential:
		return "the app's secret is wrong"
	case CodeInvalidAppID:
		return "the appid is not valid"
	case CodeIPNotWhitelisted:
		return "this server's IP is not in the app's API IP whitelist"
	case CodeDailyQuota:
		return "the daily access-token quota is used up"
	case CodeRateLimited:
		return "token calls too frequent"
	}
	return ""
}

func (e *APIError) tokenEndpoint() bool { return e.Op == OpStableToken || e.Op == OpToken }

// Is gives the error its kind (internal/derrors) from what its errcode
// means: busy, a refused token or the daily quota is Unavailable (later may
// work), a wrong request Invalid, everything else Permanent. From a token
// endpoint every errcode but busy is a configuration problem: Permanent.
func (e *APIError) Is(target error) bool {
	return target == e.kind()
}

func (e *APIError) kind() error {
	known, ok := schemas.LookupErrcode(e.Code)
	switch {
	case !ok:
		return derrors.Permanent
	case known.Means == schemas.MeansBusy:
		return derrors.Unavailable
	case e.tokenEndpoint():
		return derrors.Permanent
	case known.Means == schemas.MeansTokenRefused, known.Means == schemas.MeansQuota:
		return derrors.Unavailable
	case known.Means == schemas.MeansBadRequest:
		return derrors.Invalid
	}
	return derrors.Permanent
}

// NetError is an HTTP exchange with WeChat that got no answer: a refused or
// broken connection, a timeout, a cancelled context. Unlike net/http's
// url.Error its message never contains the request URL, which holds the
// access token or the AppSecret.
type NetError struct {
	// Op is the API that was called.
	Op string
	// Err is the cause, without the URL.
	Err error
	// Sent is true when the whole request had been written: WeChat may have
	// acted on it and the answer was lost.
	Sent bool
}

func (e *NetError) Error() string {
	if e.Sent {
		return "wechat " + e.Op + ": the request was sent and no answer read: " + e.Err.Error()
	}
	return "wechat " + e.Op + ": " + e.Err.Error()
}

// Is gives the error its kind: a send whose request was written is Ambiguous
// (WeChat may have accepted it), anything else Unavailable.
func (e *NetError) Is(target error) bool {
	if e.Sent && e.Op == OpSend {
		return target == derrors.Ambiguous
	}
	return target == derrors.Unavailable
}

// Unwrap returns the cause, so errors.Is(err, context.DeadlineExceeded) works.
func (e *NetError) Unwrap() error { return e.Err }

// HTTPStatusError is an answer with a non-2xx status. WeChat reports its own
// errors with status 200, so this comes from a proxy or an outage.
type HTTPStatusError struct {
	Op         string
	StatusCode int
}

func (e *HTTPStatusError) Error() string {
	return fmt.Sprintf("wechat %s: HTTP status %d", e.Op, e.StatusCode)
}

// Is gives the error its kind: 5xx and 429 are Unavailable, any other status Permanent.
func (e *HTTPStatusError) Is(target error) bool {
	if e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests {
		return target == derrors.Unavailable
	}
	return target == derrors.Permanent
}

// IsTokenError reports whether err is WeChat rejecting the access token of an
// API call (40001, 40014, 42001): the caller should Invalidate that token and
// retry once with a fresh one. Errcodes from the token endpoints themselves
// (where 40001 means a wrong AppSecret) are not token errors.
func IsTokenError(err error) bool {
	var e *APIError
	if !errors.As(err, &e) || e.tokenEndpoint() {
		return false
	}
	return isTokenCode(e.Code)
}

func isTokenCode(code int) bool {
	return code == CodeInvalidCredential || code == CodeInvalidAccessToken || code == CodeAccessTokenExpired
}

// IsRetryable reports whether the same call may succeed later: WeChat busy
// (-1), a concurrent send to the same user (43108), calls too frequent (45011,
// from the token endpoints), a network failure or timeout, or an HTTP 5xx or
// 429 status. A call cut short by cancellation or by the token manager
// shutting down is retryable too: it did not fail, it was not finished.
func IsRetryable(err error) bool {
	if err == nil {
		return false
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		known, _ := schemas.LookupErrcode(apiErr.Code)
		return known.Means == schemas.MeansBusy
	}
	var netErr *NetError
	if errors.As(err, &netErr) {
		return true
	}
	var statusErr *HTTPStatusError
	if errors.As(err, &statusErr) {
		return errors.Is(statusErr, derrors.Unavailable)
	}
	var timeout net.Error
	if errors.As(err, &timeout) && timeout.Timeout() {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, ErrClosed)
}

// boundedMsg cuts WeChat's errmsg to maxErrmsgBytes on a rune boundary and
// removes the given secrets, in case an answer ever echoes one.
func boundedMsg(msg string, secrets ...string) string {
	return schemas.Truncate(redact(msg, secrets...), maxErrmsgBytes)
}

// redact replaces every non-empty secret in s.
func redact(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	return s
}

// ErrCode returns WeChat's errcode; with ErrMsg it lets callers that do not import
// this package act on the errcode.
func (e *APIError) ErrCode() int { return e.Code }

// ErrMsg returns WeChat's errmsg (bounded, scrubbed of secrets).
func (e *APIError) ErrMsg() string { return e.Msg }
