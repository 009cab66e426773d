package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

const (
	grantType = "client_credential"
	// maxTokenChars is the storage WeChat tells developers to reserve for a token.
	maxTokenChars = 512
	// maxExpiresIn bounds expires_in; WeChat's tokens live two hours, a day is
	// generous and keeps a garbled answer from pinning a token for years.
	maxExpiresIn = 24 * 60 * 60
)

// fetched is an access token as a token endpoint returned it.
type fetched struct {
	token     string
	expiresIn time.Duration
}

// stableTokenRequest is the body of POST /cgi-bin/stable_token.
type stableTokenRequest struct {
	GrantType    string `json:"grant_type"`
	AppID        string `json:"appid"`
	Secret       string `json:"secret"`
	ForceRefresh bool   `json:"force_refresh"`
}

// fetchToken calls the app's token endpoint once. force applies to
// stable_token only.
func fetchToken(ctx context.Context, hc *http.Client, app App, force bool) (fetched, error) {
	var r request
	switch app.TokenAPI {
	case TokenAPIPlain:
		r = request{
			op: OpToken, method: http.MethodGet, base: app.APIBase, path: "/cgi-bin/token",
			query: url.Values{"grant_type": {grantType}, "appid": {app.AppID}, "secret": {app.Secret}},
		}
	default:
		body, err := json.Marshal(stableTokenRequest{GrantType: grantType, AppID: app.AppID, Secret: app.Secret, ForceRefresh: force})
		if err != nil {
			return fetched{}, fmt.Errorf("wechat %s for %s: encoding request: %w", OpStableToken, app.AppID, err)
		}
		r = request{op: OpStableToken, method: http.MethodPost, base: app.APIBase, path: "/cgi-bin/stable_token", body: body}
	}
	r.secrets = []string{app.Secret}
	data, err := do(ctx, hc, r)
	if err != nil {
		return fetched{}, err
	}
	return decodeToken(data, r.op, app.AppID, app.Secret)
}

// tokenResponse is a token endpoint's answer: a token or an errcode.
type tokenResponse struct {
	AccessToken string      `json:"access_token"`
	ExpiresIn   json.Number `json:"expires_in"`
	Errcode     json.Number `json:"errcode"`
	Errmsg      string      `json:"errmsg"`
}

// decodeToken parses a token endpoint's answer. A non-zero errcode returns an
// *APIError; anything else that is not a usable token wraps ErrMalformedResponse.
// Error texts never contain the token or the given secrets.
func decodeToken(data []byte, op, appID string, secrets ...string) (fetched, error) {
	var resp tokenResponse
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&resp); err != nil {
		return fetched{}, fmt.Errorf("%w: %s for %s: not a JSON object", ErrMalformedResponse, op, appID)
	}
	if resp.Errcode != "" {
		code, err := resp.Errcode.Int64()
		if err != nil || code != int64(int32(code)) {
			return fetched{}, fmt.Errorf("%w: %s for %s: errcode is not an integer", ErrMalformedResponse, op, appID)
		}
		if code != 0 {
			return fetched{}, &APIError{Code: int(code), Msg: boundedMsg(redact(resp.Errmsg, secrets...), resp.AccessToken), Op: op, AppID: appID}
		}
	}
	if resp.AccessToken == "" || len(resp.AccessToken) > maxTokenChars || !tokenChars(resp.AccessToken) {
		return fetched{}, fmt.Errorf("%w: %s for %s: access_token missing or malformed", ErrMalformedResponse, op, appID)
	}
	secs, err := resp.ExpiresIn.Int64()
	if err != nil || secs <= 0 || secs > maxExpiresIn {
		return fetched{}, fmt.Errorf("%w: %s for %s: expires_in must be 1 to %d seconds", ErrMalformedResponse, op, appID, maxExpiresIn)
	}
	return fetched{token: resp.AccessToken, expiresIn: time.Duration(secs) * time.Second}, nil
}

// tokenChars reports whether a token is printable ASCII without spaces, so it
// travels in a query string and a log line cannot be forged with it.
func tokenChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
