package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// authenticate lets a request through only with an accepted bearer token. The
// guess is compared with every token, each through its SHA-256 digest, without
// stopping at a match: the time taken says nothing about which token matched,
// how many there are, or how long they are.
func (a *API) authenticate(c *gin.Context) {
	if a.authorized(c.GetHeader("Authorization")) {
		c.Next()
		return
	}
	// Neither the header nor the guess is logged: a near miss may be a real token.
	a.log.Info("admin request unauthorized", "method", c.Request.Method, "path", c.Request.URL.Path)
	c.Header("WWW-Authenticate", `Bearer realm="wxgate"`)
	c.AbortWithStatusJSON(http.StatusUnauthorized, errorBody{Error: "unauthorized"})
}

// authorized reports whether header is "Bearer <token>" with an accepted token.
// The scheme is case-insensitive (RFC 7235).
func (a *API) authorized(header string) bool {
	const scheme = "bearer "
	if len(header) <= len(scheme) || !strings.EqualFold(header[:len(scheme)], scheme) {
		return false
	}
	guess := sha256.Sum256([]byte(strings.TrimSpace(header[len(scheme):])))
	match := 0
	for i := range a.tokens {
		match |= subtle.ConstantTimeCompare(guess[:], a.tokens[i][:])
	}
	return match == 1
}
