package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wxgate/wxgate/internal/admin"
	"github.com/wxgate/wxgate/internal/admin/admintest"
	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
)

var _ admin.Service = (*processor.Processor)(nil)

const (
	appID  = admintest.AppID
	token  = admintest.Token
	tplA   = "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc"
	tplB   = "9Aw5ZV1j9xdWTFEkqCpZ7mIBbSC34khK55OtzUPl0rU"
	openID = "o9AgO5Kd5ggOC-bXrbNODIiE3bGY"
)

// reply is one HTTP answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// call sends one request; headers are name, value pairs.
func call(t *testing.T, s *admintest.Server, method, path, tok, body string, headers ...string) reply {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, s.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// decode unmarshals the reply's body into v.
func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
}

// errorReply is the shape of every error body.
type errorReply struct {
	Error  string              `json:"error"`
	Fields schemas.FieldErrors `json:"fields"`
}

func (e errorReply) fieldNames() []string {
	var out []string
	for _, f := range e.Fields {
		out = append(out, f.Field)
	}
	return out
}

func TestAuth(t *testing.T) {
	s := admintest.Start(t, admintest.Options{Tokens: []string{"first-token", "", "second-token"}})
	tests := []struct {
		name   string
		header string
		want   int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"empty bearer", "Bearer ", http.StatusUnauthorized},
		{"wrong token", "Bearer first-tokeN", http.StatusUnauthorized},
		{"prefix of a token", "Bearer first", http.StatusUnauthorized},
		{"longer than a token", "Bearer first-token-and-more", http.StatusUnauthorized},
		{"basic scheme", "Basic Zmlyc3QtdG9rZW4=", http.StatusUnauthorized},
		{"token without scheme", "first-token", http.StatusUnauthorized},
		{"first token", "Bearer first-token", http.StatusOK},
		{"second token", "Bearer second-token", http.StatusOK},
		{"scheme in lower case", "bearer second-token", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, s, http.MethodGet, "/v1/dlq", "", "", "Authorization", tt.header)
			if r.status != tt.want {
				t.Fatalf("GET /v1/dlq with Authorization %q = %d %s, want %d", tt.header, r.status, r.body, tt.want)
			}
			if tt.want != http.StatusUnauthorized {
				return
			}
			if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", got)
			}
			var e errorReply
			r.decode(t, &e)
			if e.Error != "unauthorized" {
				t.Errorf("error = %q, want unauthorized", e.Error)
			}
		})
	}
	// Authentication comes first: an unknown app is not revealed to a caller without a token.
	if r := call(t, s, http.MethodGet, "/v1/apps/wxunknown/events", "nope", ""); r.status != http.StatusUnauthorized {
		t.Errorf("unknown app without a valid token = %d, want 401", r.status)
	}
}

func TestNoTokensConfiguredRefusesEverything(t *testing.T) {
	s := admintest.Start(t, admintest.Options{Tokens: []string{"", ""}})
	for _, path := range []string{"/v1/dlq", "/v1/apps/" + appID + "/events"} {
		for _, tok := range []string{"", " ", "change-me"} {
			if r := call(t, s, http.MethodGet, path, "", "", "Authorization", "Bearer "+tok); r.status != http.StatusUnauthorized {
				t.Errorf("GET %s with token %q = %d, want 401", path, tok, r.status)
			}
		}
	}
}

func TestUnknownApp(t *testing.T) {
	s := admintest.Start(t, admintest.Options{})
	for _, rq := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/apps/wxnotmine/messages", `{"touser":"o","template_id":"t","data":{"thing1":"x"}}`},
		{http.MethodGet, "/v1/apps/wxnotmine/messages", ""},
		{http.MethodGet, "/v1/apps/wxnotmine/messages/m1", ""},
		{http.MethodGet, "/v1/apps/wxnotmine/consents/" + openID, ""},
		{http.MethodPost, "/v1/apps/wxnotmine/consents", `{"openid":"o","results":{"t":"accept"}}`},
		{http.MethodGet, "/v1/apps/wxnotmine/events", ""},
	} {
		r := call(t, s, rq.method, rq.path, token, rq.body)
		var e errorReply
		r.decode(t, &e)
		if r.status != http.StatusNotFound || e.Error != "unknown appid" {
			t.Errorf("%s %s = %d %q, want 404 unknown appid", rq.method, rq.path, r.status, e.Error)
		}
	}
}

// ledgerReply is the shape of a consent answer.
type ledgerReply struct {
	AppID     string `json:"appid"`
	OpenID    string `json:"openid"`
	RequestID string `json:"request_id"`
	Consents  []struct {
		TemplateID string    `json:"template_id"`
		Kind       string    `json:"kind"`
		Status     string    `json:"status"`
		Grants     int       `json:"grants"`
		UpdatedAt  time.Time `json:"updated_at"`
		History    []struct {
			Source string `json:"source"`
			Action string `json:"action"`
			Grants int    `json:"grants"`
		} `json:"history"`
	} `json:"consents"`
}

// summary renders a ledger as "template:status/grants/history" entries.
func (l ledgerReply) summary() string {
	var parts []string
	for _, c := range l.Consents {
		parts = append(parts, fmt.Sprintf("%s:%s/%s/%d/%d", c.TemplateID[:4], c.Kind, c.Status, c.Grants, len(c.History)))
	}
	return strings.Join(parts, " ")
}

func TestConsents(t *testing.T) {
	s := admintest.Start(t, admintest.Options{})
	path := "/v1/apps/" + appID + "/consents"
	report := func(body string, headers ...string) ledgerReply {
		t.Helper()
		r := call(t, s, http.MethodPost, path, token, body, headers...)
		if r.status != http.StatusOK {
			t.Fatalf("POST %s %s = %d %s, want 200", path, body, r.status, r.body)
		}
		var l ledgerReply
		r.decode(t, &l)
		return l
	}
	get := func() ledgerReply {
		t.Helper()
		r := call(t, s, http.MethodGet, path+"/"+openID, token, "")
		if r.status != http.StatusOK {
			t.Fatalf("GET ledger = %d %s", r.status, r.body)
		}
		var l ledgerReply
		r.decode(t, &l)
		return l
	}

	if l := get(); len(l.Consents) != 0 || l.OpenID != openID || l.AppID != appID {
		t.Errorf("ledger of a new user = %+v, want empty for %s/%s", l, appID, openID)
	}
	first := fmt.Sprintf(`{"openid":%q,"results":{%q:"accept",%q:"reject"},"request_id":"popup-1"}`, openID, tplA, tplB)
	l := report(first)
	if got, want := l.summary(), "9Aw5:one_time/rejected/0/1 VRR0:one_time/accepted/1/1"; got != want || l.RequestID != "popup-1" {
		t.Errorf("after the first report: %q (request %q), want %q (request popup-1)", got, l.RequestID, want)
	}
	// The same request again changes nothing.
	report(first)
	// The same request id given as Idempotency-Key (and in the body) changes nothing either.
	report(first, "Idempotency-Key", "popup-1")
	// A second popup, identified by the header, adds a grant.
	l = report(fmt.Sprintf(`{"openid":%q,"results":{%q:"accept"}}`, openID, tplA), "Idempotency-Key", "popup-2")
	if l.RequestID != "popup-2" || len(l.Consents) != 1 || l.Consents[0].Grants != 2 {
		t.Errorf("second popup answer = %+v, want one consent with 2 grants under popup-2", l)
	}
	if got, want := get().summary(), "9Aw5:one_time/rejected/0/1 VRR0:one_time/accepted/2/2"; got != want {
		t.Errorf("ledger = %q, want %q", got, want)
	}
	// Without a request id each POST is a new popup, and the answer says which id it used.
	l = report(fmt.Sprintf(`{"openid":%q,"results":{%q:"accept"}}`, openID, tplB))
	if !strings.HasPrefix(l.RequestID, "api-") {
		t.Errorf("generated request id = %q, want api-…", l.RequestID)
	}
	if got, want := get().summary(), "9Aw5:one_time/accepted/1/2 VRR0:one_time/accepted/2/2"; got != want {
		t.Errorf("ledger = %q, want %q", got, want)
	}

	bad := []struct {
		name       string
		body       string
		headers    []string
		wantFields []string
	}{
		{"empty object", `{}`, nil, []string{"openid", "results"}},
		{"bad results", `{"openid":"o1","results":{"T1":"yes","":"accept"}}`, nil, []string{"results", "results.T1"}},
		{"too many results", fmt.Sprintf(`{"openid":"o1","results":{%s}}`, manyResults(65)), nil, []string{"results"}},
		{"openid too long", fmt.Sprintf(`{"openid":%q,"results":{"T1":"accept"}}`, strings.Repeat("o", 129)), nil, []string{"openid"}},
		{"wrong type", `{"openid":42,"results":{"T1":"accept"}}`, nil, []string{"openid"}},
		{"value of the wrong type", `{"openid":"o1","results":{"T1":1}}`, nil, []string{"results"}},
		{"not JSON", `accept`, nil, []string{""}},
		{"ids differ", `{"openid":"o1","results":{"T1":"accept"},"request_id":"a"}`, []string{"Idempotency-Key", "b"}, []string{"request_id"}},
		{"bad idempotency key", `{"openid":"o1","results":{"T1":"accept"}}`, []string{"Idempotency-Key", strings.Repeat("k", 129)}, []string{"Idempotency-Key"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, s, http.MethodPost, path, token, tt.body, tt.headers...)
			var e errorReply
			r.decode(t, &e)
			got := e.fieldNames()
			slices.Sort(got)
			if r.status != http.StatusBadRequest || e.Error != "invalid request" || !slices.Equal(got, tt.wantFields) {
				t.Errorf("POST %s = %d %q fields %q, want 400 invalid request fields %q", tt.body, r.status, e.Error, got, tt.wantFields)
			}
		})
	}
	if r := call(t, s, http.MethodGet, path+"/"+strings.Repeat("o", 129), token, ""); r.status != http.StatusBadRequest {
		t.Errorf("GET ledger of a 129-character openid = %d, want 400", r.status)
	}
}

func manyResults(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`"T%d":"accept"`, i)
	}
	return strings.Join(parts, ",")
}

// page is the shape of a listing.
type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

type eventItem struct {
	ID         string        `json:"id"`
	OpenID     string        `json:"openid"`
	Event      string        `json:"event"`
	ReceivedAt time.Time     `json:"received_at"`
	Data       schemas.Event `json:"data"`
}

func TestEventsPagination(t *testing.T) {
	s := admintest.Start(t, admintest.Options{})
	const n = 7
	base := time.Now().Add(-time.Hour).Unix()
	want := map[string]bool{}
	for i := range n {
		user := openID
		if i%3 == 2 {
			user = "oOther_xxxxxxxxxxxxxxxxxxxxxx"
		}
		want[s.Push(appID, admintest.PopupAccept(user, tplA, base+int64(i)))] = true
		// Keep the events' received times apart, so the order is the order sent.
		s.Drained()
	}

	var got []eventItem
	cursor, pages := "", 0
	for {
		r := call(t, s, http.MethodGet, "/v1/apps/"+appID+"/events?limit=3&cursor="+cursor, token, "")
		if r.status != http.StatusOK {
			t.Fatalf("events page %d = %d %s", pages, r.status, r.body)
		}
		var p page[eventItem]
		r.decode(t, &p)
		got = append(got, p.Items...)
		pages++
		if p.NextCursor == "" || pages > n {
			break
		}
		cursor = p.NextCursor
	}
	if pages != 3 || len(got) != n {
		t.Fatalf("listing gave %d events in %d pages, want %d in 3", len(got), pages, n)
	}
	for i, e := range got {
		if !want[e.ID] {
			t.Errorf("event %d: id %s was not published, or listed twice", i, e.ID)
		}
		delete(want, e.ID)
		if e.Event != schemas.EventSubscribePopup || e.Data.AppID != appID || len(e.Data.Items) != 1 {
			t.Errorf("event %d = %+v, want a popup event of %s with one item", i, e, appID)
		}
		if i > 0 && e.ReceivedAt.After(got[i-1].ReceivedAt) {
			t.Errorf("event %d received at %v, after event %d at %v: want newest first", i, e.ReceivedAt, i-1, got[i-1].ReceivedAt)
		}
	}

	r := call(t, s, http.MethodGet, "/v1/apps/"+appID+"/events?openid="+openID+"&event="+schemas.EventSubscribePopup, token, "")
	var p page[eventItem]
	r.decode(t, &p)
	if len(p.Items) != 5 || p.NextCursor != "" {
		t.Errorf("events of %s = %d (next %q), want 5 on one page", openID, len(p.Items), p.NextCursor)
	}
	for _, e := range p.Items {
		if e.OpenID != openID {
			t.Errorf("filtered listing holds an event of %s", e.OpenID)
		}
	}
	r = call(t, s, http.MethodGet, "/v1/apps/"+appID+"/events?event=subscribe_msg_sent_event", token, "")
	r.decode(t, &p)
	if len(p.Items) != 0 {
		t.Errorf("sent events = %d, want 0", len(p.Items))
	}
}

type messageItem struct {
	ID          string `json:"id"`
	ToUser      string `json:"touser"`
	TemplateID  string `json:"template_id"`
	Status      string `json:"status"`
	Reason      string `json:"reason"`
	WeChatMsgID string `json:"wechat_msgid"`
	ErrCode     int    `json:"errcode"`
	ErrMsg      string `json:"errmsg"`
	Attempts    int    `json:"attempts"`
	History     []struct {
		Status string    `json:"status"`
		At     time.Time `json:"at"`
		Detail string    `json:"detail"`
	} `json:"history"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func TestMessagesRead(t *testing.T) {
	s := admintest.Start(t, admintest.Options{})
	t0 := time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)
	for i, status := range []string{processor.StatusQueued, processor.StatusFailed, processor.StatusFailed, processor.StatusDelivered} {
		m := &processor.Message{
			ID: fmt.Sprintf("m%d", i), AppID: appID, ToUser: openID, TemplateID: tplA, Data: map[string]string{"thing1": "hi"},
			Status: processor.StatusQueued, CreatedAt: t0.Add(time.Duration(i) * time.Minute), UpdatedAt: t0,
			History: []processor.StatusChange{{Status: processor.StatusQueued, At: t0, Detail: "requested"}},
		}
		if status != processor.StatusQueued {
			m.Status, m.WeChatMsgID, m.Attempts = status, fmt.Sprintf("324868251034419200%d", i), 1
			m.History = append(m.History, processor.StatusChange{Status: status, At: t0.Add(time.Second)})
		}
		if status == processor.StatusFailed {
			m.ErrCode, m.ErrMsg, m.Reason = 10001, "failed", "WeChat reported ErrorCode 10001 (failed)"
		}
		s.Message(m)
	}

	r := call(t, s, http.MethodGet, "/v1/apps/"+appID+"/messages/m1", token, "")
	if r.status != http.StatusOK {
		t.Fatalf("GET m1 = %d %s", r.status, r.body)
	}
	var raw map[string]any
	r.decode(t, &raw)
	for _, k := range []string{"id", "touser", "template_id", "status", "reason", "wechat_msgid", "errcode", "errmsg", "attempts", "history", "created_at", "updated_at"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("message lacks %q: %s", k, r.body)
		}
	}
	if _, ok := raw["wechat_msgid"].(string); !ok {
		t.Errorf("wechat_msgid = %#v, want a string", raw["wechat_msgid"])
	}
	var m messageItem
	r.decode(t, &m)
	if m.Status != processor.StatusFailed || m.ErrCode != 10001 || m.WeChatMsgID != "3248682510344192001" || len(m.History) != 2 || m.History[0].Detail != "requested" {
		t.Errorf("message m1 = %+v", m)
	}
	// m0 is queued: WeChat never answered a send of it, so it shows no errcode.
	r = call(t, s, http.MethodGet, "/v1/apps/"+appID+"/messages/m0", token, "")
	raw = nil
	r.decode(t, &raw)
	if _, ok := raw["errcode"]; ok {
		t.Errorf("a message WeChat never answered shows errcode: %s", r.body)
	}

	for _, path := range []string{"/messages/nope", "/messages/" + strings.Repeat("x", 200)} {
		r := call(t, s, http.MethodGet, "/v1/apps/"+appID+path, token, "")
		var e errorReply
		r.decode(t, &e)
		if r.status != http.StatusNotFound || e.Error != "not found" {
			t.Errorf("GET %s = %d %q, want 404 not found", path, r.status, e.Error)
		}
	}

	tests := []struct {
		name  string
		query string
		want  []string
	}{
		{"all, newest first", "", []string{"m3", "m2", "m1", "m0"}},
		{"by status", "?status=failed", []string{"m2", "m1"}},
		{"by user and template", "?touser=" + openID + "&template_id=" + tplA + "&limit=2", []string{"m3", "m2"}},
		{"since", "?since=" + t0.Add(2*time.Minute).Format(time.RFC3339), []string{"m3", "m2"}},
		{"until, unix seconds", fmt.Sprintf("?until=%d", t0.Add(2*time.Minute).Unix()), []string{"m1", "m0"}},
		{"other user", "?touser=oNobody", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, s, http.MethodGet, "/v1/apps/"+appID+"/messages"+tt.query, token, "")
			var p page[messageItem]
			r.decode(t, &p)
			var ids []string
			for _, m := range p.Items {
				ids = append(ids, m.ID)
			}
			if r.status != http.StatusOK || !slices.Equal(ids, tt.want) {
				t.Errorf("GET messages%s = %d %q, want 200 %q", tt.query, r.status, ids, tt.want)
			}
		})
	}
}

// stubTemplates knows one template; the list of the app it stands for could
// not be fetched, except that it is known to lack the template "NOT_OURS".
type stubTemplates struct{}

func (stubTemplates) Template(_ context.Context, _, templateID string) (*schemas.Template, error) {
	if templateID == "NOT_OURS" {
		return nil, schemas.ErrNoSuchTemplate
	}
	if templateID != tplB {
		return nil, nil
	}
	return &schemas.Template{ID: tplB, Type: schemas.TemplateOneTime, Keywords: []schemas.Keyword{
		{Key: "thing3", Type: "thing"}, {Key: "date2", Type: "date"},
	}}, nil
}

func TestSendValidation(t *testing.T) {
	s := admintest.Start(t, admintest.Options{Templates: stubTemplates{}})
	path := "/v1/apps/" + appID + "/messages"
	tests := []struct {
		name       string
		body       string
		headers    []string
		wantStatus int
		wantError  string
		wantFields []string
	}{
		{
			name:       "several bad fields",
			body:       `{"template_id":"` + tplA + `","data":{"thing1":"` + strings.Repeat("长", 21) + `","time2":"tomorrow","bogus":"x"},"lang":"fr","miniprogram_state":"beta"}`,
			wantStatus: http.StatusBadRequest, wantError: "invalid request",
			wantFields: []string{"touser", "miniprogram_state", "lang", "data.bogus", "data.thing1", "data.time2"},
		},
		{
			name:       "checked against the template",
			body:       `{"touser":"` + openID + `","template_id":"` + tplB + `","data":{"thing3":"ok","thing1":"extra"}}`,
			wantStatus: http.StatusBadRequest, wantError: "invalid request",
			wantFields: []string{"data.date2", "data.thing1"},
		},
		{
			name:       "a template the app does not have",
			body:       `{"touser":"` + openID + `","template_id":"NOT_OURS","data":{"thing1":"x"}}`,
			wantStatus: http.StatusBadRequest, wantError: "invalid request",
			wantFields: []string{"template_id"},
		},
		{
			name:       "data of the wrong shape",
			body:       `{"touser":"` + openID + `","template_id":"` + tplA + `","data":{"thing1":5,"thing2":{"value":"x"}}}`,
			wantStatus: http.StatusBadRequest, wantError: "invalid request",
			wantFields: []string{"data.thing1"},
		},
		{
			name:       "member of the wrong type",
			body:       `{"touser":5,"template_id":"` + tplA + `","data":{"thing1":"x"}}`,
			wantStatus: http.StatusBadRequest, wantError: "invalid request",
			wantFields: []string{"touser"},
		},
		{
			name: "not JSON", body: `touser=o`,
			wantStatus: http.StatusBadRequest, wantError: "invalid request", wantFields: []string{""},
		},
		{
			name:       "idempotency key too long",
			body:       `{"touser":"` + openID + `","template_id":"` + tplA + `","data":{"thing1":"x"}}`,
			headers:    []string{"Idempotency-Key", strings.Repeat("k", 129)},
			wantStatus: http.StatusBadRequest, wantError: "invalid request", wantFields: []string{"Idempotency-Key"},
		},
		{
			name:       "idempotency key not printable",
			body:       `{"touser":"` + openID + `","template_id":"` + tplA + `","data":{"thing1":"x"}}`,
			headers:    []string{"Idempotency-Key", "clé-1"},
			wantStatus: http.StatusBadRequest, wantError: "invalid request", wantFields: []string{"Idempotency-Key"},
		},
		{
			name:       "body too large",
			body:       `{"touser":"` + strings.Repeat("o", 70<<10) + `"}`,
			wantStatus: http.StatusRequestEntityTooLarge, wantError: "request body too large",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, s, http.MethodPost, path, token, tt.body, tt.headers...)
			var e errorReply
			r.decode(t, &e)
			if r.status != tt.wantStatus || e.Error != tt.wantError || !slices.Equal(e.fieldNames(), tt.wantFields) {
				t.Errorf("POST %.80s = %d %q fields %q, want %d %q fields %q", tt.body, r.status, e.Error, e.fieldNames(), tt.wantStatus, tt.wantError, tt.wantFields)
			}
			if bytes.Contains(r.body, []byte("tomorrow")) || bytes.Contains(r.body, []byte("长长")) {
				t.Errorf("error body repeats a submitted value: %s", r.body)
			}
		})
	}
}

func TestBadQueryNamesTheParameter(t *testing.T) {
	s := admintest.Start(t, admintest.Options{})
	msgs, events := "/v1/apps/"+appID+"/messages", "/v1/apps/"+appID+"/events"
	tests := []struct {
		name       string
		path       string
		wantFields []string
	}{
		{"limit zero", msgs + "?limit=0", []string{"limit"}},
		{"limit too large", events + "?limit=501", []string{"limit"}},
		{"limit not a number", "/v1/dlq?limit=ten", []string{"limit"}},
		{"since not a time", msgs + "?since=yesterday", []string{"since"}},
		{"until with a typo", events + "?until=1714550400x", []string{"until"}},
		{"until before since", msgs + "?since=2024-05-02T00:00:00Z&until=2024-05-01T00:00:00Z", []string{"until"}},
		{"unknown status", msgs + "?status=lost", []string{"status"}},
		{"touser too long", msgs + "?touser=" + strings.Repeat("o", 129), []string{"touser"}},
		{"several at once", msgs + "?limit=-1&status=x&since=never", []string{"status", "since", "limit"}},
		{"cursor not issued here", msgs + "?cursor=%21%21%21", []string{"cursor"}},
		{"cursor of the wrong shape", events + "?cursor=bm9waXBl", []string{"cursor"}},
		{"cursor too long", "/v1/dlq?cursor=" + strings.Repeat("A", 2000), []string{"cursor"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, s, http.MethodGet, tt.path, token, "")
			var e errorReply
			r.decode(t, &e)
			if r.status != http.StatusBadRequest || e.Error != "invalid query" || !slices.Equal(e.fieldNames(), tt.wantFields) {
				t.Errorf("GET %.80s = %d %q fields %q, want 400 invalid query fields %q", tt.path, r.status, e.Error, e.fieldNames(), tt.wantFields)
			}
			for _, f := range e.Fields {
				if f.Rule == "" || !strings.HasPrefix(f.Message, f.Field) {
					t.Errorf("field error %+v: want a rule and a message naming the field", f)
				}
			}
		})
	}
}

type deadLetterItem struct {
	ID         string `json:"id"`
	AppID      string `json:"appid"`
	Consumer   string `json:"consumer"`
	MsgID      string `json:"msg_id"`
	Reason     string `json:"reason"`
	Data       string `json:"data"`
	Deliveries int    `json:"deliveries"`
}

func TestDeadLetters(t *testing.T) {
	s := admintest.Start(t, admintest.Options{})
	s.PublishRaw(schemas.WorkSubject(appID, "oPoison", schemas.WorkInbound), "poison-1", []byte(`{"not":"a cloudevent"}`))
	s.Drained()

	r := call(t, s, http.MethodGet, "/v1/dlq", token, "")
	var p page[deadLetterItem]
	r.decode(t, &p)
	if r.status != http.StatusOK || len(p.Items) != 1 {
		t.Fatalf("GET /v1/dlq = %d %s, want one dead letter", r.status, r.body)
	}
	d := p.Items[0]
	if d.AppID != appID || d.Consumer != processor.ConsumerName || d.MsgID != "poison-1" || d.Data != `{"not":"a cloudevent"}` || d.Reason == "" {
		t.Errorf("dead letter = %+v", d)
	}
	for _, tt := range []struct {
		query string
		want  int
	}{
		{"?appid=" + appID, 1},
		{"?appid=wxother", 0},
		{"?consumer=wxgate-other", 0},
		{"?consumer=" + processor.ConsumerName + "&since=" + time.Now().Add(-time.Hour).Format(time.RFC3339), 1},
	} {
		r := call(t, s, http.MethodGet, "/v1/dlq"+tt.query, token, "")
		r.decode(t, &p)
		if r.status != http.StatusOK || len(p.Items) != tt.want {
			t.Errorf("GET /v1/dlq%s = %d with %d items, want 200 with %d", tt.query, r.status, len(p.Items), tt.want)
		}
	}
	// Redrive itself belongs to the processor; the API's own paths are checked
	// here, and the mapping of the processor's ErrNotFound in TestClassify.
	if r := call(t, s, http.MethodPost, "/v1/dlq/"+strings.Repeat("x", 200)+"/redrive", token, ""); r.status != http.StatusNotFound {
		t.Errorf("redrive of an id no dead letter can have = %d %s, want 404", r.status, r.body)
	}
	if r := call(t, s, http.MethodPost, "/v1/dlq/"+d.ID+"/redrive", "", ""); r.status != http.StatusUnauthorized {
		t.Errorf("redrive without a token = %d, want 401", r.status)
	}
}

// TestSendAccepted exercises the processor's RequestSend through the API: the
// processor runs without a sender here, so the message stays queued.
func TestSendAccepted(t *testing.T) {
	s := admintest.Start(t, admintest.Options{})
	path := "/v1/apps/" + appID + "/messages"
	body := `{"touser":"` + openID + `","template_id":"` + tplA + `","data":{"thing1":"会议提醒","time2":{"value":"2024-05-01 15:01"}},"page":"pages/index"}`
	type acceptedReply struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	send := func(headers ...string) acceptedReply {
		t.Helper()
		r := call(t, s, http.MethodPost, path, token, body, headers...)
		if r.status != http.StatusAccepted {
			t.Fatalf("POST %s = %d %s, want 202", path, r.status, r.body)
		}
		var a acceptedReply
		r.decode(t, &a)
		if a.ID == "" || a.Status != processor.StatusQueued || r.header.Get("Location") != path+"/"+a.ID {
			t.Errorf("answer = %+v, Location %q; want a queued message and its location", a, r.header.Get("Location"))
		}
		return a
	}
	first := send("Idempotency-Key", "order-42")
	if again := send("Idempotency-Key", "order-42"); again.ID != first.ID {
		t.Errorf("retry with the same Idempotency-Key = message %s, want %s", again.ID, first.ID)
	}
	if other := send(); other.ID == first.ID {
		t.Errorf("a send without a key reused message %s", first.ID)
	}
	r := call(t, s, http.MethodGet, path+"/"+first.ID, token, "")
	var m messageItem
	r.decode(t, &m)
	if r.status != http.StatusOK || m.ToUser != openID || m.TemplateID != tplA || m.Status != processor.StatusQueued || len(m.History) == 0 {
		t.Errorf("GET the queued message = %d %+v", r.status, m)
	}
}

// TestRedrive exercises the processor's Redrive through the API.
func TestRedrive(t *testing.T) {
	s := admintest.Start(t, admintest.Options{})
	s.PublishRaw(schemas.WorkSubject(appID, "oPoison", schemas.WorkInbound), "poison-2", []byte(`{"not":"a cloudevent"}`))
	s.Drained()
	var p page[deadLetterItem]
	call(t, s, http.MethodGet, "/v1/dlq", token, "").decode(t, &p)
	if len(p.Items) != 1 {
		t.Fatalf("dead letters = %d, want 1", len(p.Items))
	}
	r := call(t, s, http.MethodPost, "/v1/dlq/"+p.Items[0].ID+"/redrive", token, "")
	var d struct {
		ID       string `json:"id"`
		Redrives int    `json:"redrives"`
	}
	r.decode(t, &d)
	if r.status != http.StatusAccepted || d.ID != p.Items[0].ID || d.Redrives != 1 {
		t.Errorf("redrive = %d %s, want 202 with the dead letter redriven once", r.status, r.body)
	}
	if r := call(t, s, http.MethodPost, "/v1/dlq/no-such-id/redrive", token, ""); r.status != http.StatusNotFound {
		t.Errorf("redrive of an unknown id = %d %s, want 404", r.status, r.body)
	}
}

// TestResendNeedsAnUnknownMessageAndAConfirmation: POST .../resend sends again
// only a message whose outcome is unknown, and only when the caller confirms
// that the user may get it twice.
func TestResendNeedsAnUnknownMessageAndAConfirmation(t *testing.T) {
	s := admintest.Start(t, admintest.Options{})
	t0 := time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)
	for id, status := range map[string]string{"mUnknown": processor.StatusUnknown, "mSent": processor.StatusSent} {
		s.Message(&processor.Message{
			ID: id, AppID: appID, ToUser: openID, TemplateID: tplA, Data: map[string]string{"thing1": "hi"},
			Status: status, CreatedAt: t0, UpdatedAt: t0,
			History: []processor.StatusChange{{Status: processor.StatusQueued, At: t0}, {Status: status, At: t0}},
		})
	}
	path := "/v1/apps/" + appID + "/messages/%s/resend"
	for _, tt := range []struct {
		name, id, body string
		want           int
	}{
		{"no confirmation", "mUnknown", `{}`, http.StatusBadRequest},
		{"wrong confirmation", "mUnknown", `{"confirm":"yes"}`, http.StatusBadRequest},
		{"outcome known", "mSent", `{"confirm":"may_send_twice"}`, http.StatusConflict},
		{"no such message", "mNone", `{"confirm":"may_send_twice"}`, http.StatusNotFound},
		{"unknown and confirmed", "mUnknown", `{"confirm":"may_send_twice"}`, http.StatusAccepted},
	} {
		if r := call(t, s, http.MethodPost, fmt.Sprintf(path, tt.id), token, tt.body); r.status != tt.want {
			t.Errorf("%s: POST resend = %d %s, want %d", tt.name, r.status, r.body, tt.want)
		}
	}
	// The processor here has no sender: the resend waits on the work stream.
	stream, err := s.JS.Stream(context.Background(), schemas.WorkStreamName)
	if err != nil {
		t.Fatal(err)
	}
	filter := "wxgate.part.*." + appID + ".*." + schemas.WorkSend
	info, err := stream.Info(context.Background(), jetstream.WithSubjectFilter(filter))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, n := range info.State.Subjects {
		got += int(n)
	}
	if got != 1 {
		t.Errorf("%d send events on the work stream, want the one resend", got)
	}
}
