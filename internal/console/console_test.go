package console_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/wxgate/wxgate/internal/admin"
	"github.com/wxgate/wxgate/internal/console"
)

// newServer serves a console whose only dependency a test reaches is the
// admin API's tokens.
func newServer(t *testing.T, tokens ...admin.Token) *httptest.Server {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	log := slog.New(slog.DiscardHandler)
	api := admin.New(admin.Config{Tokens: tokens, AppIDs: []string{benchApp}}, nil, nil, nil, log)
	con, err := console.New(console.Config{AppIDs: []string{benchApp}}, nil, nil, nil, api, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	engine := gin.New()
	con.Register(engine)
	srv := httptest.NewServer(engine)
	t.Cleanup(srv.Close)
	return srv
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// TestSignIn signs in with tokens of every shape a configuration may hold,
// bytes a cookie may not carry included, and checks the session cookie's
// attributes and the headers of every answer.
func TestSignIn(t *testing.T) {
	tokens := []string{"plain-token", `a token; with "quotes", commas and 中文`}
	var ts []admin.Token
	for i, tok := range tokens {
		ts = append(ts, admin.Token{Name: "t" + string(rune('0'+i)), Secret: tok, Role: admin.RoleRead, Apps: []string{benchApp}})
	}
	srv := newServer(t, ts...)
	for _, tok := range tokens {
		t.Run(tok, func(t *testing.T) {
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := c.Get(srv.URL + "/console/signin")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'none';") {
				t.Errorf("Content-Security-Policy = %q", csp)
			}
			m := csrfField.FindSubmatch(body)
			if m == nil {
				t.Fatal("no CSRF field on the sign-in page")
			}
			// Without the sign-in form's token, nothing happens.
			resp, err = c.PostForm(srv.URL+"/console/signin", url.Values{"token": {tok}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("sign-in without the form's CSRF token = %d, want 403", resp.StatusCode)
			}
			resp, err = c.PostForm(srv.URL+"/console/signin", url.Values{"csrf": {string(m[1])}, "token": {tok}, "next": {"https://example.com/"}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/" {
				t.Errorf("sign-in = %d to %q, want 303 to /console/ (never elsewhere)", resp.StatusCode, resp.Header.Get("Location"))
			}
			var session *http.Cookie
			for _, ck := range resp.Cookies() {
				if ck.Name == "wxgate_console" {
					session = ck
				}
			}
			if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/console" {
				t.Fatalf("session cookie = %+v, want HttpOnly, SameSite=Strict, Path=/console", session)
			}
			if strings.Contains(session.Value, tok) {
				t.Errorf("the session cookie holds the token as it is")
			}
			resp, err = c.Get(srv.URL + "/console/")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if want := "/console/apps/" + benchApp; resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
				t.Errorf("GET /console/ signed in = %d to %q, want 303 to %s", resp.StatusCode, resp.Header.Get("Location"), want)
			}
		})
	}
}
