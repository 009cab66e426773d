package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/admin"
	"github.com/wxgate/wxgate/internal/admin/admintest"
	"github.com/wxgate/wxgate/processor"
)

// auditItem is the shape of one audit record in GET /v1/audit.
type auditItem struct {
	ID        string            `json:"id"`
	At        time.Time         `json:"at"`
	TokenName string            `json:"token_name"`
	Method    string            `json:"method"`
	Route     string            `json:"route"`
	AppID     string            `json:"appid"`
	Targets   map[string]string `json:"targets"`
	Status    int               `json:"status"`
}

// listAudit reads the whole audit log through the API, two records a page,
// with the extra query parameters in query ("since=...&").
func listAudit(t *testing.T, s *admintest.Server, query string) []auditItem {
	t.Helper()
	var out []auditItem
	cursor := ""
	for range 1000 {
		r := call(t, s, http.MethodGet, "/v1/audit?"+query+"limit=2&cursor="+url.QueryEscape(cursor), token, "")
		if r.status != http.StatusOK {
			t.Fatalf("GET /v1/audit = %d %s", r.status, r.body)
		}
		var p page[auditItem]
		r.decode(t, &p)
		out = append(out, p.Items...)
		if p.NextCursor == "" {
			return out
		}
		cursor = p.NextCursor
	}
	t.Fatal("GET /v1/audit: the pages do not end")
	return nil
}

// TestAuditRecords checks the record of each kind of state-changing call, that
// reads leave none, and that no record holds template data or a token.
func TestAuditRecords(t *testing.T) {
	const sender, senderSecret = "ci-sender", "ci-sender-token-1"
	s := admintest.Start(t, admintest.Options{Scoped: []admin.Token{
		{Name: sender, Secret: senderSecret, Role: admin.RoleSend, Apps: []string{appID}},
	}})
	ctx := context.Background()
	const data = "会议提醒-template-data"
	app := "/v1/apps/" + appID

	// A send: its message, user and template, never its data.
	r := call(t, s, http.MethodPost, app+"/messages", senderSecret,
		fmt.Sprintf(`{"touser":%q,"template_id":%q,"data":{"thing1":%q},"page":"pages/secret-page"}`, openID, tplA, data),
		"Idempotency-Key", "order-42")
	if r.status != http.StatusAccepted {
		t.Fatalf("send = %d %s", r.status, r.body)
	}
	var accepted struct{ ID string }
	r.decode(t, &accepted)
	// A send the API refuses: recorded with its status, and no ids from its body.
	if r := call(t, s, http.MethodPost, app+"/messages", senderSecret, fmt.Sprintf(`{"touser":%q,"data":{"thing1":%q}}`, openID, data)); r.status != http.StatusBadRequest {
		t.Fatalf("invalid send = %d %s", r.status, r.body)
	}
	// A consent report: the user and the report's id.
	if r := call(t, s, http.MethodPost, app+"/consents", senderSecret, fmt.Sprintf(`{"openid":%q,"results":{%q:"accept"},"request_id":"popup-7"}`, openID, tplA)); r.status != http.StatusOK {
		t.Fatalf("consent report = %d %s", r.status, r.body)
	}
	// A call the token may not make.
	if r := call(t, s, http.MethodPost, app+"/messages/"+accepted.ID+"/resend", senderSecret, `{"confirm":"may_send_twice"}`); r.status != http.StatusForbidden {
		t.Fatalf("resend by a sender = %d %s", r.status, r.body)
	}
	// A redrive: the dead letter's app, though the path names none.
	dl := &processor.DeadLetter{
		ID: "dl-audit", AppID: appID, Consumer: processor.ConsumerName, Subject: "wechat." + appID + ".in.garbage",
		MsgID: "poison-audit", Data: `{"not":"a cloudevent"}`, Reason: "test", At: time.Now().UTC(), Version: 1,
	}
	if err := s.Store.PutDeadLetter(ctx, dl); err != nil {
		t.Fatal(err)
	}
	if r := call(t, s, http.MethodPost, "/v1/dlq/"+dl.ID+"/redrive", token, ""); r.status != http.StatusAccepted {
		t.Fatalf("redrive = %d %s", r.status, r.body)
	}
	// Reads: none recorded.
	for _, path := range []string{app + "/messages", app + "/messages/" + accepted.ID, app + "/consents/" + openID, app + "/events", "/v1/dlq", "/v1/audit"} {
		if r := call(t, s, http.MethodGet, path, token, ""); r.status != http.StatusOK {
			t.Fatalf("GET %s = %d %s", path, r.status, r.body)
		}
	}

	got := listAudit(t, s, "")
	type summary struct {
		token, method, route, appid string
		targets                     map[string]string
		status                      int
	}
	want := []summary{ // newest first
		{"admin.tokens[0]", "POST", "/v1/dlq/{id}/redrive", appID, map[string]string{"id": dl.ID}, 202},
		{sender, "POST", "/v1/apps/{appid}/messages/{id}/resend", appID, map[string]string{"id": accepted.ID}, 403},
		{sender, "POST", "/v1/apps/{appid}/consents", appID, map[string]string{"openid": openID, "request_id": "popup-7"}, 200},
		{sender, "POST", "/v1/apps/{appid}/messages", appID, nil, 400},
		{sender, "POST", "/v1/apps/{appid}/messages", appID, map[string]string{"id": accepted.ID, "touser": openID, "template_id": tplA}, 202},
	}
	if len(got) != len(want) {
		t.Fatalf("audit log holds %d records, want %d: %+v", len(got), len(want), got)
	}
	ids := map[string]bool{}
	for i, w := range want {
		g := got[i]
		if g.TokenName != w.token || g.Method != w.method || g.Route != w.route || g.AppID != w.appid || g.Status != w.status || !maps.Equal(g.Targets, w.targets) {
			t.Errorf("record %d = %+v, want %+v", i, g, w)
		}
		if g.ID == "" || ids[g.ID] || g.At.IsZero() || time.Since(g.At) > time.Minute {
			t.Errorf("record %d: id %q, at %v: want a new id and a recent time", i, g.ID, g.At)
		}
		ids[g.ID] = true
		if i > 0 && g.At.After(got[i-1].At) {
			t.Errorf("record %d at %v is newer than record %d at %v: want newest first", i, g.At, i-1, got[i-1].At)
		}
	}

	// Neither the API's answer nor the stored documents hold template data,
	// a page, a token or its idempotency key.
	raw := call(t, s, http.MethodGet, "/v1/audit?limit=500", token, "").body
	stored, _, err := s.Store.Audit(ctx, admin.AuditQuery{Page: processor.Page{Limit: processor.MaxLimit}})
	if err != nil {
		t.Fatal(err)
	}
	storedJSON, err := json.Marshal(stored)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{data, "secret-page", senderSecret, token, "order-42"} {
		if bytes.Contains(raw, []byte(leak)) || bytes.Contains(storedJSON, []byte(leak)) {
			t.Errorf("the audit log holds %q", leak)
		}
	}

	// since and until select by the time a call arrived.
	mid := got[2].At
	var wantSince int
	for _, g := range got {
		if !g.At.Before(mid) {
			wantSince++
		}
	}
	if n := len(listAudit(t, s, "since="+mid.Format(time.RFC3339Nano)+"&")); n != wantSince {
		t.Errorf("records since %v = %d, want %d", mid, n, wantSince)
	}
	if n := len(listAudit(t, s, "until="+mid.Format(time.RFC3339Nano)+"&")); n != len(got)-wantSince {
		t.Errorf("records until %v = %d, want %d", mid, n, len(got)-wantSince)
	}
}

// syncBuffer is a log destination shared by the API's and the processor's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestAuditWriteFailure: when the record cannot be written, the caller's
// answer stays what it was and the log says so at error level, with the record.
func TestAuditWriteFailure(t *testing.T) {
	logs := &syncBuffer{}
	s := admintest.Start(t, admintest.Options{Log: logs, Scoped: []admin.Token{
		{Name: "reader", Secret: "reader-token-1", Role: admin.RoleRead, Apps: []string{appID}},
	}})
	s.DB.Stop()
	// Answers that do not need the store: a refusal of the scope, and a
	// request the API refuses before it reaches the processor.
	if r := call(t, s, http.MethodPost, "/v1/apps/"+appID+"/consents", "reader-token-1", `{}`); r.status != http.StatusForbidden {
		t.Errorf("consent report by a reader with the store down = %d %s, want 403", r.status, r.body)
	}
	if r := call(t, s, http.MethodPost, "/v1/apps/"+appID+"/messages/m1/resend", token, `{"confirm":"no"}`); r.status != http.StatusBadRequest {
		t.Errorf("unconfirmed resend with the store down = %d %s, want 400", r.status, r.body)
	}
	var lost []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "admin audit record not written") {
			lost = append(lost, line)
		}
	}
	if len(lost) != 2 {
		t.Fatalf("%d log lines about lost audit records, want 2:\n%s", len(lost), logs)
	}
	for _, line := range lost {
		for _, want := range []string{"level=ERROR", "route=/v1/apps/{appid}/", "method=POST", "appid=" + appID} {
			if !strings.Contains(line, want) {
				t.Errorf("log line %q lacks %q", line, want)
			}
		}
		if strings.Contains(line, "reader-token-1") || strings.Contains(line, token) {
			t.Errorf("log line %q shows a token", line)
		}
	}
}
