package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wxgate/wxgate/schemas"
)

// Bounds of the admin client.
const (
	// adminTimeout bounds one call; the API answers from the store, in milliseconds.
	adminTimeout = 30 * time.Second
	// maxAdminReply bounds a reply body: a page of 500 events with their raw text.
	maxAdminReply = 32 << 20
)

// adminClient calls wxgate's admin API. It is safe for concurrent use.
type adminClient struct {
	base  *url.URL
	token string
	http  *http.Client
}

// newAdminClient returns a client of the API at server (http or https, no
// query). A bad server URL or a missing token is a usage error.
func newAdminClient(server, token string) (*adminClient, error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("%w: --server must be an http or https URL such as http://127.0.0.1:8080", errUsage)
	}
	if token == "" {
		return nil, fmt.Errorf("%w: no admin token: pass --token or set WXGATE_ADMIN_TOKEN", errUsage)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return &adminClient{base: u, token: token, http: &http.Client{Timeout: adminTimeout}}, nil
}

// apiError is an error answer of the admin API: its status, its short error
// text and, for a request to fix, the fields at fault.
type apiError struct {
	Status int
	Text   string
	Fields schemas.FieldErrors
}

func (e *apiError) Error() string {
	msg := fmt.Sprintf("admin API answered %d %s", e.Status, http.StatusText(e.Status))
	if e.Text != "" {
		msg += ": " + e.Text
	}
	if e.Status == http.StatusUnauthorized {
		msg += " (check --token or WXGATE_ADMIN_TOKEN)"
	}
	return msg
}

// call sends one request and returns the reply body of a 2xx answer, or an
// *apiError. path is relative to /v1 and already escaped; body, when not nil,
// is sent as JSON; headers are name, value pairs.
func (c *adminClient) call(ctx context.Context, method, path string, query url.Values, body any, headers ...string) ([]byte, error) {
	u := *c.base
	u.RawPath = c.base.EscapedPath() + "/v1" + path
	p, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return nil, fmt.Errorf("building the request: %w", err)
	}
	u.Path, u.RawQuery = p, query.Encode()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encoding the request: %w", err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return nil, fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] != "" {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("calling the admin API at %s: %w", c.base.Redacted(), errors.Unwrap(err))
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminReply+1))
	if err != nil {
		return nil, fmt.Errorf("reading the admin API's reply: %w", err)
	}
	if len(reply) > maxAdminReply {
		return nil, fmt.Errorf("the admin API's reply is larger than %d bytes", maxAdminReply)
	}
	if resp.StatusCode/100 != 2 {
		e := &apiError{Status: resp.StatusCode}
		var body struct {
			Error  string              `json:"error"`
			Fields schemas.FieldErrors `json:"fields"`
		}
		if json.Unmarshal(reply, &body) == nil {
			e.Text, e.Fields = body.Error, body.Fields
		}
		return nil, e
	}
	return reply, nil
}

// get fetches path and decodes the reply into out; it also returns the raw reply.
func (c *adminClient) get(ctx context.Context, path string, query url.Values, out any) ([]byte, error) {
	reply, err := c.call(ctx, http.MethodGet, path, query, nil)
	if err != nil {
		return nil, err
	}
	return reply, decodeReply(reply, out)
}

// post sends body to path and decodes the reply into out; it also returns the raw reply.
func (c *adminClient) post(ctx context.Context, path string, body, out any, headers ...string) ([]byte, error) {
	reply, err := c.call(ctx, http.MethodPost, path, nil, body, headers...)
	if err != nil {
		return nil, err
	}
	return reply, decodeReply(reply, out)
}

// apiPath joins escaped path segments: apiPath("apps", id, "messages") is /apps/ID/messages.
func apiPath(segments ...string) string {
	var b strings.Builder
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

func decodeReply(reply []byte, out any) error {
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(reply, out); err != nil {
		return fmt.Errorf("decoding the admin API's reply: %w", err)
	}
	return nil
}
