package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	maxSendBody  = 64 << 10
	maxPageBytes = 1024
	maxDataKeys  = 64
)

// Message is one send WeChat accepted, as [Sim.Messages] reports it.
type Message struct {
	AppID            string            `json:"appid"`
	ToUser           string            `json:"touser"`
	TemplateID       string            `json:"template_id"`
	MsgID            string            `json:"msgid"` // a string: it exceeds 2^53
	Page             string            `json:"page,omitempty"`
	MiniprogramState string            `json:"miniprogram_state,omitempty"`
	Lang             string            `json:"lang,omitempty"`
	Data             map[string]string `json:"data"`
	At               time.Time         `json:"at"`
}

type sendRequest struct {
	ToUser           string                     `json:"touser"`
	TemplateID       string                     `json:"template_id"`
	Page             string                     `json:"page"`
	Data             map[string]json.RawMessage `json:"data"`
	MiniprogramState string                     `json:"miniprogram_state"`
	Lang             string                     `json:"lang"`
}

// sendResponse writes msgid as a raw JSON number, as WeChat does.
type sendResponse struct {
	Errcode int         `json:"errcode"`
	Errmsg  string      `json:"errmsg"`
	MsgID   json.Number `json:"msgid,omitempty"`
}

// sendResult is the outcome of one subscribe/send call.
type sendResult struct {
	appID   string
	errcode int
	errmsg  string // overrides errmsg(errcode) when set
	msgID   uint64
}

func fail(appID string, code int) sendResult { return sendResult{appID: appID, errcode: code} }

// handleSend serves POST /cgi-bin/message/subscribe/send.
func (s *Sim) handleSend(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSendBody))
	var res sendResult
	if err != nil {
		res = fail("", 47001)
	} else {
		res = s.send(r.Context(), r.URL.Query().Get("access_token"), body)
	}
	s.countSend(res.appID, res.errcode)
	resp := sendResponse{Errcode: res.errcode, Errmsg: res.errmsg}
	if resp.Errmsg == "" {
		resp.Errmsg = errmsg(res.errcode)
	}
	if res.errcode == 0 {
		resp.MsgID = json.Number(strconv.FormatUint(res.msgID, 10))
		switch s.replyFault() {
		case ReplyMalformed:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(`{"errcode":0,"errmsg":"ok","msgid":`))
			return
		case ReplyNoMsgID:
			resp.MsgID = ""
		case ReplyDrop:
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close()
					return
				}
			}
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// send runs WeChat's checks in this order: body, token, openid, per-user
// concurrency, injected faults, template, page, data, consent.
func (s *Sim) send(ctx context.Context, accessToken string, body []byte) sendResult {
	var req sendRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return fail("", 47001)
	}
	appID, code := s.checkToken(accessToken)
	if code != 0 {
		return fail(appID, code)
	}
	a := s.apps[appID]
	if !validOpenID(req.ToUser) {
		return fail(appID, 40003)
	}

	a.mu.Lock()
	if a.inflight[req.ToUser] {
		a.mu.Unlock()
		return fail(appID, 43108)
	}
	a.inflight[req.ToUser] = true
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.inflight, req.ToUser)
		a.mu.Unlock()
	}()

	injected, inject, latency := s.injectSend()
	if latency > 0 {
		if err := s.sleep(ctx, latency); err != nil {
			return fail(appID, -1)
		}
	}
	if inject {
		return fail(appID, injected)
	}

	t, ok := a.templates[req.TemplateID]
	if !ok {
		return fail(appID, 40037)
	}
	if req.Page != "" {
		path, _, _ := strings.Cut(req.Page, "?")
		if len(req.Page) > maxPageBytes || (len(a.pages) > 0 && !a.pages[path]) {
			return fail(appID, 41030)
		}
	}
	data, bad := checkData(t, req.Data)
	if bad != "" {
		return sendResult{appID: appID, errcode: 47003, errmsg: fmt.Sprintf("argument invalid! data.%s.value invalid", bad)}
	}

	msgID := s.msgSeq.Add(1)
	a.mu.Lock()
	if !a.consumeConsentLocked(req.ToUser, t) {
		a.mu.Unlock()
		return fail(appID, 43101)
	}
	a.messages = append(a.messages, Message{
		AppID: appID, ToUser: req.ToUser, TemplateID: t.ID, MsgID: strconv.FormatUint(msgID, 10),
		Page: req.Page, MiniprogramState: req.MiniprogramState, Lang: req.Lang, Data: data, At: s.now(),
	})
	if n := len(a.messages); n >= 2*s.cfg.MaxMessagesPerApp {
		a.messages = append([]Message(nil), a.messages[n-s.cfg.MaxMessagesPerApp:]...)
	}
	a.mu.Unlock()

	if !s.cfg.NoSentEvents {
		code, status := s.sentEventOutcome()
		s.emit(a, req.ToUser, eventSent, []item{{TemplateID: t.ID, MsgID: msgID, ErrorCode: code, ErrorStatus: status}},
			s.cfg.SentEventDelay)
	}
	return sendResult{appID: appID, msgID: msgID}
}

// checkData returns the plain values of data, or the first key (in the
// template's order, then sorted extras) that WeChat would refuse.
func checkData(t *template, data map[string]json.RawMessage) (map[string]string, string) {
	out := make(map[string]string, len(t.keys))
	for _, k := range t.keys {
		raw, ok := data[k]
		if !ok {
			return nil, k
		}
		var v struct {
			Value *string `json:"value"`
		}
		if err := json.Unmarshal(raw, &v); err != nil || v.Value == nil || !validValue(k, *v.Value, t.Enums) {
			return nil, k
		}
		out[k] = *v.Value
	}
	if len(data) != len(t.keys) || len(data) > maxDataKeys {
		for _, k := range slices.Sorted(maps.Keys(data)) {
			if _, ok := out[k]; !ok {
				return nil, k
			}
		}
	}
	return out, ""
}

// sleep waits d, or less if the caller or the simulator goes away.
func (s *Sim) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

// Messages returns the sends WeChat accepted for appID, oldest first (at most
// Config.MaxMessagesPerApp of them). It is safe for concurrent use.
func (s *Sim) Messages(appID string) ([]Message, error) {
	a, ok := s.apps[appID]
	if !ok {
		return nil, ErrUnknownApp
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	msgs := a.messages
	if n := len(msgs); n > s.cfg.MaxMessagesPerApp {
		msgs = msgs[n-s.cfg.MaxMessagesPerApp:]
	}
	return append([]Message{}, msgs...), nil
}
