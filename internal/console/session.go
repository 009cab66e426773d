package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/wxgate/wxgate/internal/admin"
)

// The session is the admin token itself (base64url-encoded), kept by the browser in an HttpOnly,
// SameSite=Strict cookie scoped to /console: no server-side state, so any
// processor behind a load balancer serves any page, and signing out or
// revoking the token (in the configuration) ends it.
//
// Every form carries a CSRF token derived from the session: the HMAC-SHA256 of
// a fixed label keyed with the admin token. Only a holder of the token can
// compute it, it is the same on every processor, and showing it in a page
// reveals nothing of the token. The sign-in form, which has no session yet,
// uses a random value in a short-lived cookie of its own, repeated in the form
// (a double-submit token).
const (
	cookieSession = "wxgate_console"
	cookieSignIn  = "wxgate_console_signin"
	cookieZone    = "wxgate_tz"
	// fieldCSRF names the CSRF token in every form.
	fieldCSRF = "csrf"
	csrfLabel = "wxgate console csrf v1"
	// maxToken bounds a token read from a form or cookie.
	maxToken = 512
	// sessionAge is how long the browser keeps the session cookie.
	sessionAge = 12 * time.Hour
)

// session is a request's signed-in operator.
type session struct {
	id   admin.Identity
	csrf string
}

const sessionKey = "wxgate.console.session"

// sessionOf returns the request's session; the zero session may do nothing.
func sessionOf(ctx *gin.Context) *session {
	if s, ok := ctx.Get(sessionKey); ok {
		return s.(*session)
	}
	return &session{}
}

// csrfToken derives the CSRF token of a session's admin token.
func csrfToken(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(csrfLabel))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// session lets a request through only with a valid session cookie. Without
// one, a page request is sent to sign in and an action is refused, changing
// nothing. A POST must also carry the session's CSRF token.
func (c *Console) session(ctx *gin.Context) {
	token := sessionToken(ctx)
	var id admin.Identity
	ok := false
	if token != "" {
		id, ok = c.auth.Identify(token)
	}
	if !ok {
		if ctx.Request.Method == http.MethodGet || ctx.Request.Method == http.MethodHead {
			ctx.Redirect(http.StatusSeeOther, prefix+"/signin?next="+url.QueryEscape(ctx.Request.URL.RequestURI()))
			ctx.Abort()
			return
		}
		c.log.Info("console action without a session refused", "method", ctx.Request.Method, "path", ctx.Request.URL.Path)
		c.render(ctx, http.StatusUnauthorized, "error", &errorPage{Status: http.StatusUnauthorized,
			Text: "You are not signed in, so nothing was done. Sign in and try again."})
		ctx.Abort()
		return
	}
	s := &session{id: id, csrf: csrfToken(token)}
	ctx.Set(sessionKey, s)
	if ctx.Request.Method == http.MethodPost {
		got := ctx.PostForm(fieldCSRF)
		if subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) != 1 {
			c.fail(ctx, errBadForm)
			return
		}
	}
	ctx.Next()
}

// sessionToken reads the admin token from the session cookie, which holds it
// base64url-encoded: a token may have bytes a cookie value may not.
func sessionToken(ctx *gin.Context) string {
	v, err := ctx.Cookie(cookieSession)
	if err != nil || v == "" || len(v) > base64.RawURLEncoding.EncodedLen(maxToken) {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return ""
	}
	return string(b)
}

// signInPage is the sign-in form.
type signInPage struct {
	base
	Next  string
	Error string
}

// signInPage renders the sign-in form with a fresh double-submit token.
func (c *Console) signInPage(ctx *gin.Context) error {
	p := &signInPage{Next: safeNext(ctx.Query("next"))}
	return c.renderSignIn(ctx, http.StatusOK, p)
}

func (c *Console) renderSignIn(ctx *gin.Context, status int, p *signInPage) error {
	v := rand.Text()
	c.setCookie(ctx, cookieSignIn, v, prefix+"/signin", 10*time.Minute)
	p.CSRF = v
	p.Zone = c.zoneOf(ctx)
	c.render(ctx, status, "signin", p)
	return nil
}

// signIn checks the token and keeps it in the session cookie.
func (c *Console) signIn(ctx *gin.Context) error {
	want, _ := ctx.Cookie(cookieSignIn)
	got := ctx.PostForm(fieldCSRF)
	if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return errBadForm
	}
	next := safeNext(ctx.PostForm("next"))
	token := strings.TrimSpace(ctx.PostForm("token"))
	if len(token) > maxToken {
		token = ""
	}
	if _, ok := c.auth.Identify(token); !ok {
		// Neither the token nor the guess is logged: a near miss may be a real token.
		c.log.Info("console sign-in refused")
		return c.renderSignIn(ctx, http.StatusUnauthorized, &signInPage{Next: next, Error: "That token is not accepted."})
	}
	c.setCookie(ctx, cookieSignIn, "", prefix+"/signin", -1)
	c.setCookie(ctx, cookieSession, base64.RawURLEncoding.EncodeToString([]byte(token)), prefix, sessionAge)
	if z := ctx.PostForm("tz"); z != "" {
		if loc, err := loadZone(z); err == nil {
			c.setCookie(ctx, cookieZone, loc.String(), prefix, 365*24*time.Hour)
		}
	}
	if next == "" {
		next = prefix + "/"
	}
	ctx.Redirect(http.StatusSeeOther, next)
	return nil
}

// signOut forgets the session.
func (c *Console) signOut(ctx *gin.Context) error {
	c.setCookie(ctx, cookieSession, "", prefix, -1)
	ctx.Redirect(http.StatusSeeOther, prefix+"/signin")
	return nil
}

// setCookie sets an HttpOnly, SameSite=Strict cookie, Secure on TLS; a
// negative age deletes it.
func (c *Console) setCookie(ctx *gin.Context, name, value, path string, age time.Duration) {
	maxAge := int(age / time.Second)
	if age < 0 {
		maxAge = -1
	}
	http.SetCookie(ctx.Writer, &http.Cookie{
		Name: name, Value: value, Path: path, MaxAge: maxAge,
		HttpOnly: true, Secure: ctx.Request.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
}

// safeNext keeps a post-sign-in destination only when it is a path of the
// console, so that the form cannot send anyone elsewhere.
func safeNext(next string) string {
	if len(next) > 2048 || !strings.HasPrefix(next, prefix+"/") || strings.HasPrefix(next, prefix+"/signin") ||
		strings.ContainsAny(next, "\\\r\n") || strings.HasPrefix(next, "//") {
		return ""
	}
	return next
}

// auditID is a random id for an audit record.
func auditID() string { return rand.Text() }
