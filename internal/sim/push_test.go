package sim

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/crypto"
)

// pushed is a push decoded independently of the format it came in.
type pushed struct {
	ToUserName, FromUserName, CreateTime, MsgType, Event string
	Items                                                []pushedItem
	ListIsArray                                          bool // JSON only
}

type pushedItem struct {
	TemplateID, Status, Scene, MsgID, ErrorCode, ErrorStatus string
}

// xmlPush is the XML shape of every push, for decoding in tests.
type xmlPush struct {
	XMLName      xml.Name  `xml:"xml"`
	ToUserName   string    `xml:"ToUserName"`
	FromUserName string    `xml:"FromUserName"`
	CreateTime   string    `xml:"CreateTime"`
	MsgType      string    `xml:"MsgType"`
	Event        string    `xml:"Event"`
	Encrypt      string    `xml:"Encrypt"`
	Popup        []xmlItem `xml:"SubscribeMsgPopupEvent>List"`
	Change       []xmlItem `xml:"SubscribeMsgChangeEvent>List"`
	Sent         []xmlItem `xml:"SubscribeMsgSentEvent>List"`
}

type xmlItem struct {
	TemplateID  string `xml:"TemplateId"`
	Status      string `xml:"SubscribeStatusString"`
	Scene       string `xml:"PopupScene"`
	MsgID       string `xml:"MsgID"`
	ErrorCode   string `xml:"ErrorCode"`
	ErrorStatus string `xml:"ErrorStatus"`
}

func decodeXMLPush(t *testing.T, b []byte) (pushed, string) {
	t.Helper()
	var x xmlPush
	if err := xml.Unmarshal(b, &x); err != nil {
		t.Fatalf("push %q is not XML: %v", b, err)
	}
	p := pushed{ToUserName: x.ToUserName, FromUserName: x.FromUserName, CreateTime: x.CreateTime, MsgType: x.MsgType, Event: x.Event}
	for _, it := range slices.Concat(x.Popup, x.Change, x.Sent) {
		p.Items = append(p.Items, pushedItem(it))
	}
	return p, x.Encrypt
}

// jsonScalar renders a JSON number or string as its text.
func jsonScalar(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&n); err != nil {
		t.Fatalf("%s is neither a string nor a number", raw)
	}
	return n.String()
}

func decodeJSONPush(t *testing.T, b []byte) (pushed, map[string]json.RawMessage) {
	t.Helper()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatalf("push %q is not JSON: %v", b, err)
	}
	p := pushed{
		ToUserName: jsonScalar(t, fields["ToUserName"]), FromUserName: jsonScalar(t, fields["FromUserName"]),
		CreateTime: jsonScalar(t, fields["CreateTime"]), MsgType: jsonScalar(t, fields["MsgType"]), Event: jsonScalar(t, fields["Event"]),
	}
	var items []map[string]json.RawMessage
	if list := fields["List"]; len(list) > 0 {
		if list[0] == '[' {
			p.ListIsArray = true
			if err := json.Unmarshal(list, &items); err != nil {
				t.Fatal(err)
			}
		} else {
			var one map[string]json.RawMessage
			if err := json.Unmarshal(list, &one); err != nil {
				t.Fatal(err)
			}
			items = append(items, one)
		}
	}
	for _, it := range items {
		p.Items = append(p.Items, pushedItem{
			TemplateID: jsonScalar(t, it["TemplateId"]), Status: jsonScalar(t, it["SubscribeStatusString"]),
			Scene: jsonScalar(t, it["PopupScene"]), MsgID: jsonScalar(t, it["MsgID"]),
			ErrorCode: jsonScalar(t, it["ErrorCode"]), ErrorStatus: jsonScalar(t, it["ErrorStatus"]),
		})
	}
	return p, fields
}

// openPush verifies a push the way the gateway must (signature, then
// msg_signature over Encrypt, decryption with the trailing appid check) and
// returns the decoded message.
func openPush(t *testing.T, app AppConfig, r received) pushed {
	t.Helper()
	q := r.query
	ts, nonce := q.Get("timestamp"), q.Get("nonce")
	if err := crypto.VerifySignature(app.Token, ts, nonce, q.Get("signature")); err != nil {
		t.Fatalf("push signature: %v", err)
	}
	xmlFormat := app.Format == FormatXML
	if want := map[bool]string{true: "text/xml", false: "application/json"}[xmlFormat]; r.contentType != want {
		t.Fatalf("push Content-Type = %q, want %q", r.contentType, want)
	}
	var outer pushed
	var encrypt string
	var jsonFields map[string]json.RawMessage
	if xmlFormat {
		outer, encrypt = decodeXMLPush(t, r.body)
	} else {
		outer, jsonFields = decodeJSONPush(t, r.body)
		encrypt = jsonScalar(t, jsonFields["Encrypt"])
	}
	if app.Mode == ModePlaintext {
		if encrypt != "" || q.Has("encrypt_type") || q.Has("msg_signature") {
			t.Fatalf("plaintext push carries encryption: query %v body %s", q, r.body)
		}
		return outer
	}
	if q.Get("encrypt_type") != "aes" {
		t.Fatalf("push encrypt_type = %q, want aes", q.Get("encrypt_type"))
	}
	if err := crypto.VerifyMsgSignature(app.Token, ts, nonce, encrypt, q.Get("msg_signature")); err != nil {
		t.Fatalf("push msg_signature: %v", err)
	}
	c, err := crypto.NewCipher(app.AppID, app.EncodingAESKey, "")
	if err != nil {
		t.Fatal(err)
	}
	plain, err := c.Decrypt(encrypt)
	if err != nil {
		t.Fatalf("Decrypt(push) = %v", err)
	}
	var inner pushed
	if xmlFormat {
		var innerEncrypt string
		inner, innerEncrypt = decodeXMLPush(t, plain)
		if innerEncrypt != "" {
			t.Fatalf("decrypted push %s carries Encrypt", plain)
		}
	} else {
		var fields map[string]json.RawMessage
		inner, fields = decodeJSONPush(t, plain)
		if _, ok := fields["Encrypt"]; ok {
			t.Fatalf("decrypted push %s carries Encrypt", plain)
		}
	}
	switch app.Mode {
	case ModeCompatible:
		if !reflect.DeepEqual(outer, inner) {
			t.Fatalf("compatible push: plaintext fields %+v differ from decrypted %+v", outer, inner)
		}
	case ModeSecure:
		want := pushed{ToUserName: inner.ToUserName}
		if !reflect.DeepEqual(outer, want) || (!xmlFormat && len(jsonFields) != 2) {
			t.Fatalf("secure push body %s, want only ToUserName and Encrypt", r.body)
		}
	}
	return inner
}

func TestPushModesAndFormats(t *testing.T) {
	for _, mode := range []string{ModePlaintext, ModeCompatible, ModeSecure} {
		for _, format := range []string{FormatJSON, FormatXML} {
			t.Run(mode+"/"+format, func(t *testing.T) {
				rec := newReceiver(t)
				app := testApp()
				app.Mode, app.Format, app.PushURL = mode, format, rec.url
				s, base := start(t, Config{Apps: []AppConfig{app}})
				gh, _ := s.OriginalID(testAppID)

				if err := s.Popup(testAppID, testUser, 2,
					Answer{TemplateID: tplOnce, Action: ActionAccept}, Answer{TemplateID: tplLong, Action: ActionReject}); err != nil {
					t.Fatal(err)
				}
				waitPushes(t, s)
				if err := s.Subscribe(testAppID, testUser, ActionAccept, tplLong); err != nil {
					t.Fatal(err)
				}
				waitPushes(t, s)
				m := send(t, base, mustToken(t, base), sendBody(testUser, tplOnce, onceData()))
				if errcodeOf(t, m) != 0 {
					t.Fatalf("send = %v, want ok", m)
				}
				waitPushes(t, s)
				if err := s.Change(testAppID, testUser, ActionReject, tplLong); err != nil {
					t.Fatal(err)
				}
				waitPushes(t, s)

				reqs := rec.all()
				if len(reqs) != 4 {
					t.Fatalf("gateway got %d pushes, want 4", len(reqs))
				}
				got := make([]pushed, len(reqs))
				for i, r := range reqs {
					if r.query.Get("openid") != testUser {
						t.Fatalf("push %d openid = %q, want %q", i, r.query.Get("openid"), testUser)
					}
					got[i] = openPush(t, app, r)
					if got[i].ToUserName != gh || got[i].FromUserName != testUser || got[i].MsgType != "event" {
						t.Fatalf("push %d = %+v, want from %s to %s", i, got[i], testUser, gh)
					}
					if ct, err := strconv.ParseInt(got[i].CreateTime, 10, 64); err != nil || time.Since(time.Unix(ct, 0)).Abs() > time.Minute {
						t.Fatalf("push %d CreateTime = %q, want now", i, got[i].CreateTime)
					}
				}
				want := []struct {
					event string
					items []pushedItem
				}{
					{eventPopup, []pushedItem{{TemplateID: tplOnce, Status: "accept", Scene: "2"}, {TemplateID: tplLong, Status: "reject", Scene: "2"}}},
					{eventPopup, []pushedItem{{TemplateID: tplLong, Status: "accept", Scene: "0"}}},
					{eventSent, []pushedItem{{TemplateID: tplOnce, MsgID: m["msgid"].(json.Number).String(), ErrorCode: "0", ErrorStatus: "success"}}},
					{eventChange, []pushedItem{{TemplateID: tplLong, Status: "reject"}}},
				}
				for i, w := range want {
					if got[i].Event != w.event || !reflect.DeepEqual(got[i].Items, w.items) {
						t.Fatalf("push %d = %s %+v, want %s %+v", i, got[i].Event, got[i].Items, w.event, w.items)
					}
				}
				if format == FormatJSON && (!got[0].ListIsArray || got[1].ListIsArray) {
					t.Fatal("JSON List: want an array for two items and an object for one")
				}
				st := s.Stats()
				if st.Events != 4 || st.Pushes != 4 || st.PushesSucceeded != 4 || st.PushAttempts != 4 {
					t.Fatalf("Stats = %+v, want 4 events pushed once each", st)
				}
			})
		}
	}
}

func TestPushJSONNumbers(t *testing.T) {
	for _, stringNumbers := range []bool{false, true} {
		t.Run(fmt.Sprintf("string_numbers=%v", stringNumbers), func(t *testing.T) {
			rec := newReceiver(t)
			app := testApp()
			app.Mode, app.PushURL, app.StringNumbers = ModePlaintext, rec.url, stringNumbers
			s, base := start(t, Config{Apps: []AppConfig{app}})
			_ = s.Subscribe(testAppID, testUser, ActionAccept, tplLong)
			send(t, base, mustToken(t, base), sendBody(testUser, tplLong, longData()))
			waitPushes(t, s)
			reqs := rec.all()
			if len(reqs) != 2 {
				t.Fatalf("gateway got %d pushes, want 2", len(reqs))
			}
			// The popup and the sent event are pushed concurrently: find the sent one.
			var sent struct {
				Event      string
				CreateTime json.RawMessage
				List       json.RawMessage
			}
			for _, r := range reqs {
				if err := json.Unmarshal(r.body, &sent); err != nil {
					t.Fatal(err)
				}
				if sent.Event == "subscribe_msg_sent_event" {
					break
				}
			}
			if sent.Event != "subscribe_msg_sent_event" {
				t.Fatalf("no sent event among the pushes")
			}
			var item struct{ MsgID, ErrorCode json.RawMessage }
			if err := json.Unmarshal(sent.List, &item); err != nil {
				t.Fatal(err)
			}
			for name, raw := range map[string]json.RawMessage{"CreateTime": sent.CreateTime, "MsgID": item.MsgID, "ErrorCode": item.ErrorCode} {
				if isString := len(raw) > 0 && raw[0] == '"'; isString != stringNumbers {
					t.Fatalf("%s = %s, want string=%v", name, raw, stringNumbers)
				}
			}
		})
	}
}

func TestPushRetriesUntilAccepted(t *testing.T) {
	rec := newReceiver(t, http.StatusServiceUnavailable, http.StatusServiceUnavailable)
	app := testApp()
	app.PushURL = rec.url
	s, _ := start(t, Config{Apps: []AppConfig{app}})
	if err := s.Subscribe(testAppID, testUser, ActionAccept, tplOnce); err != nil {
		t.Fatal(err)
	}
	waitPushes(t, s)
	reqs := rec.all()
	if len(reqs) != 3 {
		t.Fatalf("gateway got %d requests, want 3 (two 503s, then 200)", len(reqs))
	}
	for i := 1; i < len(reqs); i++ {
		if !bytes.Equal(reqs[i].body, reqs[0].body) || reqs[i].query.Encode() != reqs[0].query.Encode() {
			t.Fatalf("retry %d differs from the first delivery; WeChat retries the same request", i)
		}
	}
	st := s.Stats()
	if st.PushAttempts != 3 || st.PushesSucceeded != 1 || st.PushesFailed != 0 {
		t.Fatalf("Stats = %+v, want 3 attempts and 1 success", st)
	}
}

func TestPushGivesUpAfterRetries(t *testing.T) {
	rec := newReceiver(t, 500, 500, 500, 500, 500)
	app := testApp()
	app.PushURL = rec.url
	s, _ := start(t, Config{Apps: []AppConfig{app}})
	_ = s.Subscribe(testAppID, testUser, ActionAccept, tplOnce)
	waitPushes(t, s)
	if n := len(rec.all()); n != 1+DefaultPushRetries {
		t.Fatalf("gateway got %d requests, want %d", n, 1+DefaultPushRetries)
	}
	if st := s.Stats(); st.PushesFailed != 1 || st.PushesSucceeded != 0 {
		t.Fatalf("Stats = %+v, want 1 failed push", st)
	}
}

func TestPushTimeoutIsRetried(t *testing.T) {
	slow := make(chan struct{})
	calls := 0
	srv := newSlowReceiver(t, func() bool {
		calls++
		return calls == 1 // the first request hangs past the timeout
	}, slow)
	app := testApp()
	app.PushURL = srv
	s, _ := start(t, Config{Apps: []AppConfig{app}, PushTimeout: 100 * time.Millisecond})
	_ = s.Subscribe(testAppID, testUser, ActionAccept, tplOnce)
	waitPushes(t, s)
	close(slow)
	if st := s.Stats(); st.PushAttempts != 2 || st.PushesSucceeded != 1 {
		t.Fatalf("Stats = %+v, want a timed-out attempt then a success", st)
	}
}

func TestPushDuplicatesAndDrops(t *testing.T) {
	rec := newReceiver(t)
	app := testApp()
	app.PushURL = rec.url
	s, _ := start(t, Config{Apps: []AppConfig{app}})

	if err := s.SetFaults(Faults{PushDuplicates: 3}); err != nil {
		t.Fatal(err)
	}
	_ = s.Subscribe(testAppID, testUser, ActionAccept, tplOnce)
	waitPushes(t, s)
	reqs := rec.all()
	if len(reqs) != 3 {
		t.Fatalf("gateway got %d deliveries, want 3", len(reqs))
	}
	first := openPush(t, app, reqs[0])
	nonces := map[string]bool{}
	for _, r := range reqs {
		if got := openPush(t, app, r); !reflect.DeepEqual(got, first) {
			t.Fatalf("duplicate %+v differs from %+v; want the same event", got, first)
		}
		nonces[r.query.Get("nonce")] = true
	}
	if len(nonces) < 2 {
		t.Fatal("duplicates share one nonce; want separate deliveries with fresh nonces")
	}

	if err := s.SetFaults(Faults{PushDropRate: 1}); err != nil {
		t.Fatal(err)
	}
	_ = s.Subscribe(testAppID, testUser, ActionAccept, tplOnce)
	waitPushes(t, s)
	if n := len(rec.all()); n != 3 {
		t.Fatalf("gateway got %d deliveries after a dropped push, want still 3", n)
	}
	if st := s.Stats(); st.Events != 2 || st.Pushes != 3 || st.PushesDropped != 1 {
		t.Fatalf("Stats = %+v, want 2 events, 3 deliveries, 1 dropped", st)
	}
}

func TestSentEventDelayAndFailure(t *testing.T) {
	rec := newReceiver(t)
	app := testApp()
	app.Mode, app.PushURL = ModePlaintext, rec.url
	s, base := start(t, Config{Apps: []AppConfig{app}, SentEventDelay: 50 * time.Millisecond})
	_ = s.Subscribe(testAppID, testUser, ActionAccept, tplLong)
	waitPushes(t, s)
	if err := s.SetFaults(Faults{SentEventErrcode: 10001, SentEventErrcodeNext: 1}); err != nil {
		t.Fatal(err)
	}
	tok := mustToken(t, base)
	sent := time.Now()
	send(t, base, tok, sendBody(testUser, tplLong, longData()))
	waitPushes(t, s)
	if waited := time.Since(sent); waited < 50*time.Millisecond {
		t.Fatalf("sent event pushed after %v, want at least the 50ms delay", waited)
	}
	send(t, base, tok, sendBody(testUser, tplLong, longData()))
	waitPushes(t, s)
	reqs := rec.all()
	if len(reqs) != 3 {
		t.Fatalf("gateway got %d pushes, want 3", len(reqs))
	}
	failed, ok := openPush(t, app, reqs[1]).Items[0], openPush(t, app, reqs[2]).Items[0]
	if failed.ErrorCode != "10001" || failed.ErrorStatus != "failed" {
		t.Fatalf("first sent event = %+v, want ErrorCode 10001, ErrorStatus failed", failed)
	}
	if ok.ErrorCode != "0" || ok.ErrorStatus != "success" {
		t.Fatalf("second sent event = %+v, want success once the fault is used up", ok)
	}
}

func TestNoSentEvents(t *testing.T) {
	rec := newReceiver(t)
	app := testApp()
	app.PushURL = rec.url
	s, base := start(t, Config{Apps: []AppConfig{app}, NoSentEvents: true})
	_ = s.Subscribe(testAppID, testUser, ActionAccept, tplLong)
	send(t, base, mustToken(t, base), sendBody(testUser, tplLong, longData()))
	waitPushes(t, s)
	if n := len(rec.all()); n != 1 {
		t.Fatalf("gateway got %d pushes, want only the popup event", n)
	}
}

// newSlowReceiver answers 200 at once, except that requests for which hang
// returns true wait until release is closed or the client gives up.
func newSlowReceiver(t *testing.T, hang func() bool, release <-chan struct{}) string {
	t.Helper()
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := hang()
		mu.Unlock()
		if h {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		_, _ = io.WriteString(w, "success")
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/wechat/" + testAppID
}
