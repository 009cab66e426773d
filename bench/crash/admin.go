package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// requestTimeout bounds one admin API request.
const requestTimeout = 10 * time.Second

// adminAPI calls wxgate's admin API.
type adminAPI struct {
	base   string
	client *http.Client
}

func newAdminAPI(listen string, c int) *adminAPI {
	return &adminAPI{base: "http://" + listen, client: &http.Client{Timeout: requestTimeout, Transport: &http.Transport{
		MaxConnsPerHost: c, MaxIdleConnsPerHost: c, MaxIdleConns: c,
	}}}
}

func (a *adminAPI) close() { a.client.CloseIdleConnections() }

// do makes one request and decodes a 2xx JSON answer into out.
func (a *adminAPI) do(ctx context.Context, method, path, idempotencyKey string, body, out any) error {
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
	req.Header.Set("Authorization", "Bearer "+adminToken)
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

// grants returns the one-time grants the ledger holds for openID.
func (a *adminAPI) grants(ctx context.Context, openID string) (int, error) {
	var l struct {
		Consents []struct {
			TemplateID string `json:"template_id"`
			Grants     int    `json:"grants"`
		} `json:"consents"`
	}
	if err := a.do(ctx, http.MethodGet, "/v1/apps/"+appID+"/consents/"+openID, "", nil, &l); err != nil {
		return 0, err
	}
	for _, c := range l.Consents {
		if c.TemplateID == templateID {
			return c.Grants, nil
		}
	}
	return 0, nil
}

// send requests one send to openID under idempotencyKey and returns the
// message id.
func (a *adminAPI) send(ctx context.Context, openID, idempotencyKey string) (string, error) {
	var acc struct {
		ID string `json:"id"`
	}
	body := map[string]any{
		"touser": openID, "template_id": templateID,
		"data": map[string]string{"thing1": "Coffee beans", "time2": "15:01"},
	}
	if err := a.do(ctx, http.MethodPost, "/v1/apps/"+appID+"/messages", idempotencyKey, body, &acc); err != nil {
		return "", err
	}
	if acc.ID == "" {
		return "", fmt.Errorf("send to %s: no message id in the answer", openID)
	}
	return acc.ID, nil
}

// message is a message as the audit shows it.
type message struct {
	ID          string `json:"id"`
	ToUser      string `json:"touser"`
	TemplateID  string `json:"template_id"`
	Status      string `json:"status"`
	Reason      string `json:"reason"`
	WeChatMsgID string `json:"wechat_msgid"`
	ErrCode     int    `json:"errcode"`
	History     []struct {
		Status string `json:"status"`
		Detail string `json:"detail"`
	} `json:"history"`
}

// wentThrough reports whether the message's history holds status.
func (m *message) wentThrough(status string) bool {
	for _, h := range m.History {
		if h.Status == status {
			return true
		}
	}
	return false
}

// messages reads the whole audit of the app, page by page.
func (a *adminAPI) messages(ctx context.Context) ([]message, error) {
	var all []message
	cursor := ""
	for {
		q := url.Values{"limit": {"500"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Items      []message `json:"items"`
			NextCursor string    `json:"next_cursor"`
		}
		if err := a.do(ctx, http.MethodGet, "/v1/apps/"+appID+"/messages?"+q.Encode(), "", nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			return all, nil
		}
		cursor = page.NextCursor
	}
}

// forEach runs f(i) for i in [0, n) on c goroutines and returns how many
// calls failed and the first error.
func forEach(n, c int, f func(i int) error) (int, error) {
	var (
		next, failed atomic.Int64
		once         sync.Once
		first        error
		wg           sync.WaitGroup
	)
	for range c {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					failed.Add(1)
					once.Do(func() { first = err })
				}
			}
		})
	}
	wg.Wait()
	return int(failed.Load()), first
}

// openID is user i's openid, 28 characters as a real one.
func openID(i int) string { return fmt.Sprintf("oCrash%022d", i) }

// idempotencyKey is the key of user i's send request, so that a request
// retried after the restart names the same message.
func idempotencyKey(i int) string { return "crash-" + strconv.Itoa(i) }
