package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/testclock"
)

const (
	testAppID  = "wx2c2769f8efd9abc2"
	testSecret = "test-secret"
	testToken  = "spamtest"
	testAESKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"

	tplOnce = "tpl-once"
	tplLong = "tpl-long"
	tplEnum = "tpl-enum"

	testUser = "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
)

// testApp is an app with a one-time, a long-term and an enum template.
func testApp() AppConfig {
	return AppConfig{
		AppID: testAppID, Secret: testSecret, Token: testToken, EncodingAESKey: testAESKey,
		Templates: []Template{
			{ID: tplOnce, Title: "会议提醒", Type: TemplateOneTime, Content: "会议时间:{{date2.DATA}}\n地点:{{thing3.DATA}}"},
			{ID: tplLong, Title: "办理进度", Type: TemplateLongTerm, Content: "状态:{{phrase1.DATA}}\n编号:{{character_string2.DATA}}"},
			{ID: tplEnum, Title: "发货通知", Content: "状态:{{enum2.DATA}}", Enums: map[string][]string{"enum2": {"未发货", "已发货"}}},
		},
	}
}

// onceData is valid data for tplOnce.
func onceData() map[string]any {
	return map[string]any{"date2": map[string]string{"value": "2019年10月1日 15:01"}, "thing3": map[string]string{"value": "三楼会议室"}}
}

func longData() map[string]any {
	return map[string]any{"phrase1": map[string]string{"value": "已受理"}, "character_string2": map[string]string{"value": "A-1024"}}
}

// newClock is a manual clock for token lifetimes.
func newClock() *testclock.Clock { return testclock.New(time.Unix(1714112445, 0)) }

// start runs a simulator for the test on a real port and closes it at cleanup.
func start(t *testing.T, cfg Config) (*Sim, string) {
	t.Helper()
	if cfg.PushRetryInterval == 0 {
		cfg.PushRetryInterval = 5 * time.Millisecond
	}
	s, base, err := Start(cfg, nil)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(s.Close)
	return s, base
}

// call makes one JSON API call and decodes the answer with numbers kept exact.
func call(t *testing.T, method, u string, body any) map[string]any {
	t.Helper()
	status, out := callStatus(t, method, u, body)
	if status != http.StatusOK {
		t.Fatalf("%s %s: status %d, body %v", method, u, status, out)
	}
	return out
}

func callStatus(t *testing.T, method, u string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object: %v", method, u, raw, err)
	}
	return resp.StatusCode, out
}

func errcodeOf(t *testing.T, m map[string]any) int {
	t.Helper()
	n, ok := m["errcode"].(json.Number)
	if !ok {
		return 0 // WeChat omits errcode on token successes
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatalf("errcode %v: %v", n, err)
	}
	return int(i)
}

func fetchToken(t *testing.T, base, appID, secret string) map[string]any {
	t.Helper()
	q := url.Values{"grant_type": {"client_credential"}, "appid": {appID}, "secret": {secret}}
	return call(t, http.MethodGet, base+"/cgi-bin/token?"+q.Encode(), nil)
}

func mustToken(t *testing.T, base string) string {
	t.Helper()
	m := fetchToken(t, base, testAppID, testSecret)
	tok, _ := m["access_token"].(string)
	if tok == "" {
		t.Fatalf("token call = %v, want an access_token", m)
	}
	return tok
}

func stableToken(t *testing.T, base string, force bool) map[string]any {
	t.Helper()
	return call(t, http.MethodPost, base+"/cgi-bin/stable_token", map[string]any{
		"grant_type": "client_credential", "appid": testAppID, "secret": testSecret, "force_refresh": force,
	})
}

// tokenErrcode probes a token with gettemplate, the cheapest authenticated call.
func tokenErrcode(t *testing.T, base, tok string) int {
	t.Helper()
	return errcodeOf(t, call(t, http.MethodGet, base+"/wxaapi/newtmpl/gettemplate?access_token="+url.QueryEscape(tok), nil))
}

func send(t *testing.T, base, tok string, body map[string]any) map[string]any {
	t.Helper()
	return call(t, http.MethodPost, base+"/cgi-bin/message/subscribe/send?access_token="+url.QueryEscape(tok), body)
}

func sendBody(openID, templateID string, data map[string]any) map[string]any {
	return map[string]any{"touser": openID, "template_id": templateID, "data": data}
}

// received is one request the test gateway got.
type received struct {
	query       url.Values
	body        []byte
	contentType string
}

// receiver plays the gateway: it records pushes and answers with the given
// statuses in turn, then 200.
type receiver struct {
	mu       sync.Mutex
	reqs     []received
	statuses []int
	url      string
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	t.Helper()
	r := &receiver{statuses: statuses}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, received{query: req.URL.Query(), body: body, contentType: req.Header.Get("Content-Type")})
		status := http.StatusOK
		if len(r.statuses) > 0 {
			status, r.statuses = r.statuses[0], r.statuses[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "success")
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/wechat/" + testAppID
	return r
}

func (r *receiver) all() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.reqs...)
}

func waitPushes(t *testing.T, s *Sim) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitPushes(ctx); err != nil {
		t.Fatalf("WaitPushes: %v", err)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*AppConfig)
		want   string
	}{
		{"no appid", func(a *AppConfig) { a.AppID = "" }, "appid"},
		{"no secret", func(a *AppConfig) { a.Secret = "" }, "secret"},
		{"no token", func(a *AppConfig) { a.Token = "" }, "token"},
		{"bad mode", func(a *AppConfig) { a.Mode = "loud" }, "mode"},
		{"bad format", func(a *AppConfig) { a.Format = "yaml" }, "format"},
		{"bad push url", func(a *AppConfig) { a.PushURL = "ftp://x" }, "push_url"},
		{"bad key", func(a *AppConfig) { a.EncodingAESKey = "short" }, "encoding_aes_key"},
		{"bad template type", func(a *AppConfig) { a.Templates[0].Type = 7 }, "type"},
		{"duplicate template", func(a *AppConfig) { a.Templates[1].ID = a.Templates[0].ID }, "appears twice"},
		{"template without keywords", func(a *AppConfig) { a.Templates[0].Content = "nothing" }, "content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := testApp()
			tt.mutate(&a)
			_, err := New(Config{Apps: []AppConfig{a}}, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New(%s) = %v, want an error naming %q", tt.name, err, tt.want)
			}
			if strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), testAESKey) {
				t.Fatalf("New(%s) error %q leaks a secret", tt.name, err)
			}
		})
	}
	if _, err := New(Config{}, nil); err == nil {
		t.Fatal("New(no apps) = nil error, want one")
	}
	// A plaintext app needs no AES key.
	a := testApp()
	a.Mode, a.EncodingAESKey = ModePlaintext, ""
	if _, err := New(Config{Apps: []AppConfig{a}}, nil); err != nil {
		t.Fatalf("New(plaintext without key) = %v, want nil", err)
	}
}

func TestTokenErrors(t *testing.T) {
	_, base := start(t, Config{Apps: []AppConfig{testApp()}})
	tests := []struct {
		name                 string
		grant, appID, secret string
		wantErrcode          int
	}{
		{"bad appid", "client_credential", "wxunknown", testSecret, 40013},
		{"bad secret", "client_credential", testAppID, "wrong", 40001},
		{"bad grant type", "password", testAppID, testSecret, 40002},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := url.Values{"grant_type": {tt.grant}, "appid": {tt.appID}, "secret": {tt.secret}}
			m := call(t, http.MethodGet, base+"/cgi-bin/token?"+q.Encode(), nil)
			if got := errcodeOf(t, m); got != tt.wantErrcode {
				t.Fatalf("token(%s) errcode = %d, want %d", tt.name, got, tt.wantErrcode)
			}
		})
	}
}

func TestTokenRotationAndOverlap(t *testing.T) {
	clk := newClock()
	s, base := start(t, Config{Apps: []AppConfig{testApp()}, Clock: clk.Now})

	m := fetchToken(t, base, testAppID, testSecret)
	if got := m["expires_in"]; got != json.Number("7200") {
		t.Fatalf("expires_in = %v, want 7200", got)
	}
	t1 := m["access_token"].(string)
	t2 := mustToken(t, base)
	if t1 == t2 {
		t.Fatal("second /cgi-bin/token call returned the same token, want a new one")
	}
	if got := tokenErrcode(t, base, t1); got != 0 {
		t.Fatalf("replaced token inside the overlap: errcode %d, want 0", got)
	}
	clk.Advance(DefaultTokenOverlap)
	if got := tokenErrcode(t, base, t1); got != 40001 {
		t.Fatalf("replaced token after the overlap: errcode %d, want 40001", got)
	}
	if got := tokenErrcode(t, base, t2); got != 0 {
		t.Fatalf("current token: errcode %d, want 0", got)
	}
	clk.Advance(DefaultTokenTTL)
	if got := tokenErrcode(t, base, t2); got != 42001 {
		t.Fatalf("current token after its TTL: errcode %d, want 42001", got)
	}

	st := s.Stats().Apps[testAppID]
	if st.TokenCalls != 2 || st.TokensIssued != 2 || st.StableTokenCalls != 0 {
		t.Fatalf("Stats = %+v, want 2 token calls, 2 issued, 0 stable calls", st)
	}
}

func TestStableToken(t *testing.T) {
	clk := newClock()
	s, base := start(t, Config{Apps: []AppConfig{testApp()}, Clock: clk.Now})

	first := stableToken(t, base, false)
	tok := first["access_token"].(string)
	clk.Advance(100 * time.Second)
	again := stableToken(t, base, false)
	if again["access_token"] != tok {
		t.Fatal("stable_token returned a new token while the old one lives, want the same")
	}
	if got := again["expires_in"]; got != json.Number("7100") {
		t.Fatalf("expires_in after 100 s = %v, want 7100", got)
	}
	// A plain token fetch must not disturb the stable token.
	mustToken(t, base)
	clk.Advance(DefaultTokenOverlap + time.Second)
	if got := tokenErrcode(t, base, tok); got != 0 {
		t.Fatalf("stable token after a /cgi-bin/token call: errcode %d, want 0", got)
	}

	forced := stableToken(t, base, true)
	newTok := forced["access_token"].(string)
	if newTok == tok {
		t.Fatal("force_refresh returned the old token, want a new one")
	}
	if got := tokenErrcode(t, base, tok); got != 0 {
		t.Fatalf("old stable token inside the overlap: errcode %d, want 0", got)
	}
	if got := errcodeOf(t, stableToken(t, base, true)); got != 45011 {
		t.Fatalf("second force_refresh within 30 s: errcode %d, want 45011", got)
	}
	if got := stableToken(t, base, false)["access_token"]; got != newTok {
		t.Fatalf("stable_token after force_refresh = %v, want the refreshed token", got)
	}
	clk.Advance(DefaultForceRefreshGap)
	if got := stableToken(t, base, true)["access_token"]; got == newTok || got == nil {
		t.Fatalf("force_refresh after 30 s = %v, want a new token", got)
	}

	clk.Advance(DefaultTokenTTL)
	expired := stableToken(t, base, false)
	if expired["access_token"] == newTok || expired["expires_in"] != json.Number("7200") {
		t.Fatalf("stable_token after expiry = %v, want a fresh token with expires_in 7200", expired)
	}
	st := s.Stats().Apps[testAppID]
	if st.StableTokenCalls != 7 || st.TokenCalls != 1 || st.TokensIssued != 5 {
		t.Fatalf("Stats = %+v, want 7 stable calls, 1 token call, 5 issued", st)
	}
}

func TestTokenCallLimit(t *testing.T) {
	_, base := start(t, Config{Apps: []AppConfig{testApp()}, TokenCallLimit: 2})
	mustToken(t, base)
	mustToken(t, base)
	if got := errcodeOf(t, fetchToken(t, base, testAppID, testSecret)); got != 45009 {
		t.Fatalf("third token call with limit 2: errcode %d, want 45009", got)
	}
}

func TestServe(t *testing.T) {
	s, err := New(Config{Apps: []AppConfig{testApp()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	if tok := mustToken(t, base); tokenErrcode(t, base, tok) != 0 {
		t.Fatal("token from Serve does not work")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel = %v, want nil", err)
	}
}
