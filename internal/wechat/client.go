package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/wxgate/wxgate/schemas"
)

// maxMsgIDChars bounds a msgid; WeChat's fit in 20 digits.
const maxMsgIDChars = 32

// Client calls WeChat's API for the configured apps with access tokens from a
// Tokens. It is safe for concurrent use.
type Client struct {
	apps   map[string]App
	tokens *Tokens
	hc     *http.Client
}

// NewClient returns a Client for apps. Apps that fail the checks of NewTokens
// are left out (calls for them return ErrUnknownApp); pass the same apps to
// both. A nil httpClient uses a default client; every call is bounded by
// CallTimeout whatever the client's own timeout.
func NewClient(apps []App, tokens *Tokens, httpClient *http.Client) *Client {
	c := &Client{apps: make(map[string]App, len(apps)), tokens: tokens, hc: newHTTPClient(httpClient)}
	for _, a := range apps {
		if n, err := a.normalize(); err == nil {
			c.apps[n.AppID] = n
		}
	}
	return c
}

// Send calls subscribeMessage.send (POST /cgi-bin/message/subscribe/send)
// with body, the JSON that schemas.SendRequest.WeChatBody produces, and returns
// WeChat's msgid as a decimal string ("" when WeChat sends none). A token
// errcode invalidates the token that failed and retries once with a fresh
// one; any other errcode returns an *APIError. Use IsTokenError, IsRetryable
// and the Code constants to classify errors.
func (c *Client) Send(ctx context.Context, appID string, body []byte) (string, error) {
	app, ok := c.apps[appID]
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrUnknownApp, truncate(appID, maxAppIDBytes))
	}
	if len(body) == 0 || len(body) > maxRequestBody {
		return "", fmt.Errorf("wechat %s for %s: body must be 1 to %d bytes", OpSend, appID, maxRequestBody)
	}
	var msgID string
	err := c.withToken(ctx, app, func(token string) error {
		data, err := do(ctx, c.hc, request{
			op: OpSend, method: http.MethodPost, base: app.APIBase, path: "/cgi-bin/message/subscribe/send",
			query: url.Values{"access_token": {token}}, body: body, secrets: []string{token, app.Secret},
		})
		if err != nil {
			return err
		}
		msgID, err = decodeSend(data, appID, token)
		return err
	})
	return msgID, err
}

// Templates calls GET /wxaapi/newtmpl/gettemplate and returns the app's
// private templates as schemas.ParseTemplates reads them. Token errcodes are
// handled as in Send.
func (c *Client) Templates(ctx context.Context, appID string) ([]schemas.Template, error) {
	app, ok := c.apps[appID]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownApp, truncate(appID, maxAppIDBytes))
	}
	var out []schemas.Template
	err := c.withToken(ctx, app, func(token string) error {
		data, err := do(ctx, c.hc, request{
			op: OpTemplates, method: http.MethodGet, base: app.APIBase, path: "/wxaapi/newtmpl/gettemplate",
			query: url.Values{"access_token": {token}}, secrets: []string{token, app.Secret},
		})
		if err != nil {
			return err
		}
		// The errcode is read first so token errors get the same handling as in Send.
		if _, err := decodeEnvelope(data, OpTemplates, appID, token); err != nil {
			return err
		}
		out, err = schemas.ParseTemplates(data)
		if err != nil {
			return fmt.Errorf("wechat %s for %s: %w", OpTemplates, appID, err)
		}
		return nil
	})
	return out, err
}

// withToken runs call with the app's token; on a token errcode it invalidates
// that token and runs call once more with a fresh one.
func (c *Client) withToken(ctx context.Context, app App, call func(token string) error) error {
	for attempt := 0; ; attempt++ {
		token, err := c.tokens.Token(ctx, app.AppID)
		if err != nil {
			return err
		}
		err = call(token)
		if attempt > 0 || !IsTokenError(err) {
			return err
		}
		if ierr := c.tokens.Invalidate(ctx, app.AppID, token); ierr != nil {
			return fmt.Errorf("%w (after %v)", ierr, err)
		}
	}
}

// envelope is the part every WeChat answer shares.
type envelope struct {
	Errcode json.Number `json:"errcode"`
	Errmsg  string      `json:"errmsg"`
	MsgID   json.Number `json:"msgid"`
}

// decodeEnvelope reads errcode and errmsg; a non-zero errcode returns an
// *APIError. Numbers are decoded as json.Number, never float64.
func decodeEnvelope(data []byte, op, appID, token string) (envelope, error) {
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&env); err != nil {
		return env, fmt.Errorf("%w: %s for %s: %v", ErrMalformedResponse, op, appID, jsonDetail(err))
	}
	if env.Errcode == "" {
		return env, nil // WeChat omits errcode on some successes
	}
	code, err := env.Errcode.Int64()
	if err != nil || code != int64(int32(code)) {
		return env, fmt.Errorf("%w: %s for %s: errcode is not an integer", ErrMalformedResponse, op, appID)
	}
	if code != 0 {
		return env, &APIError{Code: int(code), Msg: boundedMsg(env.Errmsg, token), Op: op, AppID: appID}
	}
	return env, nil
}

// decodeSend returns the msgid of a send answer: "" when absent, otherwise an
// unsigned decimal integer kept as text because it exceeds 2^53.
func decodeSend(data []byte, appID, token string) (string, error) {
	env, err := decodeEnvelope(data, OpSend, appID, token)
	if err != nil {
		return "", err
	}
	id := env.MsgID.String()
	if id == "" {
		return "", nil
	}
	if len(id) > maxMsgIDChars || !allDigits(id) {
		return "", fmt.Errorf("%w: %s for %s: msgid is not an unsigned integer", ErrMalformedResponse, OpSend, appID)
	}
	return id, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
