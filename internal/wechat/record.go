package wechat

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// maxRecordBytes bounds a record read from the bucket: a token of at most 512
// characters, a lease and a failure fit in well under a kilobyte.
const maxRecordBytes = 4 << 10

// record is the value stored under an app's key in the token bucket.
type record struct {
	// AccessToken is the current token; empty before the first fetch.
	AccessToken string `json:"access_token,omitempty"`
	// ExpiresAt is when WeChat stops accepting the token.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// RefreshAt is when the token is due for refresh.
	RefreshAt time.Time `json:"refresh_at,omitzero"`
	// Generation counts the distinct tokens stored for the app.
	Generation uint64 `json:"generation"`
	// Lease, while set and not lapsed, reserves the next fetch for its holder.
	Lease *lease `json:"lease,omitempty"`
	// Failure describes the last failed fetch until a fetch succeeds.
	Failure *failure `json:"failure,omitempty"`
}

// usable reports whether the record holds a token WeChat still accepts at now.
func (r record) usable(now time.Time) bool {
	return r.AccessToken != "" && now.Before(r.ExpiresAt)
}

// lease names the instance fetching the app's token.
type lease struct {
	Holder string    `json:"holder"`
	Until  time.Time `json:"until"`
}

// Kinds of failure, so every instance can rebuild the error the fetching
// instance saw.
const (
	failAPI       = "api"
	failNet       = "net"
	failStatus    = "status"
	failMalformed = "malformed"
	failOther     = "other"
)

// failure is a failed fetch shared through the bucket. Msg never holds the
// secret or a token: it is built from errors that never do.
type failure struct {
	Op      string    `json:"op"`
	Kind    string    `json:"kind"`
	Code    int       `json:"code,omitempty"` // errcode, or HTTP status for failStatus
	Msg     string    `json:"msg,omitempty"`
	Count   int       `json:"count"`
	RetryAt time.Time `json:"retry_at"`
}

// newFailure records err, counting on from prev, with a back-off that
// doubles per consecutive failure.
func newFailure(err error, op string, prev *failure, now time.Time) *failure {
	f := &failure{Op: op, Kind: failOther, Count: 1}
	if prev != nil {
		f.Count = prev.Count + 1
	}
	var (
		apiErr    *APIError
		netErr    *NetError
		statusErr *HTTPStatusError
	)
	switch {
	case errors.As(err, &apiErr):
		f.Kind, f.Op, f.Code, f.Msg = failAPI, apiErr.Op, apiErr.Code, apiErr.Msg
	case errors.As(err, &netErr):
		f.Kind, f.Op, f.Msg = failNet, netErr.Op, netErr.Err.Error()
	case errors.As(err, &statusErr):
		f.Kind, f.Op, f.Code = failStatus, statusErr.Op, statusErr.StatusCode
	case errors.Is(err, ErrMalformedResponse):
		f.Kind, f.Msg = failMalformed, err.Error()
	default:
		f.Msg = err.Error()
	}
	f.Msg = boundedMsg(f.Msg)
	f.RetryAt = now.Add(backoff(f.Count))
	return f
}

// Back-off after failed fetches: long enough that a fleet of instances cannot
// hammer a busy WeChat or burn the daily quota, short enough that a fixed
// configuration (a whitelisted IP, a corrected secret) is picked up within a minute.
const (
	minBackoff = time.Second
	maxBackoff = time.Minute
)

func backoff(count int) time.Duration {
	d := minBackoff
	for i := 1; i < count && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// err rebuilds the error the fetching instance saw, so that IsRetryable and
// errors.As work the same on every instance.
func (f *failure) err(appID string) error {
	switch f.Kind {
	case failAPI:
		return &APIError{Code: f.Code, Msg: f.Msg, Op: f.Op, AppID: appID}
	case failNet:
		return &NetError{Op: f.Op, Err: errors.New(f.Msg)}
	case failStatus:
		return &HTTPStatusError{Op: f.Op, StatusCode: f.Code}
	case failMalformed:
		return fmt.Errorf("%w (last fetch for %s)", ErrMalformedResponse, appID)
	}
	return fmt.Errorf("wechat %s for %s: last fetch failed: %s", f.Op, appID, f.Msg)
}

func encodeRecord(r record) ([]byte, error) { return json.Marshal(r) }

// decodeRecord parses a bucket value, bounded.
func decodeRecord(data []byte) (record, error) {
	var r record
	if len(data) > maxRecordBytes {
		return r, fmt.Errorf("token record of %d bytes exceeds %d", len(data), maxRecordBytes)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return record{}, fmt.Errorf("token record is not valid JSON: %w", jsonDetail(err))
	}
	if len(r.AccessToken) > maxTokenChars || !tokenChars(r.AccessToken) {
		return record{}, errors.New("token record holds a malformed access_token")
	}
	return r, nil
}

// jsonDetail drops the offending input from a JSON error, which could be part
// of a token.
func jsonDetail(err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Errorf("syntax error at offset %d", syn.Offset)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return fmt.Errorf("field %q has the wrong type", typ.Field)
	}
	return errors.New("malformed")
}
