package admin_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/admin"
	"github.com/wxgate/wxgate/internal/admin/admintest"
	"github.com/wxgate/wxgate/processor"
)

// otherAppID is a second served app, for tokens scoped to it alone.
const otherAppID = "wx0123456789abcdef"

// The scoped tokens of TestScopes, in the order of its expectations.
var scopeTokens = []struct {
	name, secret string
	role         admin.Role
	apps         []string
}{
	{"reader", "reader-token-1", admin.RoleRead, []string{appID}},
	{"sender", "sender-token-1", admin.RoleSend, []string{appID}},
	{"app-admin", "app-admin-token-1", admin.RoleAdmin, []string{appID}},
	{"other-admin", "other-admin-token-1", admin.RoleAdmin, []string{otherAppID}},
	{"all-reader", "all-reader-token-1", admin.RoleRead, []string{admin.AllApps}},
	{"all-admin", "all-admin-token-1", admin.RoleAdmin, []string{admin.AllApps}},
}

func scopedTokens() []admin.Token {
	out := make([]admin.Token, len(scopeTokens))
	for i, t := range scopeTokens {
		out[i] = admin.Token{Name: t.name, Secret: t.secret, Role: t.role, Apps: t.apps}
	}
	return out
}

// unknownMessage stores a message whose send outcome is unknown, which an
// admin may resend, and returns its id.
func unknownMessage(t *testing.T, s *admintest.Server, id string) string {
	t.Helper()
	t0 := time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)
	s.Message(&processor.Message{
		ID: id, AppID: appID, ToUser: openID, TemplateID: tplA, Data: map[string]string{"thing1": "hi"},
		Status: processor.StatusUnknown, CreatedAt: t0, UpdatedAt: t0,
		History: []processor.StatusChange{{Status: processor.StatusQueued, At: t0}, {Status: processor.StatusUnknown, At: t0}},
	})
	return id
}

// TestScopes calls every /v1 route with no token and with each scoped token,
// and checks each answer: the route's success status, 401 or 403; a 403 names
// the scope the route needs.
func TestScopes(t *testing.T) {
	s := admintest.Start(t, admintest.Options{Scoped: scopedTokens(), AppIDs: []string{appID, otherAppID}})
	ctx := context.Background()
	s.Message(&processor.Message{
		ID: "m-read", AppID: appID, ToUser: openID, TemplateID: tplA, Status: processor.StatusQueued,
		CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC(),
	})
	dl := &processor.DeadLetter{
		ID: "dl-1", AppID: appID, Consumer: processor.ConsumerName, Subject: "wechat." + appID + ".in.garbage",
		MsgID: "poison-scopes", Data: `{"not":"a cloudevent"}`, Reason: "test", At: time.Now().UTC(), Version: 1,
	}
	if err := s.Store.PutDeadLetter(ctx, dl); err != nil {
		t.Fatal(err)
	}
	app := "/v1/apps/" + appID
	send := fmt.Sprintf(`{"touser":%q,"template_id":%q,"data":{"thing1":"x"}}`, openID, tplA)
	report := fmt.Sprintf(`{"openid":%q,"results":{%q:"accept"}}`, openID, tplA)
	resends := 0
	routes := []struct {
		method, route string
		// scope is what the route needs, as a 403 names it.
		scope string
		// want is the status for no token, then for each of scopeTokens.
		want [7]int
		// path and body make one request; path may make a fresh target.
		path func() string
		body string
	}{
		{http.MethodPost, "/v1/apps/{appid}/messages", "send on " + appID,
			[7]int{401, 403, 202, 202, 403, 403, 202},
			func() string { return app + "/messages" }, send},
		{http.MethodGet, "/v1/apps/{appid}/messages", "read on " + appID,
			[7]int{401, 200, 200, 200, 403, 200, 200},
			func() string { return app + "/messages" }, ""},
		{http.MethodGet, "/v1/apps/{appid}/messages/{id}", "read on " + appID,
			[7]int{401, 200, 200, 200, 403, 200, 200},
			func() string { return app + "/messages/m-read" }, ""},
		{http.MethodPost, "/v1/apps/{appid}/messages/{id}/resend", "admin on " + appID,
			[7]int{401, 403, 403, 202, 403, 403, 202},
			func() string {
				resends++
				return app + "/messages/" + unknownMessage(t, s, fmt.Sprintf("m-unknown-%d", resends)) + "/resend"
			}, `{"confirm":"may_send_twice"}`},
		{http.MethodGet, "/v1/apps/{appid}/consents/{openid}", "read on " + appID,
			[7]int{401, 200, 200, 200, 403, 200, 200},
			func() string { return app + "/consents/" + openID }, ""},
		{http.MethodPost, "/v1/apps/{appid}/consents", "send on " + appID,
			[7]int{401, 403, 200, 200, 403, 403, 200},
			func() string { return app + "/consents" }, report},
		{http.MethodGet, "/v1/apps/{appid}/events", "read on " + appID,
			[7]int{401, 200, 200, 200, 403, 200, 200},
			func() string { return app + "/events" }, ""},
		{http.MethodGet, "/v1/dlq", "admin on *",
			[7]int{401, 403, 403, 403, 403, 403, 200},
			func() string { return "/v1/dlq" }, ""},
		{http.MethodPost, "/v1/dlq/{id}/redrive", "admin on *",
			[7]int{401, 403, 403, 403, 403, 403, 202},
			func() string { return "/v1/dlq/" + dl.ID + "/redrive" }, ""},
		{http.MethodGet, "/v1/audit", "admin on *",
			[7]int{401, 403, 403, 403, 403, 403, 200},
			func() string { return "/v1/audit" }, ""},
	}
	type recorded struct {
		token, method, route string
		status               int
	}
	var wantRecords []recorded
	for _, rt := range routes {
		for i, want := range rt.want {
			who, secret := "no token", ""
			if i > 0 {
				who, secret = scopeTokens[i-1].name, scopeTokens[i-1].secret
			}
			t.Run(rt.method+" "+rt.route+" as "+who, func(t *testing.T) {
				r := call(t, s, rt.method, rt.path(), secret, rt.body)
				if r.status != want {
					t.Fatalf("%s %s as %s = %d %s, want %d", rt.method, rt.route, who, r.status, r.body, want)
				}
				if rt.method != http.MethodGet && secret != "" {
					wantRecords = append(wantRecords, recorded{who, rt.method, rt.route, want})
				}
				if want != http.StatusForbidden {
					return
				}
				var e struct {
					Error        string `json:"error"`
					MissingScope string `json:"missing_scope"`
				}
				r.decode(t, &e)
				if e.Error != "forbidden" || e.MissingScope != rt.scope {
					t.Errorf("403 body = %s, want forbidden with missing_scope %q", r.body, rt.scope)
				}
			})
		}
	}

	// Every state-changing call with a valid token is recorded, once, and
	// nothing else is: neither the reads nor the calls without a token.
	var got []recorded
	for _, rec := range listAudit(t, s, "") {
		got = append(got, recorded{rec.TokenName, rec.Method, rec.Route, rec.Status})
	}
	if len(got) != len(wantRecords) {
		t.Errorf("%d audit records, want %d:\ngot  %v\nwant %v", len(got), len(wantRecords), got, wantRecords)
	}
	counts := map[recorded]int{}
	for _, r := range wantRecords {
		counts[r]++
	}
	for _, r := range got {
		counts[r]--
	}
	for r, n := range counts {
		if n != 0 {
			t.Errorf("audit record %+v: %d more expected than found", r, n)
		}
	}
}

// TestScopeOfAnUnservedApp: a token scoped to some apps learns nothing about
// an app outside them, not even whether it is served; a token for all apps
// learns that it is not.
func TestScopeOfAnUnservedApp(t *testing.T) {
	s := admintest.Start(t, admintest.Options{Scoped: scopedTokens(), AppIDs: []string{appID, otherAppID}})
	for _, tt := range []struct {
		secret string
		want   int
	}{
		{"app-admin-token-1", http.StatusForbidden},
		{token, http.StatusNotFound},
	} {
		if r := call(t, s, http.MethodGet, "/v1/apps/wxffffffffffffffff/events", tt.secret, ""); r.status != tt.want {
			t.Errorf("GET events of an unserved app = %d %s, want %d", r.status, r.body, tt.want)
		}
	}
}

// TestHashedToken: a token configured as its SHA-256 digest (in lower or
// upper case hex) is accepted when the token itself is presented, never when
// the digest is.
func TestHashedToken(t *testing.T) {
	digest := func(secret string) string {
		d := sha256.Sum256([]byte(secret))
		return hex.EncodeToString(d[:])
	}
	s := admintest.Start(t, admintest.Options{Scoped: []admin.Token{
		{Name: "hashed-reader", Secret: "sha256:" + digest("hashed-reader-token"), Role: admin.RoleRead, Apps: []string{appID}},
		{Name: "upper-hex", Secret: "sha256:" + strings.ToUpper(digest("upper-hex-token")), Role: admin.RoleRead, Apps: []string{appID}},
	}})
	path := "/v1/apps/" + appID + "/events"
	for _, tt := range []struct {
		name, token string
		want        int
	}{
		{"the token", "hashed-reader-token", http.StatusOK},
		{"the token hashed in upper case", "upper-hex-token", http.StatusOK},
		{"the configured digest", "sha256:" + digest("hashed-reader-token"), http.StatusUnauthorized},
		{"the digest's hex", digest("hashed-reader-token"), http.StatusUnauthorized},
	} {
		if r := call(t, s, http.MethodGet, path, tt.token, ""); r.status != tt.want {
			t.Errorf("GET events with %s = %d %s, want %d", tt.name, r.status, r.body, tt.want)
		}
	}
	if r := call(t, s, http.MethodPost, "/v1/apps/"+appID+"/consents", "hashed-reader-token", `{}`); r.status != http.StatusForbidden {
		t.Errorf("consent report with the hashed reader token = %d %s, want 403", r.status, r.body)
	}
}

// TestForbiddenShowsNoToken: a 403 names the scope, not the token.
func TestForbiddenShowsNoToken(t *testing.T) {
	s := admintest.Start(t, admintest.Options{Scoped: scopedTokens(), AppIDs: []string{appID, otherAppID}})
	r := call(t, s, http.MethodGet, "/v1/dlq", "reader-token-1", "")
	if r.status != http.StatusForbidden || strings.Contains(string(r.body), "reader-token-1") {
		t.Errorf("GET /v1/dlq as a reader = %d %s, want 403 without the token", r.status, r.body)
	}
}
