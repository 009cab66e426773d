// Package audit reads wxgate's audit through the admin API and compares it
// with what the WeChat simulator received, for the load programs that break
// wxgate on purpose (bench/crash, bench/cluster).
package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// RequestTimeout bounds one admin API request.
const RequestTimeout = 10 * time.Second

// Client calls one wxgate process's admin API for one app. It is safe for
// concurrent use.
type Client struct {
	base, token, appID string
	client             *http.Client
}

// NewClient returns a client of the admin API at baseURL (http://host:port)
// with up to c connections.
func NewClient(baseURL, token, appID string, c int) *Client {
	return &Client{base: baseURL, token: token, appID: appID, client: &http.Client{Timeout: RequestTimeout, Transport: &http.Transport{
		MaxConnsPerHost: c, MaxIdleConnsPerHost: c, MaxIdleConns: c,
	}}}
}

// Close closes the idle connections.
func (a *Client) Close() { a.client.CloseIdleConnections() }

// do makes one request and decodes a 2xx JSON answer into out.
func (a *Client) do(ctx context.Context, method, path, idempotencyKey string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %.200s", method, path, resp.StatusCode, b)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// Grants returns the one-time grants the ledger holds for openID and templateID.
func (a *Client) Grants(ctx context.Context, openID, templateID string) (int, error) {
	var l struct {
		Consents []struct {
			TemplateID string `json:"template_id"`
			Grants     int    `json:"grants"`
		} `json:"consents"`
	}
	if err := a.do(ctx, http.MethodGet, "/v1/apps/"+a.appID+"/consents/"+openID, "", nil, &l); err != nil {
		return 0, err
	}
	for _, c := range l.Consents {
		if c.TemplateID == templateID {
			return c.Grants, nil
		}
	}
	return 0, nil
}

// Send requests one send of templateID with data to openID under
// idempotencyKey and returns the message id.
func (a *Client) Send(ctx context.Context, openID, templateID, idempotencyKey string, data map[string]string) (string, error) {
	var acc struct {
		ID string `json:"id"`
	}
	body := map[string]any{"touser": openID, "template_id": templateID, "data": data}
	if err := a.do(ctx, http.MethodPost, "/v1/apps/"+a.appID+"/messages", idempotencyKey, body, &acc); err != nil {
		return "", err
	}
	if acc.ID == "" {
		return "", fmt.Errorf("send to %s: no message id in the answer", openID)
	}
	return acc.ID, nil
}

// Message is a message as the audit shows it.
type Message struct {
	ID          string    `json:"id"`
	ToUser      string    `json:"touser"`
	TemplateID  string    `json:"template_id"`
	Status      string    `json:"status"`
	Reason      string    `json:"reason"`
	WeChatMsgID string    `json:"wechat_msgid"`
	ErrCode     int       `json:"errcode"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	History     []struct {
		Status string    `json:"status"`
		At     time.Time `json:"at"`
		Detail string    `json:"detail"`
	} `json:"history"`
}

// WentThrough reports whether the message's history holds status.
func (m *Message) WentThrough(status string) bool {
	for _, h := range m.History {
		if h.Status == status {
			return true
		}
	}
	return false
}

// Messages reads the whole audit of the app's messages, page by page.
func (a *Client) Messages(ctx context.Context) ([]Message, error) {
	return list[Message](ctx, a, "/v1/apps/"+a.appID+"/messages")
}

// Event is an inbound event as the audit shows it.
type Event struct {
	ID     string `json:"id"`
	OpenID string `json:"openid"`
	Event  string `json:"event"`
}

// Events reads the whole audit of the app's inbound events, page by page.
func (a *Client) Events(ctx context.Context) ([]Event, error) {
	return list[Event](ctx, a, "/v1/apps/"+a.appID+"/events")
}

// list reads every page of a paginated admin API listing.
func list[T any](ctx context.Context, a *Client, path string) ([]T, error) {
	var all []T
	cursor := ""
	for {
		q := url.Values{"limit": {"500"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Items      []T    `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		if err := a.do(ctx, http.MethodGet, path+"?"+q.Encode(), "", nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			return all, nil
		}
		cursor = page.NextCursor
	}
}
