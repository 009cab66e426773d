package gateway_test

import (
	"bytes"
	stdaes "crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	wxcrypto "github.com/wxgate/wxgate/crypto"
	"github.com/wxgate/wxgate/gateway"
	"github.com/wxgate/wxgate/internal/broker"
	"github.com/wxgate/wxgate/internal/broker/natstest"
	"github.com/wxgate/wxgate/internal/checkfor"
	"github.com/wxgate/wxgate/schemas"
)

// The official V1 app (wechat-protocol.md section 3).
const (
	v1AppID = "wxba5fad812f8e6fb9"
	v1Token = "AAAAA"
	v1Key   = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	// A second key for rotation tests.
	rotatedKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	// An app that only ever pushes in plaintext.
	plainAppID = "wx0123456789abcdef"
	plainToken = "plaintoken"
)

type harness struct {
	t    *testing.T
	nats *natstest.Server
	url  string
	gw   *gateway.Server
	logs *lockedBuffer // the gateway's log, as text
}

// newHarness runs a real gateway over HTTP in front of a real embedded JetStream.
func newHarness(t *testing.T, maxSkew time.Duration, apps ...gateway.App) *harness {
	t.Helper()
	return newHarnessConfig(t, gateway.Config{Apps: apps, MaxSkew: maxSkew})
}

// newHarnessConfig is newHarness with the gateway's whole configuration: the
// V1 and plaintext apps when cfg has none, a 64 KiB body limit and a 500ms
// publish timeout unless set.
func newHarnessConfig(t *testing.T, cfg gateway.Config) *harness {
	t.Helper()
	gin.SetMode(gin.TestMode)
	ns := natstest.Start(t)
	_, js := ns.Connect()
	if len(cfg.Apps) == 0 {
		cfg.Apps = []gateway.App{
			{AppID: v1AppID, Token: v1Token, EncodingAESKey: v1Key},
			{AppID: plainAppID, Token: plainToken},
		}
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 64 << 10
	}
	if cfg.PublishTimeout == 0 {
		cfg.PublishTimeout = 500 * time.Millisecond
	}
	logs := &lockedBuffer{}
	gw, err := gateway.New(cfg, broker.NewPublisher(js, 500*time.Millisecond), slog.New(slog.NewTextHandler(logs, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	r := gin.New()
	gw.Register(r)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &harness{t: t, nats: ns, url: srv.URL, gw: gw, logs: logs}
}

func (h *harness) post(appID, query string, body []byte) (int, string) {
	h.t.Helper()
	resp, err := http.Post(h.url+"/wechat/"+appID+"?"+query, "text/plain", bytes.NewReader(body))
	if err != nil {
		h.t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (h *harness) inbound() []schemas.CloudEvent {
	h.t.Helper()
	var out []schemas.CloudEvent
	for _, m := range h.nats.Messages("wechat.*.in.>") {
		ce, err := schemas.DecodeCloudEvent(m.Data)
		if err != nil {
			h.t.Fatalf("stream holds an invalid CloudEvent on %s: %v", m.Subject, err)
		}
		out = append(out, ce)
	}
	return out
}

// push is one push as WeChat would send it.
type push struct {
	mode, format string // plaintext|compatible|secure, xml|json
	msg          string // the message in the push's format
	timestamp    string
	nonce        string
}

// request signs and, outside plaintext mode, encrypts p with token and c.
func (p push) request(t *testing.T, token string, c *wxcrypto.Cipher) (query string, body []byte) {
	t.Helper()
	q := url.Values{"timestamp": {p.timestamp}, "nonce": {p.nonce}, "openid": {"o9AgO5Kd5ggOC-bXrbNODIiE3bGY"}}
	q.Set("signature", wxcrypto.Signature(token, p.timestamp, p.nonce))
	if p.mode == "plaintext" {
		return q.Encode(), []byte(p.msg)
	}
	enc, err := c.Encrypt([]byte(p.msg))
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	q.Set("encrypt_type", "aes")
	q.Set("msg_signature", wxcrypto.MsgSignature(token, p.timestamp, p.nonce, enc))
	switch {
	case p.format == "json" && p.mode == "secure":
		body, _ = json.Marshal(map[string]string{"ToUserName": "gh_97417a04a28d", "Encrypt": enc})
	case p.format == "json": // compatible: the plaintext fields and Encrypt
		var m map[string]any
		if err := json.Unmarshal([]byte(p.msg), &m); err != nil {
			t.Fatalf("bad test message: %v", err)
		}
		m["Encrypt"] = enc
		body, _ = json.Marshal(m)
	case p.mode == "secure":
		body = []byte("<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName><Encrypt><![CDATA[" + enc + "]]></Encrypt></xml>")
	default:
		body = []byte(strings.Replace(p.msg, "</xml>", "<Encrypt><![CDATA["+enc+"]]></Encrypt></xml>", 1))
	}
	return q.Encode(), body
}

func now() string { return strconv.FormatInt(time.Now().Unix(), 10) }

func popupXML(openid string, ts int64, status string) string {
	return fmt.Sprintf(`<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName><FromUserName><![CDATA[%s]]></FromUserName><CreateTime>%d</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe_msg_popup_event]]></Event><SubscribeMsgPopupEvent><List><TemplateId><![CDATA[VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc]]></TemplateId><SubscribeStatusString><![CDATA[%s]]></SubscribeStatusString><PopupScene>0</PopupScene></List></SubscribeMsgPopupEvent></xml>`, openid, ts, status)
}

func popupJSON(openid string, ts int64, status string) string {
	return fmt.Sprintf(`{"ToUserName":"gh_97417a04a28d","FromUserName":"%s","CreateTime":%d,"MsgType":"event","Event":"subscribe_msg_popup_event","List":{"TemplateId":"VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc","SubscribeStatusString":"%s","PopupScene":"0"}}`, openid, ts, status)
}

func TestOfficialV1RequestVerbatim(t *testing.T) {
	h := newHarness(t, 0)
	query := "signature=6c5c811b55cc85e0e1b54100749188c20beb3f5d&timestamp=1714112445&nonce=415670741&openid=o9AgO5Kd5ggOC-bXrbNODIiE3bGY&encrypt_type=aes&msg_signature=046e02f8204d34f8ba5fa3b1db94908f3df2e9b3"
	body := `{"ToUserName":"gh_97417a04a28d","Encrypt":"+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8khUOb05JCpj0JB4RvQMkUyus8TPxLKJGQqcvZqzDpVzazhZv6JsXUnnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7GgiaviNrlCTj+l5kdfMuFUPpRSrfMZuMcp3Fn2Pede2IuQrKEYwKSqFIZoNqJ4M8EajAsjLY2km32IIjdf8YL/P50F7mStwntrA2cPDrM1kb6mOcfBgRtWygb3VIYnSeOBrebufAlr7F9mFUPAJGj04="}`
	if code, text := h.post(v1AppID, query, []byte(body)); code != http.StatusOK || text != "success" {
		t.Fatalf("POST V1 = %d %q, want 200 success", code, text)
	}
	msgs := h.nats.Messages("wechat.wxba5fad812f8e6fb9.in.debug_demo")
	if len(msgs) != 1 {
		t.Fatalf("stream holds %d debug_demo events, want 1", len(msgs))
	}
	ce, err := schemas.DecodeCloudEvent(msgs[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	var ev schemas.Event
	if err := json.Unmarshal(ce.Data, &ev); err != nil {
		t.Fatal(err)
	}
	if ce.Source != "/wechat/"+v1AppID || ce.Type != "wechat.in.debug_demo" || ce.Subject != "o9AgO5Kd5ggOC-bXrbNODIiE3bGY" || msgs[0].Header.Get("Nats-Msg-Id") != ce.ID {
		t.Errorf("envelope = %+v (msg id %q)", ce, msgs[0].Header.Get("Nats-Msg-Id"))
	}
	if ev.OpenID != "o9AgO5Kd5ggOC-bXrbNODIiE3bGY" || ev.CreateTime != 1714112445 || ev.Event != "debug_demo" || !strings.Contains(ev.Raw, `"debug_str":"hello world"`) {
		t.Errorf("data = %+v", ev)
	}
}

func TestOfficialV1URLVerification(t *testing.T) {
	h := newHarness(t, 0)
	resp, err := http.Get(h.url + "/wechat/" + v1AppID + "?timestamp=1714036504&nonce=1514711492&signature=f464b24fc39322e44b38aa78f5edd27bd1441696&echostr=4375120948345356249")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(b) != "4375120948345356249" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Errorf("GET verify = %d %q %q, want 200 echostr text/plain", resp.StatusCode, b, resp.Header.Get("Content-Type"))
	}
	resp, err = http.Get(h.url + "/wechat/" + v1AppID + "?timestamp=1714036504&nonce=1514711492&signature=0000000000000000000000000000000000000000&echostr=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET verify with a forged signature = %d, want 401", resp.StatusCode)
	}
}

func TestEveryModeAndFormat(t *testing.T) {
	h := newHarness(t, 5*time.Minute)
	c, err := wxcrypto.NewCipher(v1AppID, v1Key, "")
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Now().Unix()
	i := 0
	for _, mode := range []string{"plaintext", "compatible", "secure"} {
		for _, format := range []string{"xml", "json"} {
			t.Run(mode+"/"+format, func(t *testing.T) {
				i++
				openid := fmt.Sprintf("oUser%02d_xxxxxxxxxxxxxxxxxxxxx", i)
				msg := popupXML(openid, ts, "accept")
				if format == "json" {
					msg = popupJSON(openid, ts, "accept")
				}
				p := push{mode: mode, format: format, msg: msg, timestamp: now(), nonce: "12345"}
				query, body := p.request(t, v1Token, c)
				if code, text := h.post(v1AppID, query, body); code != http.StatusOK || text != "success" {
					t.Fatalf("POST = %d %q, want 200 success", code, text)
				}
				var (
					found *schemas.Event
					data  []byte
				)
				for _, ce := range h.inbound() {
					var ev schemas.Event
					if err := json.Unmarshal(ce.Data, &ev); err != nil {
						t.Fatal(err)
					}
					if ev.OpenID == openid {
						found, data = &ev, ce.Data
					}
				}
				if found == nil {
					t.Fatalf("no event for %s in the stream", openid)
				}
				want := schemas.Item{TemplateID: "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc", Status: "accept"}
				if found.Event != schemas.EventSubscribePopup || len(found.Items) != 1 || found.Items[0] != want {
					t.Errorf("event = %+v, want one popup accept item", found)
				}
				// PopupScene 0 (inside the mini program) is a value, written as one.
				if !bytes.Contains(data, []byte(`"popup_scene":0`)) {
					t.Errorf("data = %s, want popup_scene 0", data)
				}
			})
		}
	}
	if got := len(h.nats.Messages("wechat.wxba5fad812f8e6fb9.in.subscribe_msg_popup_event")); got != 6 {
		t.Errorf("stream holds %d popup events, want 6", got)
	}
}

// TestCloudEventTimeIsWhenReceived checks that the envelope's time is the
// gateway's clock when the push arrived, while WeChat's CreateTime stays in
// the data and the id stays the push's own.
func TestCloudEventTimeIsWhenReceived(t *testing.T) {
	const createTime = 1610969440 // 2021-01-18, WeChat's clock
	c, err := wxcrypto.NewCipher(v1AppID, v1Key, "")
	if err != nil {
		t.Fatal(err)
	}
	// send posts one secure push stamped at ts and returns its envelope and data.
	send := func(t *testing.T, h *harness, openid string, ts time.Time) (schemas.CloudEvent, schemas.Event) {
		t.Helper()
		p := push{mode: "secure", format: "json", msg: popupJSON(openid, createTime, "accept"), timestamp: strconv.FormatInt(ts.Unix(), 10), nonce: "3"}
		q, body := p.request(t, v1Token, c)
		if code, text := h.post(v1AppID, q, body); code != http.StatusOK {
			t.Fatalf("POST = %d %q, want 200", code, text)
		}
		got := h.inbound()
		if len(got) != 1 {
			t.Fatalf("stream holds %d events, want 1", len(got))
		}
		var ev schemas.Event
		if err := json.Unmarshal(got[0].Data, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.CreateTime != createTime {
			t.Errorf("data create_time = %d, want the push's CreateTime %d", ev.CreateTime, createTime)
		}
		if id := ev.ID(); got[0].ID != id {
			t.Errorf("envelope id = %q, want the push's id %q", got[0].ID, id)
		}
		return got[0], ev
	}

	t.Run("gateway_clock", func(t *testing.T) {
		received := time.Date(2030, 5, 1, 12, 0, 0, 250_000_000, time.FixedZone("CST", 8*3600))
		h := newHarnessConfig(t, gateway.Config{MaxSkew: 5 * time.Minute, Clock: func() time.Time { return received }})
		ce, _ := send(t, h, "oClock_xxxxxxxxxxxxxxxxxxxxxxx", received)
		if !ce.Time.Equal(received) || ce.Time.Location() != time.UTC {
			t.Errorf("CloudEvent time = %v, want the gateway's clock %v in UTC", ce.Time, received.UTC())
		}
	})
	t.Run("wall_clock", func(t *testing.T) {
		h := newHarness(t, 0)
		before := time.Now()
		ce, _ := send(t, h, "oWallClock_xxxxxxxxxxxxxxxxxxx", before)
		after := time.Now()
		if ce.Time.Before(before) || ce.Time.After(after) {
			t.Errorf("CloudEvent time = %v, want between %v and %v", ce.Time, before, after)
		}
	})
}

// aesRaw encrypts plaintext with the app key without any padding or framing, to
// build ciphertexts that are well-formed AES but broken WXBizMsgCrypt.
func aesRaw(t *testing.T, encodingAESKey string, plaintext []byte) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil {
		t.Fatal(err)
	}
	block, err := stdaes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(plaintext))
	cipher.NewCBCEncrypter(block, key[:16]).CryptBlocks(out, plaintext)
	return base64.StdEncoding.EncodeToString(out)
}

func TestRejectedPushesStoreNothing(t *testing.T) {
	h := newHarness(t, 5*time.Minute)
	c, _ := wxcrypto.NewCipher(v1AppID, v1Key, "")
	otherApp, _ := wxcrypto.NewCipher("wx2c2769f8efd9abc2", v1Key, "")
	msg := popupJSON("oRejected_xxxxxxxxxxxxxxxxxxxx", time.Now().Unix(), "accept")
	ts := now()

	// secure sends a secure JSON body carrying enc, correctly signed.
	secure := func(enc string) (string, []byte) {
		q := url.Values{"timestamp": {ts}, "nonce": {"1"}, "encrypt_type": {"aes"},
			"signature":     {wxcrypto.Signature(v1Token, ts, "1")},
			"msg_signature": {wxcrypto.MsgSignature(v1Token, ts, "1", enc)}}
		b, _ := json.Marshal(map[string]string{"ToUserName": "gh_97417a04a28d", "Encrypt": enc})
		return q.Encode(), b
	}
	good, _ := c.Encrypt([]byte(msg))
	wrongApp, _ := otherApp.Encrypt([]byte(msg))
	// 16 random bytes, length, message, appid, then 48 bytes of pad value 48 (> 32).
	framed := append(append(append(make([]byte, 16), binary.BigEndian.AppendUint32(nil, uint32(len(msg)))...), msg...), v1AppID...)
	badPad := append(framed, bytes.Repeat([]byte{0}, 32-len(framed)%32)...)

	tests := []struct {
		name   string
		appID  string
		build  func() (string, []byte)
		status int
	}{
		{"forged signature", plainAppID, func() (string, []byte) {
			return url.Values{"timestamp": {ts}, "nonce": {"1"}, "signature": {wxcrypto.Signature("not-the-token", ts, "1")}}.Encode(), []byte(msg)
		}, http.StatusUnauthorized},
		{"forged msg_signature", v1AppID, func() (string, []byte) {
			q, b := secure(good)
			return strings.Replace(q, "msg_signature=", "msg_signature=0", 1), b
		}, http.StatusUnauthorized},
		{"body swapped under a valid msg_signature", v1AppID, func() (string, []byte) {
			q, _ := secure(good)
			_, b := secure(wrongApp)
			return q, b
		}, http.StatusUnauthorized},
		{"stale timestamp", plainAppID, func() (string, []byte) {
			old := strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)
			return url.Values{"timestamp": {old}, "nonce": {"1"}, "signature": {wxcrypto.Signature(plainToken, old, "1")}}.Encode(), []byte(msg)
		}, http.StatusUnauthorized},
		{"unknown appid", "wxffffffffffffffff", func() (string, []byte) { return secure(good) }, http.StatusNotFound},
		{"wrong appid inside the payload", v1AppID, func() (string, []byte) { return secure(wrongApp) }, http.StatusBadRequest},
		{"truncated ciphertext", v1AppID, func() (string, []byte) { return secure(good[:len(good)/2]) }, http.StatusBadRequest},
		{"ciphertext not base64", v1AppID, func() (string, []byte) { return secure("!!!not base64!!!") }, http.StatusBadRequest},
		{"bad padding", v1AppID, func() (string, []byte) { return secure(aesRaw(t, v1Key, badPad)) }, http.StatusBadRequest},
		{"oversized body", plainAppID, func() (string, []byte) {
			return url.Values{"timestamp": {ts}, "nonce": {"1"}, "signature": {wxcrypto.Signature(plainToken, ts, "1")}}.Encode(),
				[]byte(`{"pad":"` + strings.Repeat("x", 65<<10) + `"}`)
		}, http.StatusRequestEntityTooLarge},
		{"malformed xml", plainAppID, func() (string, []byte) {
			return url.Values{"timestamp": {ts}, "nonce": {"1"}, "signature": {wxcrypto.Signature(plainToken, ts, "1")}}.Encode(), []byte("<xml><ToUserName>gh_1</ToUser")
		}, http.StatusBadRequest},
		{"malformed json", plainAppID, func() (string, []byte) {
			return url.Values{"timestamp": {ts}, "nonce": {"1"}, "signature": {wxcrypto.Signature(plainToken, ts, "1")}}.Encode(), []byte(`{"ToUserName": "gh_1",`)
		}, http.StatusBadRequest},
		{"not xml or json", plainAppID, func() (string, []byte) {
			return url.Values{"timestamp": {ts}, "nonce": {"1"}, "signature": {wxcrypto.Signature(plainToken, ts, "1")}}.Encode(), []byte("hello")
		}, http.StatusBadRequest},
		{"encrypted push to an app without a key", plainAppID, func() (string, []byte) {
			q := url.Values{"timestamp": {ts}, "nonce": {"1"}, "encrypt_type": {"aes"}, "msg_signature": {wxcrypto.MsgSignature(plainToken, ts, "1", good)}}
			b, _ := json.Marshal(map[string]string{"ToUserName": "gh_1", "Encrypt": good})
			return q.Encode(), b
		}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, body := tt.build()
			code, text := h.post(tt.appID, q, body)
			if code != tt.status {
				t.Errorf("POST = %d %q, want %d", code, text, tt.status)
			}
			if text != http.StatusText(code) {
				t.Errorf("error body = %q, want the fixed %q", text, http.StatusText(code))
			}
		})
	}
	if got := h.inbound(); len(got) != 0 {
		t.Errorf("stream holds %d events after only bad pushes, want 0", len(got))
	}
}

func TestRetriesAreStoredOnce(t *testing.T) {
	h := newHarness(t, 5*time.Minute)
	c, _ := wxcrypto.NewCipher(v1AppID, v1Key, "")
	msg := popupXML("oRetried_xxxxxxxxxxxxxxxxxxxxx", time.Now().Unix(), "accept")
	for i := range 4 {
		// Each delivery is encrypted afresh and signed with its own nonce, as WeChat does.
		p := push{mode: "secure", format: "xml", msg: msg, timestamp: now(), nonce: strconv.Itoa(1000 + i)}
		q, body := p.request(t, v1Token, c)
		if code, text := h.post(v1AppID, q, body); code != http.StatusOK || text != "success" {
			t.Fatalf("delivery %d = %d %q, want 200 success", i+1, code, text)
		}
	}
	if got := len(h.inbound()); got != 1 {
		t.Errorf("4 deliveries of one push stored %d events, want 1", got)
	}
	// A different event in the same second is a different event.
	other := push{mode: "secure", format: "xml", msg: strings.Replace(msg, "accept", "reject", 1), timestamp: now(), nonce: "9"}
	q, body := other.request(t, v1Token, c)
	if code, _ := h.post(v1AppID, q, body); code != http.StatusOK {
		t.Fatalf("second event = %d, want 200", code)
	}
	if got := len(h.inbound()); got != 2 {
		t.Errorf("stream holds %d events, want 2", got)
	}
}

func TestPreviousKeyDuringRotation(t *testing.T) {
	h := newHarness(t, 5*time.Minute, gateway.App{AppID: v1AppID, Token: v1Token, EncodingAESKey: rotatedKey, PreviousEncodingAESKey: v1Key})
	old, _ := wxcrypto.NewCipher(v1AppID, v1Key, "")
	p := push{mode: "secure", format: "json", msg: popupJSON("oRotation_xxxxxxxxxxxxxxxxxxx", time.Now().Unix(), "accept"), timestamp: now(), nonce: "7"}
	q, body := p.request(t, v1Token, old)
	if code, text := h.post(v1AppID, q, body); code != http.StatusOK {
		t.Fatalf("push under the previous key = %d %q, want 200", code, text)
	}
	if got := len(h.inbound()); got != 1 {
		t.Errorf("stream holds %d events, want 1", got)
	}
}

func TestBrokerOutageAnswers503ThenStoresTheRetry(t *testing.T) {
	h := newHarness(t, 5*time.Minute)
	c, _ := wxcrypto.NewCipher(v1AppID, v1Key, "")
	p := push{mode: "secure", format: "json", msg: popupJSON("oOutage_xxxxxxxxxxxxxxxxxxxxxx", time.Now().Unix(), "accept"), timestamp: now(), nonce: "5"}
	q, body := p.request(t, v1Token, c)

	h.nats.Stop()
	if code, text := h.post(v1AppID, q, body); code != http.StatusServiceUnavailable {
		t.Fatalf("POST with NATS down = %d %q, want 503", code, text)
	}
	h.nats.Restart()
	// WeChat retries; the client reconnects in the background, so retry as WeChat would.
	checkfor.Eventually(t, 15*time.Second, 200*time.Millisecond, func() error {
		if code, text := h.post(v1AppID, q, body); code != http.StatusOK {
			return fmt.Errorf("POST after NATS came back = %d %q, want 200", code, text)
		}
		return nil
	})
	if got := len(h.inbound()); got != 1 {
		t.Errorf("stream holds %d events after the outage, want 1", got)
	}
}
