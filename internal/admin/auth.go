package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// Role is what a token may do. Roles nest: each includes the ones before it,
// so a send token also reads and an admin token may do everything.
type Role int

// The roles, from the least to the most a token may do.
const (
	// RoleRead reads messages, consent ledgers and received events.
	RoleRead Role = iota + 1
	// RoleSend also requests sends and reports consent results.
	RoleSend
	// RoleAdmin also reads dead letters and the audit log, redrives dead
	// letters and resends messages whose outcome is unknown.
	RoleAdmin
)

var roleNames = map[Role]string{RoleRead: "read", RoleSend: "send", RoleAdmin: "admin"}

func (r Role) String() string {
	if n, ok := roleNames[r]; ok {
		return n
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// ParseRole returns the role named s: "read", "send" or "admin".
func ParseRole(s string) (Role, error) {
	for r, n := range roleNames {
		if n == s {
			return r, nil
		}
	}
	return 0, fmt.Errorf("unknown role %q: want read, send or admin", s)
}

// AllApps in Token.Apps lets a token act on every app, and on the routes that
// belong to no app (dead letters and the audit log).
const AllApps = "*"

// hashPrefix starts a token given as the hex SHA-256 digest of itself.
const hashPrefix = "sha256:"

// Token is one accepted bearer token and its scope: a role on some apps.
type Token struct {
	// Name identifies the token in the audit log and the logs, which never
	// show the token itself.
	Name string
	// Secret is the token, or "sha256:" followed by the hex SHA-256 digest of
	// the token, so that the configuration need not hold it.
	Secret string
	Role   Role
	// Apps are the appids the token may act on, or AllApps.
	Apps []string
}

// grant is a Token as the API keeps it: its digest and scope, never the token.
type grant struct {
	name    string
	digest  [sha256.Size]byte
	role    Role
	allApps bool
	apps    map[string]bool
}

// newGrant returns the grant of t, or why t cannot be accepted.
func newGrant(t Token) (grant, error) {
	g := grant{name: t.Name, role: t.Role, apps: map[string]bool{}}
	switch {
	case t.Name == "":
		return g, errors.New("a token needs a name")
	case t.Secret == "":
		return g, errors.New("empty token")
	case roleNames[t.Role] == "":
		return g, fmt.Errorf("unknown role %d", int(t.Role))
	}
	if hexDigest, hashed := strings.CutPrefix(t.Secret, hashPrefix); hashed {
		n, err := hex.Decode(g.digest[:], []byte(hexDigest))
		if err != nil || n != sha256.Size || len(hexDigest) != 2*sha256.Size {
			return g, errors.New(`a hashed token must be "sha256:" followed by 64 hex digits`)
		}
	} else {
		g.digest = sha256.Sum256([]byte(t.Secret))
	}
	for _, a := range t.Apps {
		if a == AllApps {
			g.allApps = true
		}
		g.apps[a] = true
	}
	return g, nil
}

// allows reports whether the grant holds role on appID (AllApps: on every app).
func (g *grant) allows(role Role, appID string) bool {
	if g.role < role {
		return false
	}
	return g.allApps || (appID != AllApps && g.apps[appID])
}

// grantKey keeps the request's grant in its gin.Context.
const grantKey = "wxgate.admin.grant"

// grantOf returns the grant authenticate found for the request, or nil.
func grantOf(c *gin.Context) *grant {
	g, _ := c.Get(grantKey)
	gr, _ := g.(*grant)
	return gr
}

// authenticate lets a request through only with an accepted bearer token, and
// remembers the token's grant for authorize and the audit log.
func (a *API) authenticate(c *gin.Context) {
	if g := a.lookup(c.GetHeader("Authorization")); g != nil {
		c.Set(grantKey, g)
		c.Next()
		return
	}
	// Neither the header nor the guess is logged: a near miss may be a real token.
	a.log.Info("admin request unauthorized", "method", c.Request.Method, "path", c.Request.URL.Path)
	c.Header("WWW-Authenticate", `Bearer realm="wxgate"`)
	c.AbortWithStatusJSON(http.StatusUnauthorized, errorBody{Error: "unauthorized"})
}

// lookup returns the grant of the token in header, "Bearer <token>", or nil.
// The scheme is case-insensitive (RFC 7235).
func (a *API) lookup(header string) *grant {
	const scheme = "bearer "
	if len(header) <= len(scheme) || !strings.EqualFold(header[:len(scheme)], scheme) {
		return nil
	}
	return a.lookupToken(strings.TrimSpace(header[len(scheme):]))
}

// lookupToken returns the grant of token, or nil. The guess is compared with
// every token, each through its SHA-256 digest, without stopping at a match:
// the time taken says nothing about which token matched, how many there are,
// or how long they are.
func (a *API) lookupToken(token string) *grant {
	if token == "" {
		return nil
	}
	guess := sha256.Sum256([]byte(token))
	found := -1
	for i := range a.grants {
		eq := subtle.ConstantTimeCompare(guess[:], a.grants[i].digest[:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	if found < 0 {
		return nil
	}
	return &a.grants[found]
}

// routeScope is what a route needs: a role on the app in its path, or on all
// apps for a route that names none.
type routeScope struct {
	role   Role
	perApp bool
}

// authorize lets a request through only if its token holds the role its
// route needs on the app it names. A route the API does not know the scope of
// needs admin on all apps.
func (a *API) authorize(c *gin.Context) {
	need, ok := a.scopes[c.Request.Method+" "+c.FullPath()]
	if !ok {
		need = routeScope{role: RoleAdmin}
	}
	app := AllApps
	if need.perApp {
		app = c.Param("appid")
	}
	if g := grantOf(c); g != nil && g.allows(need.role, app) {
		c.Next()
		return
	}
	a.fail(c, &forbiddenError{role: need.role, appID: app})
}

// forbiddenError is a request whose token lacks the scope its route needs.
type forbiddenError struct {
	role  Role
	appID string
}

func (e *forbiddenError) Error() string { return "forbidden: the token lacks " + e.scope() }

// scope names the missing scope: "send on wx123", or "admin on *" for all apps.
// An appid that is not a well-formed id is not repeated.
func (e *forbiddenError) scope() string {
	app := e.appID
	if reason, _ := checkID(app); reason != "" || app == "" {
		app = "the appid in the path"
	}
	return e.role.String() + " on " + app
}

// Identity is what an accepted token may do, as other front ends of the same
// tokens (the console) see it: its name and scope, never the token. The zero
// Identity may do nothing.
type Identity struct {
	g *grant
}

// Identify returns the identity of token, compared with every accepted token
// in constant time as a bearer token is; ok is false when none matches.
// It is safe for concurrent use.
func (a *API) Identify(token string) (id Identity, ok bool) {
	g := a.lookupToken(token)
	return Identity{g: g}, g != nil
}

// Name is the token's name, for logs and the audit log.
func (id Identity) Name() string {
	if id.g == nil {
		return ""
	}
	return id.g.name
}

// Allows reports whether the token holds role on appID; AllApps asks for the
// role on every app.
func (id Identity) Allows(role Role, appID string) bool {
	return id.g != nil && id.g.allows(role, appID)
}

// MissingScope names the scope a refused request lacks, as the API's 403
// answers name it: "send on wx123", or "admin on *".
func MissingScope(role Role, appID string) string {
	return (&forbiddenError{role: role, appID: appID}).scope()
}
