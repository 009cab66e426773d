package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wxgate/wxgate/crypto"
)

// Event names of the subscription-message pushes.
const (
	eventPopup  = "subscribe_msg_popup_event"
	eventChange = "subscribe_msg_change_event"
	eventSent   = "subscribe_msg_sent_event"
)

// maxDrainBytes bounds how much of a gateway's answer is read before the
// connection is reused.
const maxDrainBytes = 64 << 10

// item is one entry of a push's List.
type item struct {
	TemplateID  string
	Status      string // popup and change events
	Scene       int    // popup events
	hasScene    bool
	MsgID       uint64 // sent events
	ErrorCode   int
	ErrorStatus string
}

// event is one push before it is rendered.
type event struct {
	openID     string
	name       string
	createTime int64
	items      []item
}

// emit pushes ev to the app's callback URL after delay, as the faults in
// force say: once, several times, or not at all. It returns at once.
func (s *Sim) emit(a *app, openID, name string, items []item, delay time.Duration) {
	if a.cfg.PushURL == "" {
		return
	}
	ev := event{openID: openID, name: name, createTime: s.now().Unix(), items: items}
	copies := s.pushPlan()
	s.counters.update(a.cfg.AppID, func(t *Stats, as *AppStats) {
		t.Events++
		as.Events++
		if copies == 0 {
			t.PushesDropped++
			as.PushesDropped++
		}
	})
	for range copies {
		if !s.beginPush() {
			return
		}
		go func() {
			defer s.wg.Done()
			defer s.endPush()
			s.deliver(a, ev, delay)
		}()
	}
}

// deliver makes one delivery of ev, retrying like WeChat on a non-200 answer,
// a transport error or a timeout.
func (s *Sim) deliver(a *app, ev event, delay time.Duration) {
	if delay > 0 && s.sleep(s.ctx, delay) != nil {
		return
	}
	target, body, contentType, err := s.render(a, ev)
	if err != nil {
		s.log.Error("sim: cannot build push", "appid", a.cfg.AppID, "event", ev.name, "err", err)
		s.countPush(a, 0, false)
		return
	}
	attempts := 0
	ok := false
	for try := 0; try <= s.cfg.PushRetries; try++ {
		if try > 0 && s.sleep(s.ctx, s.cfg.PushRetryInterval) != nil {
			break
		}
		attempts++
		status, err := s.post(target, body, contentType)
		if err == nil && status == http.StatusOK {
			ok = true
			break
		}
		if s.ctx.Err() != nil {
			break
		}
		s.log.Warn("sim: push not accepted", "appid", a.cfg.AppID, "event", ev.name,
			"attempt", attempts, "status", status, "err", err)
	}
	s.countPush(a, attempts, ok)
}

func (s *Sim) countPush(a *app, attempts int, ok bool) {
	s.counters.update(a.cfg.AppID, func(t *Stats, as *AppStats) {
		t.Pushes++
		as.Pushes++
		t.PushAttempts += int64(attempts)
		as.PushAttempts += int64(attempts)
		if ok {
			t.PushesSucceeded++
			as.PushesSucceeded++
		} else {
			t.PushesFailed++
			as.PushesFailed++
		}
	})
}

// post sends one request, holding a concurrency slot for its duration only.
func (s *Sim) post(target string, body []byte, contentType string) (int, error) {
	select {
	case s.sem <- struct{}{}:
	case <-s.ctx.Done():
		return 0, s.ctx.Err()
	}
	defer func() { <-s.sem }()
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "Mozilla/4.0")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.CopyN(io.Discard, resp.Body, maxDrainBytes)
	return resp.StatusCode, nil
}

// render builds the push URL and body in the app's mode and format, signed
// and (outside plaintext mode) encrypted with a fresh nonce and timestamp.
func (s *Sim) render(a *app, ev event) (target string, body []byte, contentType string, err error) {
	u, err := url.Parse(a.cfg.PushURL)
	if err != nil {
		return "", nil, "", fmt.Errorf("push_url: %w", err)
	}
	ts := strconv.FormatInt(s.now().Unix(), 10)
	nonce := s.nonce()
	q := u.Query()
	q.Set("signature", crypto.Signature(a.cfg.Token, ts, nonce))
	q.Set("timestamp", ts)
	q.Set("nonce", nonce)
	q.Set("openid", ev.openID)

	xmlFormat := a.cfg.Format == FormatXML
	contentType = "application/json"
	if xmlFormat {
		contentType = "text/xml"
	}
	var plain []byte
	if xmlFormat {
		plain = renderXML(a.cfg.OriginalID, ev, "")
	} else {
		plain = renderJSON(a.cfg.OriginalID, ev, "", a.cfg.StringNumbers)
	}
	if a.cfg.Mode == ModePlaintext {
		u.RawQuery = q.Encode()
		return u.String(), plain, contentType, nil
	}

	enc, err := a.cipher.Encrypt(plain)
	if err != nil {
		return "", nil, "", fmt.Errorf("encrypt: %w", err)
	}
	q.Set("encrypt_type", "aes")
	q.Set("msg_signature", crypto.MsgSignature(a.cfg.Token, ts, nonce, enc))
	u.RawQuery = q.Encode()

	switch {
	case a.cfg.Mode == ModeCompatible && xmlFormat:
		body = renderXML(a.cfg.OriginalID, ev, enc)
	case a.cfg.Mode == ModeCompatible:
		body = renderJSON(a.cfg.OriginalID, ev, enc, a.cfg.StringNumbers)
	case xmlFormat:
		var b strings.Builder
		b.WriteString("<xml><ToUserName>")
		writeCDATA(&b, a.cfg.OriginalID)
		b.WriteString("</ToUserName><Encrypt>")
		writeCDATA(&b, enc)
		b.WriteString("</Encrypt></xml>")
		body = []byte(b.String())
	default:
		body = marshalJSON(struct {
			ToUserName string `json:"ToUserName"`
			Encrypt    string `json:"Encrypt"`
		}{a.cfg.OriginalID, enc})
	}
	return u.String(), body, contentType, nil
}

// JSON shapes of the pushes, fields in WeChat's order. Numeric fields are
// `any` so they can be written as numbers or, with StringNumbers, as strings.
type (
	jsonMessage struct {
		ToUserName   string `json:"ToUserName"`
		FromUserName string `json:"FromUserName"`
		CreateTime   any    `json:"CreateTime"`
		MsgType      string `json:"MsgType"`
		Event        string `json:"Event"`
		List         any    `json:"List"`
		Encrypt      string `json:"Encrypt,omitempty"`
	}
	jsonPopupItem struct {
		TemplateID            string `json:"TemplateId"`
		SubscribeStatusString string `json:"SubscribeStatusString"`
		PopupScene            any    `json:"PopupScene"`
	}
	jsonChangeItem struct {
		TemplateID            string `json:"TemplateId"`
		SubscribeStatusString string `json:"SubscribeStatusString"`
	}
	jsonSentItem struct {
		TemplateID  string `json:"TemplateId"`
		MsgID       any    `json:"MsgID"`
		ErrorCode   any    `json:"ErrorCode"`
		ErrorStatus string `json:"ErrorStatus"`
	}
)

// renderJSON writes the JSON message; List is an object for one item and an
// array for several, as WeChat sends it. A non-empty encrypt adds the
// compatible-mode Encrypt field.
func renderJSON(toUser string, ev event, encrypt string, stringNumbers bool) []byte {
	num := func(n string) any {
		if stringNumbers {
			return n
		}
		return json.Number(n)
	}
	list := make([]any, len(ev.items))
	for i, it := range ev.items {
		switch {
		case ev.name == eventSent:
			list[i] = jsonSentItem{it.TemplateID, num(strconv.FormatUint(it.MsgID, 10)), num(strconv.Itoa(it.ErrorCode)), it.ErrorStatus}
		case it.hasScene:
			list[i] = jsonPopupItem{it.TemplateID, it.Status, num(strconv.Itoa(it.Scene))}
		default:
			list[i] = jsonChangeItem{it.TemplateID, it.Status}
		}
	}
	m := jsonMessage{
		ToUserName:   toUser,
		FromUserName: ev.openID,
		CreateTime:   num(strconv.FormatInt(ev.createTime, 10)),
		MsgType:      "event",
		Event:        ev.name,
		List:         list,
		Encrypt:      encrypt,
	}
	if len(list) == 1 {
		m.List = list[0]
	}
	return marshalJSON(m)
}

// marshalJSON encodes v without HTML escaping and without a trailing newline.
// The values are built by this package and always encode.
func marshalJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// renderXML writes the XML message with its items wrapped in the event's
// element, one <List> each. A non-empty encrypt adds the compatible-mode
// <Encrypt> element.
func renderXML(toUser string, ev event, encrypt string) []byte {
	var b strings.Builder
	b.WriteString("<xml><ToUserName>")
	writeCDATA(&b, toUser)
	b.WriteString("</ToUserName><FromUserName>")
	writeCDATA(&b, ev.openID)
	b.WriteString("</FromUserName><CreateTime>")
	b.WriteString(strconv.FormatInt(ev.createTime, 10))
	b.WriteString("</CreateTime><MsgType>")
	writeCDATA(&b, "event")
	b.WriteString("</MsgType><Event>")
	writeCDATA(&b, ev.name)
	b.WriteString("</Event>")
	wrapper := "SubscribeMsgPopupEvent"
	switch ev.name {
	case eventChange:
		wrapper = "SubscribeMsgChangeEvent"
	case eventSent:
		wrapper = "SubscribeMsgSentEvent"
	}
	b.WriteString("<" + wrapper + ">")
	for _, it := range ev.items {
		b.WriteString("<List><TemplateId>")
		writeCDATA(&b, it.TemplateID)
		b.WriteString("</TemplateId>")
		if ev.name == eventSent {
			b.WriteString("<MsgID>" + strconv.FormatUint(it.MsgID, 10) + "</MsgID>")
			b.WriteString("<ErrorCode>" + strconv.Itoa(it.ErrorCode) + "</ErrorCode><ErrorStatus>")
			writeCDATA(&b, it.ErrorStatus)
			b.WriteString("</ErrorStatus>")
		} else {
			b.WriteString("<SubscribeStatusString>")
			writeCDATA(&b, it.Status)
			b.WriteString("</SubscribeStatusString>")
			if it.hasScene {
				b.WriteString("<PopupScene>" + strconv.Itoa(it.Scene) + "</PopupScene>")
			}
		}
		b.WriteString("</List>")
	}
	b.WriteString("</" + wrapper + ">")
	if encrypt != "" {
		b.WriteString("<Encrypt>")
		writeCDATA(&b, encrypt)
		b.WriteString("</Encrypt>")
	}
	b.WriteString("</xml>")
	return []byte(b.String())
}

// writeCDATA writes s as CDATA, splitting any "]]>" inside it across two sections.
func writeCDATA(b *strings.Builder, s string) {
	b.WriteString("<![CDATA[")
	b.WriteString(strings.ReplaceAll(s, "]]>", "]]]]><![CDATA[>"))
	b.WriteString("]]>")
}

// beginPush and endPush track deliveries in progress for WaitPushes and
// Close. beginPush reports false once the Sim is closing.
func (s *Sim) beginPush() bool {
	s.pushMu.Lock()
	defer s.pushMu.Unlock()
	if s.closing {
		return false
	}
	if s.pending == 0 {
		s.idle = make(chan struct{})
	}
	s.pending++
	s.wg.Add(1)
	return true
}

func (s *Sim) endPush() {
	s.pushMu.Lock()
	defer s.pushMu.Unlock()
	s.pending--
	if s.pending == 0 {
		close(s.idle)
	}
}

// WaitPushes blocks until no push is pending or in flight, or ctx ends.
// Tests call it after a send before asserting on what the gateway received.
func (s *Sim) WaitPushes(ctx context.Context) error {
	for {
		s.pushMu.Lock()
		if s.pending == 0 {
			s.pushMu.Unlock()
			return nil
		}
		idle := s.idle
		s.pushMu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
