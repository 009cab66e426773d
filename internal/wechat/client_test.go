package wechat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/broker/natstest"
	"github.com/wxgate/wxgate/internal/sim"
	"github.com/wxgate/wxgate/schemas"
)

const testUser = "oyORnuP8q7ou2gfYjqLzSIWZf0rs"

// setup runs a simulator, a NATS server, one Tokens and a Client.
func setup(t *testing.T, cfg sim.Config, tokenAPI string) (*sim.Sim, *Tokens, *Client) {
	t.Helper()
	s, base := startSim(t, cfg)
	srv := natstest.Start(t)
	apps := []App{testApp(base, tokenAPI)}
	tk := newTokens(t, srv, apps, TokenOptions{})
	return s, tk, NewClient(apps, tk, nil)
}

func TestSendReturnsExactMsgID(t *testing.T) {
	s, _, c := setup(t, sim.Config{}, "")
	subscribe(t, s, testUser)
	ctx := testCtx(t)
	msgID, err := c.Send(ctx, testAppID, sendBody(t, testUser))
	if err != nil {
		t.Fatalf("Send() = %v", err)
	}
	msgs, err := s.Messages(testAppID)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("sim.Messages = %d messages, %v; want 1", len(msgs), err)
	}
	if msgID != msgs[0].MsgID {
		t.Errorf("Send() msgid = %q, want %q", msgID, msgs[0].MsgID)
	}
	n, ok := new(big.Int).SetString(msgID, 10)
	if !ok || n.Cmp(new(big.Int).Lsh(big.NewInt(1), 53)) <= 0 {
		t.Errorf("msgid %q is not an integer above 2^53; the test proves nothing", msgID)
	}
}

func TestSendRetriesOnceAfterExpiredToken(t *testing.T) {
	s, tk, c := setup(t, sim.Config{}, "")
	subscribe(t, s, testUser)
	ctx := testCtx(t)
	body := sendBody(t, testUser)
	if _, err := c.Send(ctx, testAppID, body); err != nil {
		t.Fatalf("first Send() = %v", err)
	}
	if err := s.SetFaults(sim.Faults{ExpireTokens: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(ctx, testAppID, body); err != nil {
		t.Fatalf("Send() after token expiry = %v, want success after one refresh", err)
	}
	st := s.Stats().Apps[testAppID]
	if st.Sends[0] != 2 || st.Sends[CodeAccessTokenExpired] != 1 || st.StableTokenCalls != 2 {
		t.Errorf("sim stats = %+v, want 2 sent, one 42001, 2 stable_token calls", st)
	}
	if ts := tk.Stats(testAppID); ts.Fetches != 2 || ts.Forced != 0 {
		t.Errorf("token stats = %+v, want 2 fetches, none forced", ts)
	}
}

func TestSendTokenErrorTwiceReturnsIt(t *testing.T) {
	s, tk, c := setup(t, sim.Config{}, "")
	subscribe(t, s, testUser)
	ctx := testCtx(t)
	if _, err := tk.Token(ctx, testAppID); err != nil {
		t.Fatal(err)
	}
	// WeChat rejects a token it still hands out, twice in a row.
	if err := s.SetFaults(sim.Faults{SendErrcode: CodeInvalidCredential, SendErrcodeNext: 2}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Send(ctx, testAppID, sendBody(t, testUser))
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Code != CodeInvalidCredential || !IsTokenError(err) {
		t.Fatalf("Send() = %v, want *APIError 40001", err)
	}
	if ts := tk.Stats(testAppID); ts.Fetches != 3 || ts.Forced != 1 {
		t.Errorf("token stats = %+v, want 3 fetches (first, unforced, forced), 1 forced", ts)
	}
	if n := s.Stats().Apps[testAppID].Sends[CodeInvalidCredential]; n != 2 {
		t.Errorf("sends answered 40001 = %d, want 2 (one retry only)", n)
	}
}

func TestSendErrcodes(t *testing.T) {
	s, _, c := setup(t, sim.Config{}, "")
	subscribe(t, s, testUser)
	ctx := testCtx(t)
	body := func(req schemas.SendRequest) []byte {
		b, err := req.WeChatBody()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	valid := schemas.SendRequest{ToUser: testUser, TemplateID: tplLong, Data: map[string]string{"phrase1": "已受理", "character_string2": "A-1024"}}
	tests := []struct {
		name      string
		faults    sim.Faults
		req       schemas.SendRequest
		code      int
		msg       string
		retryable bool
	}{
		{name: "47003 names the field", req: schemas.SendRequest{ToUser: testUser, TemplateID: tplLong,
			Data: map[string]string{"phrase1": "这个短语太长了", "character_string2": "A-1024"}},
			code: CodeInvalidData, msg: "data.phrase1.value invalid"},
		{name: "40003 bad openid", req: schemas.SendRequest{ToUser: "not an openid", TemplateID: tplLong, Data: valid.Data}, code: CodeInvalidOpenID},
		{name: "40037 unknown template", req: schemas.SendRequest{ToUser: testUser, TemplateID: "tpl-nope", Data: valid.Data}, code: CodeInvalidTemplateID},
		{name: "43101 no consent", req: schemas.SendRequest{ToUser: "o-never-asked", TemplateID: tplLong, Data: valid.Data}, code: CodeUserRefused},
		{name: "-1 busy", faults: sim.Faults{SendErrcode: CodeBusy, SendErrcodeNext: 1}, req: valid, code: CodeBusy, retryable: true},
		{name: "43108 concurrent", faults: sim.Faults{SendErrcode: CodeConcurrentSend, SendErrcodeNext: 1}, req: valid, code: CodeConcurrentSend, retryable: true},
		{name: "45009 quota", faults: sim.Faults{SendErrcode: CodeDailyQuota, SendErrcodeNext: 1}, req: valid, code: CodeDailyQuota},
		{name: "43107 banned", faults: sim.Faults{SendErrcode: CodeAbilityBanned, SendErrcodeNext: 1}, req: valid, code: CodeAbilityBanned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			_, err := c.Send(ctx, testAppID, body(tt.req))
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Code != tt.code || apiErr.Op != OpSend || apiErr.AppID != testAppID {
				t.Fatalf("Send(%s) = %v, want *APIError %d", tt.name, err, tt.code)
			}
			if !strings.Contains(apiErr.Msg, tt.msg) {
				t.Errorf("Send(%s) errmsg = %q, want it to contain %q", tt.name, apiErr.Msg, tt.msg)
			}
			if got := IsRetryable(err); got != tt.retryable {
				t.Errorf("IsRetryable(%v) = %v, want %v", err, got, tt.retryable)
			}
			if IsTokenError(err) {
				t.Errorf("IsTokenError(%v) = true, want false", err)
			}
		})
	}
}

func TestSendNetworkFailureIsRetryable(t *testing.T) {
	s, tk, c := setup(t, sim.Config{}, "")
	ctx := testCtx(t)
	token, err := tk.Token(ctx, testAppID)
	if err != nil {
		t.Fatal(err)
	}
	s.Close() // WeChat goes away; the token stays cached
	_, err = c.Send(ctx, testAppID, sendBody(t, testUser))
	var netErr *NetError
	if !errors.As(err, &netErr) || !IsRetryable(err) {
		t.Fatalf("Send() to a closed server = %v, want a retryable *NetError", err)
	}
	assertNoSecret(t, err, testSecret, token)
}

func TestSendUnknownAppAndBadBody(t *testing.T) {
	_, _, c := setup(t, sim.Config{}, "")
	ctx := testCtx(t)
	if _, err := c.Send(ctx, "wx-unknown", []byte(`{}`)); !errors.Is(err, ErrUnknownApp) {
		t.Errorf("Send(unknown app) = %v, want ErrUnknownApp", err)
	}
	if _, err := c.Send(ctx, testAppID, nil); err == nil {
		t.Error("Send(empty body) = nil error, want one")
	}
	if _, err := c.Send(ctx, testAppID, make([]byte, maxRequestBody+1)); err == nil {
		t.Error("Send(oversized body) = nil error, want one")
	}
}

func TestTemplates(t *testing.T) {
	s, _, c := setup(t, sim.Config{}, "")
	ctx := testCtx(t)
	got, err := c.Templates(ctx, testAppID)
	if err != nil {
		t.Fatalf("Templates() = %v", err)
	}
	var ids []string
	keys := map[string][]string{}
	for _, tpl := range got {
		ids = append(ids, tpl.ID)
		for _, k := range tpl.Keywords {
			keys[tpl.ID] = append(keys[tpl.ID], k.Key+":"+k.Type)
		}
	}
	if want := []string{tplLong, tplOnce, tplEnum}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("template ids = %v, want %v", ids, want)
	}
	if want := []string{"phrase1:phrase", "character_string2:character_string"}; !reflect.DeepEqual(keys[tplLong], want) {
		t.Errorf("keywords of %s = %v, want %v", tplLong, keys[tplLong], want)
	}
	if got[0].Type != schemas.TemplateLongTerm || got[1].Type != schemas.TemplateOneTime {
		t.Errorf("types = %d, %d; want %d, %d", got[0].Type, got[1].Type, schemas.TemplateLongTerm, schemas.TemplateOneTime)
	}
	if enum := got[2].Keywords; len(enum) != 1 || !reflect.DeepEqual(enum[0].Enum, []string{"未发货", "已发货"}) {
		t.Errorf("enum keyword of %s = %+v, want values 未发货, 已发货", tplEnum, enum)
	}

	// An expired token is refreshed and the call retried, as for sends.
	if err := s.SetFaults(sim.Faults{ExpireTokens: true}); err != nil {
		t.Fatal(err)
	}
	if again, err := c.Templates(ctx, testAppID); err != nil || len(again) != 3 {
		t.Errorf("Templates() after token expiry = %d templates, %v; want 3", len(again), err)
	}
}

// hostile serves answers WeChat's edge or a broken proxy might give, which the
// simulator never does. The token endpoint always works; send answers with
// the body the test sets.
type hostile struct {
	srv      *httptest.Server
	token    string
	sendBody atomic.Pointer[string]
	status   atomic.Int32
	redirect atomic.Pointer[string]
}

func newHostile(t *testing.T) *hostile {
	t.Helper()
	h := &hostile{token: "HOSTILE-token-abcdefghijklmnopqrstuvwxyz0123456789"}
	mux := http.NewServeMux()
	mux.HandleFunc("/cgi-bin/stable_token", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"access_token":%q,"expires_in":7200}`, h.token)
	})
	mux.HandleFunc("/cgi-bin/token", func(w http.ResponseWriter, r *http.Request) {
		if to := h.redirect.Load(); to != nil {
			http.Redirect(w, r, *to+r.URL.RequestURI(), http.StatusFound)
			return
		}
		// Echo the secret back in errmsg, as no real server should.
		fmt.Fprintf(w, `{"errcode":40001,"errmsg":"invalid credential %s"}`, r.URL.Query().Get("secret"))
	})
	mux.HandleFunc("/cgi-bin/message/subscribe/send", func(w http.ResponseWriter, _ *http.Request) {
		if code := h.status.Load(); code != 0 {
			w.WriteHeader(int(code))
		}
		if b := h.sendBody.Load(); b != nil {
			_, _ = io.WriteString(w, *b)
		}
	})
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hostile) answer(status int, body string) {
	h.status.Store(int32(status))
	h.sendBody.Store(&body)
}

func TestSendDecodesHostileAnswers(t *testing.T) {
	h := newHostile(t)
	srv := natstest.Start(t)
	apps := []App{testApp(h.srv.URL, TokenAPIStable)}
	tk := newTokens(t, srv, apps, TokenOptions{})
	c := NewClient(apps, tk, nil)
	ctx := testCtx(t)
	tests := []struct {
		name      string
		status    int
		body      string
		wantID    string
		wantErr   error // matched with errors.Is; nil means success
		retryable bool
	}{
		{name: "msgid number", body: `{"errcode":0,"errmsg":"ok","msgid":3248682510344192008}`, wantID: "3248682510344192008"},
		{name: "msgid string", body: `{"errcode":0,"errmsg":"ok","msgid":"18446744073709551615"}`, wantID: "18446744073709551615"},
		{name: "no msgid", body: `{"errcode":0,"errmsg":"ok"}`, wantID: ""},
		{name: "no errcode", body: `{"msgid":7}`, wantID: "7"},
		{name: "msgid float", body: `{"errcode":0,"msgid":3.2e18}`, wantErr: ErrMalformedResponse},
		{name: "msgid negative", body: `{"errcode":0,"msgid":-5}`, wantErr: ErrMalformedResponse},
		{name: "errcode huge", body: `{"errcode":99999999999}`, wantErr: ErrMalformedResponse},
		{name: "html", body: `<html>gateway</html>`, wantErr: ErrMalformedResponse},
		{name: "oversized", body: `{"errcode":0,"errmsg":"` + strings.Repeat("x", maxResponseBody) + `"}`, wantErr: ErrMalformedResponse},
		{name: "502", status: http.StatusBadGateway, body: "bad gateway", wantErr: &HTTPStatusError{}, retryable: true},
		{name: "429", status: http.StatusTooManyRequests, wantErr: &HTTPStatusError{}, retryable: true},
		{name: "404", status: http.StatusNotFound, wantErr: &HTTPStatusError{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.answer(tt.status, tt.body)
			id, err := c.Send(ctx, testAppID, []byte(`{"touser":"o"}`))
			switch want := tt.wantErr.(type) {
			case nil:
				if err != nil || id != tt.wantID {
					t.Fatalf("Send(%s) = %q, %v; want %q", tt.name, id, err, tt.wantID)
				}
			case *HTTPStatusError:
				if !errors.As(err, &want) || want.StatusCode != tt.status {
					t.Fatalf("Send(%s) = %v, want HTTP status %d", tt.name, err, tt.status)
				}
			default:
				if !errors.Is(err, want) {
					t.Fatalf("Send(%s) = %v, want %v", tt.name, err, want)
				}
			}
			if err != nil && IsRetryable(err) != tt.retryable {
				t.Errorf("IsRetryable(%v) = %v, want %v", err, !tt.retryable, tt.retryable)
			}
			if err != nil {
				assertNoSecret(t, err, testSecret, h.token)
			}
		})
	}
}

func TestErrorsNeverContainSecrets(t *testing.T) {
	s, base := startSim(t, sim.Config{})
	h := newHostile(t)
	// A redirect target that must never see the secret.
	var elsewhereHits atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { elsewhereHits.Add(1) }))
	t.Cleanup(elsewhere.Close)
	// Nothing can listen on port 0 (binding it picks another port), so a dial
	// to it fails: Linux refuses the connection.
	const closed = "http://127.0.0.1:0"
	srv := natstest.Start(t)

	tests := []struct {
		name   string
		app    App
		faults sim.Faults
		setup  func()
		ctx    func() (context.Context, context.CancelFunc)
		code   int // expected errcode, 0 for none
	}{
		{name: "token: wrong secret", app: App{AppID: testAppID, Secret: "wrong-" + testSecret, APIBase: base, TokenAPI: TokenAPIPlain}, code: CodeInvalidCredential},
		{name: "stable_token: wrong secret", app: App{AppID: testAppID, Secret: "wrong-" + testSecret, APIBase: base}, code: CodeInvalidCredential},
		{name: "token: unknown appid", app: App{AppID: "wx0000000000000000", Secret: testSecret, APIBase: base, TokenAPI: TokenAPIPlain}, code: CodeInvalidAppID},
		{name: "token: IP not whitelisted", app: testApp(base, TokenAPIPlain), faults: sim.Faults{TokenErrcode: CodeIPNotWhitelisted, TokenErrcodeNext: 1}, code: CodeIPNotWhitelisted},
		{name: "token: quota", app: testApp(base, TokenAPIPlain), faults: sim.Faults{TokenErrcode: CodeDailyQuota, TokenErrcodeNext: 1}, code: CodeDailyQuota},
		{name: "stable_token: busy", app: testApp(base, TokenAPIStable), faults: sim.Faults{TokenErrcode: CodeBusy, TokenErrcodeNext: 1}, code: CodeBusy},
		{name: "token: connection refused", app: testApp(closed, TokenAPIPlain)},
		{name: "stable_token: connection refused", app: testApp(closed, TokenAPIStable)},
		{name: "token: timeout", app: testApp(blackhole(t), TokenAPIPlain), ctx: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 200*time.Millisecond)
		}},
		{name: "token: errmsg echoes the secret", app: testApp(h.srv.URL, TokenAPIPlain), code: CodeInvalidCredential},
		{name: "token: redirect elsewhere", app: testApp(h.srv.URL, TokenAPIPlain), setup: func() {
			to := elsewhere.URL
			h.redirect.Store(&to)
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			if tt.setup != nil {
				tt.setup()
			}
			_, js := srv.Connect()
			tk, err := NewTokens(context.Background(), js, []App{tt.app}, nil, nil, TokenOptions{Bucket: fmt.Sprintf("secrets_%d", i)})
			if err != nil {
				t.Fatal(err)
			}
			defer tk.Close()
			ctx, cancel := context.WithCancel(context.Background())
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			_, err = tk.Token(ctx, tt.app.AppID)
			if err == nil {
				t.Fatalf("Token(%s) = nil error, want one", tt.name)
			}
			t.Logf("Token(%s) error: %v", tt.name, err)
			assertNoSecret(t, err, tt.app.Secret, testSecret)
			var apiErr *APIError
			if tt.code != 0 && (!errors.As(err, &apiErr) || apiErr.Code != tt.code) {
				t.Errorf("Token(%s) = %v, want errcode %d", tt.name, err, tt.code)
			}
			if IsTokenError(err) {
				t.Errorf("IsTokenError(%v) = true for a token endpoint failure, want false", err)
			}
			// The recorded failure another instance would report is just as clean.
			if _, err := tk.Token(ctx, tt.app.AppID); err != nil {
				assertNoSecret(t, err, tt.app.Secret, testSecret)
			}
		})
	}
	if n := elsewhereHits.Load(); n != 0 {
		t.Errorf("redirect target got %d requests, want 0", n)
	}
}

// assertNoSecret fails if err, or any error it wraps, mentions a secret.
func assertNoSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, e := range unwrapAll(err) {
		for _, form := range []string{e.Error(), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e)} {
			for _, sec := range secrets {
				if sec != "" && strings.Contains(form, sec) {
					t.Errorf("error %q leaks a secret", form)
				}
			}
		}
	}
}

func unwrapAll(err error) []error {
	out := []error{err}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		if inner := u.Unwrap(); inner != nil {
			out = append(out, unwrapAll(inner)...)
		}
	case interface{ Unwrap() []error }:
		for _, inner := range u.Unwrap() {
			out = append(out, unwrapAll(inner)...)
		}
	}
	return out
}

// blackhole is an http URL whose server accepts connections and never answers.
func blackhole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // listener closed at cleanup
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return "http://" + ln.Addr().String()
}
