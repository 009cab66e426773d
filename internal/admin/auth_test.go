package admin

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// adminTokens returns tokens with the role admin on all apps, named by their
// position as the configuration names bare tokens.
func adminTokens(secrets ...string) []Token {
	out := make([]Token, len(secrets))
	for i, sec := range secrets {
		out[i] = Token{Name: fmt.Sprintf("admin.tokens[%d]", i), Secret: sec, Role: RoleAdmin, Apps: []string{AllApps}}
	}
	return out
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestLookup(t *testing.T) {
	digest := sha256.Sum256([]byte("gamma-hashed"))
	tokens := append(adminTokens("alpha", "", "beta-longer-token"),
		Token{Name: "gamma", Secret: "sha256:" + hex.EncodeToString(digest[:]), Role: RoleRead, Apps: []string{"wx1"}},
		Token{Name: "bad-hash", Secret: "sha256:abc", Role: RoleAdmin, Apps: []string{AllApps}},
		Token{Name: "", Secret: "nameless-token", Role: RoleAdmin, Apps: []string{AllApps}},
		Token{Name: "no-role", Secret: "roleless-token", Apps: []string{AllApps}},
	)
	a := New(Config{Tokens: tokens}, nil, nil, nil, discard)
	tests := []struct {
		header string
		want   string // the grant's name; "" for none
	}{
		{"Bearer alpha", "admin.tokens[0]"},
		{"BEARER beta-longer-token", "admin.tokens[2]"},
		{"Bearer  alpha ", "admin.tokens[0]"},
		{"Bearer gamma-hashed", "gamma"},
		{"Bearer sha256:" + hex.EncodeToString(digest[:]), ""},
		{"Bearer sha256:abc", ""},
		{"Bearer nameless-token", ""},
		{"Bearer roleless-token", ""},
		{"Bearer alph", ""},
		{"Bearer ", ""},
		{"Bearer", ""},
		{"alpha", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got := ""
		if g := a.lookup(tt.header); g != nil {
			got = g.name
		}
		if got != tt.want {
			t.Errorf("lookup(%q) = %q, want %q", tt.header, got, tt.want)
		}
	}
	none := New(Config{Tokens: adminTokens("")}, nil, nil, nil, discard)
	for _, h := range []string{"Bearer ", "Bearer x", ""} {
		if none.lookup(h) != nil {
			t.Errorf("with no tokens, lookup(%q) found one", h)
		}
	}
}

func TestGrantAllows(t *testing.T) {
	tests := []struct {
		name  string
		token Token
		role  Role
		app   string
		want  bool
	}{
		{"read on its app", Token{Role: RoleRead, Apps: []string{"wx1"}}, RoleRead, "wx1", true},
		{"read cannot send", Token{Role: RoleRead, Apps: []string{"wx1"}}, RoleSend, "wx1", false},
		{"send reads", Token{Role: RoleSend, Apps: []string{"wx1"}}, RoleRead, "wx1", true},
		{"send on another app", Token{Role: RoleSend, Apps: []string{"wx1"}}, RoleSend, "wx2", false},
		{"send on one of its apps", Token{Role: RoleSend, Apps: []string{"wx1", "wx2"}}, RoleSend, "wx2", true},
		{"admin of one app, on all apps", Token{Role: RoleAdmin, Apps: []string{"wx1"}}, RoleAdmin, AllApps, false},
		{"admin of all apps, on one", Token{Role: RoleAdmin, Apps: []string{AllApps}}, RoleAdmin, "wx9", true},
		{"admin of all apps, on all", Token{Role: RoleAdmin, Apps: []string{AllApps}}, RoleAdmin, AllApps, true},
		{"read of all apps cannot redrive", Token{Role: RoleRead, Apps: []string{AllApps}}, RoleAdmin, AllApps, false},
		{"no apps", Token{Role: RoleAdmin}, RoleRead, "wx1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.token.Name, tt.token.Secret = "t", "secret-token"
			g, err := newGrant(tt.token)
			if err != nil {
				t.Fatal(err)
			}
			if got := g.allows(tt.role, tt.app); got != tt.want {
				t.Errorf("%v on %v allows(%v, %q) = %v, want %v", tt.token.Role, tt.token.Apps, tt.role, tt.app, got, tt.want)
			}
		})
	}
}

func TestParseRole(t *testing.T) {
	for _, r := range []Role{RoleRead, RoleSend, RoleAdmin} {
		if got, err := ParseRole(r.String()); got != r || err != nil {
			t.Errorf("ParseRole(%q) = %v, %v; want %v", r.String(), got, err, r)
		}
	}
	for _, s := range []string{"", "Admin", "write"} {
		if _, err := ParseRole(s); err == nil {
			t.Errorf("ParseRole(%q) = nil error, want one", s)
		}
	}
}

func TestRoutePattern(t *testing.T) {
	for in, want := range map[string]string{
		"/v1/apps/:appid/messages/:id/resend": "/v1/apps/{appid}/messages/{id}/resend",
		"/v1/dlq":                             "/v1/dlq",
		"":                                    "",
	} {
		if got := routePattern(in); got != want {
			t.Errorf("routePattern(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRouteWithoutScopeNeedsAdmin: a route mounted without an entry in the
// table of scopes needs admin on all apps, so that a route added carelessly
// is closed to every other token.
func TestRouteWithoutScopeNeedsAdmin(t *testing.T) {
	a := New(Config{Tokens: []Token{
		{Name: "app-admin", Secret: "app-admin-token", Role: RoleAdmin, Apps: []string{"wx1"}},
		{Name: "all-admin", Secret: "all-admin-token", Role: RoleAdmin, Apps: []string{AllApps}},
	}}, nil, nil, nil, discard)
	gin.SetMode(gin.ReleaseMode)
	engine := gin.New()
	engine.GET("/v1/apps/:appid/extra", a.authenticate, a.authorize, func(c *gin.Context) { c.Status(http.StatusNoContent) })
	for _, tt := range []struct {
		token string
		want  int
	}{
		{"app-admin-token", http.StatusForbidden},
		{"all-admin-token", http.StatusNoContent},
	} {
		w := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/v1/apps/wx1/extra", nil)
		req.Header.Set("Authorization", "Bearer "+tt.token)
		engine.ServeHTTP(w, req)
		if w.Code != tt.want {
			t.Errorf("GET an unscoped route with %s = %d %s, want %d", tt.token, w.Code, w.Body, tt.want)
		}
		if tt.want == http.StatusForbidden && !strings.Contains(w.Body.String(), `"missing_scope":"admin on *"`) {
			t.Errorf("403 body = %s, want missing_scope admin on *", w.Body)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	a := New(Config{Tokens: adminTokens("token-one-0123456789", "token-two-0123456789", "token-three-0123456789")}, nil, nil, nil, discard)
	for b.Loop() {
		a.lookup("Bearer token-three-0123456789")
	}
}
