package wechat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync/atomic"
	"time"
)

const (
	// CallTimeout bounds one HTTP call to WeChat when the caller's context
	// allows longer. WeChat answers in well under a second; ten seconds rides out
	// a slow network without holding a send for long.
	CallTimeout = 10 * time.Second
	// maxResponseBody bounds what is read of an answer; the largest, gettemplate,
	// is a few dozen templates of a few hundred bytes.
	maxResponseBody = 1 << 20
	// maxRequestBody bounds a send body; WeChat's keyword rules keep real ones
	// under a few kilobytes.
	maxRequestBody = 64 << 10
)

// newHTTPClient returns a copy of hc (or of a default client) that does not
// follow redirects: WeChat's API never redirects, and following one would send
// the secret or the token to whatever host the redirect names.
func newHTTPClient(hc *http.Client) *http.Client {
	var c http.Client
	if hc != nil {
		c = *hc
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// request is one HTTP call to WeChat.
type request struct {
	op      string
	method  string
	base    string // api_base, no trailing slash
	path    string
	query   url.Values // may hold the access token or the secret
	body    []byte     // nil for GET
	secrets []string   // values that must not appear in errors
}

// do performs r within CallTimeout and returns the body of a 2xx answer, read
// up to maxResponseBody. Errors never contain the URL.
func do(ctx context.Context, hc *http.Client, r request) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	// The query is set after parsing, so a parse error cannot carry it.
	req, err := http.NewRequestWithContext(ctx, r.method, r.base+r.path, body)
	if err != nil {
		return nil, fmt.Errorf("%w: api_base is not a valid URL", ErrInvalidApp)
	}
	req.URL.RawQuery = r.query.Encode()
	req.Header.Set("Accept", "application/json")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	// Whether the whole request was written tells a call WeChat never saw from
	// one whose answer was lost.
	var sent atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) { sent.Store(i.Err == nil) },
	}))
	resp, err := hc.Do(req)
	if err != nil {
		ne := netError(r.op, err, r.secrets...)
		ne.Sent = sent.Load()
		return nil, ne
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, &HTTPStatusError{Op: r.op, StatusCode: resp.StatusCode}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	if err != nil {
		ne := netError(r.op, err, r.secrets...)
		ne.Sent = true
		return nil, ne
	}
	if len(data) > maxResponseBody {
		return nil, fmt.Errorf("%w: %s answer over %d bytes", ErrMalformedResponse, r.op, maxResponseBody)
	}
	return data, nil
}

// netError turns a transport failure into a NetError without the URL that
// net/http's url.Error carries.
func netError(op string, err error, secrets ...string) *NetError {
	var urlErr *url.Error
	for errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	if msg := err.Error(); redact(msg, secrets...) != msg {
		// Not expected from net/http, but a secret must never leak through a cause.
		err = errors.New(redact(msg, secrets...))
	}
	return &NetError{Op: op, Err: err}
}
