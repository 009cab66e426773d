package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
)

// Admin configures the operator API under /v1.
type Admin struct {
	// Tokens are the bearer tokens accepted by /v1, each with a name and a
	// scope. The older form, a list of bare tokens (tokens: [a, b], or
	// WXGATE_ADMIN_TOKENS=a,b), is read as admin tokens for all apps named
	// admin.tokens[0], admin.tokens[1], ...
	Tokens []AdminToken `yaml:"tokens"`
}

// AdminToken is one bearer token of the admin API and what it may do.
type AdminToken struct {
	// Name identifies the token in the audit log and the logs, which never
	// show the token itself.
	Name string `yaml:"name"`
	// Token is the token, or "sha256:" followed by the hex SHA-256 digest of
	// it, so that the configuration holds nothing a caller could present.
	Token string `yaml:"token" secret:"true"`
	// Role is RoleRead, RoleSend or RoleAdmin; each includes the ones before it.
	Role string `yaml:"role"`
	// Apps are the appids the token may act on, or AllApps alone.
	Apps []string `yaml:"apps"`
}

// The roles of an admin token, from the least to the most it may do.
const (
	RoleRead  = "read"
	RoleSend  = "send"
	RoleAdmin = "admin"
)

// AllApps in AdminToken.Apps lets the token act on every app, and on the
// routes that belong to no app (dead letters, the audit log).
const AllApps = "*"

// tokenHashPrefix starts a token given as its SHA-256 digest.
const tokenHashPrefix = "sha256:"

// tokensKey is admin.tokens, which in its older form is a list of bare tokens.
const tokensKey = "admin.tokens"

var (
	tokenIndexPattern = regexp.MustCompile(`^admin\.tokens\.([0-9]+)\.`)
	envTokenPattern   = regexp.MustCompile(`^WXGATE_ADMIN_TOKENS_([0-9]{1,3})_([A-Z_]+)$`)
	tokenNamePattern  = regexp.MustCompile(`^[A-Za-z0-9._:@\[\]-]{1,64}$`)
	tokenHashPattern  = regexp.MustCompile(`^sha256:[0-9a-fA-F]{64}$`)
)

// minTokenLength bounds a plaintext token from below: a short one is guessed.
const minTokenLength = 8

// bareTokens reads the older form of admin.tokens, a list of bare tokens
// given as admin.tokens or admin.tokens_file (one or more a line, or commas),
// into admin tokens for all apps, replacing any tokens set before, as an
// override does. It reports whether values held that form. The form cannot
// be mixed with token entries in one source.
func bareTokens(cfg *Config, values map[string]string, origin func(string) string, ps *problems) bool {
	list, inline := values[tokensKey]
	file, fromFile := values[tokensKey+fileSuffix]
	if !inline && !fromFile {
		return false
	}
	key := tokensKey
	if fromFile {
		key = tokensKey + fileSuffix
	}
	if inline && fromFile {
		ps.add(origin(key), "give admin.tokens or admin.tokens_file, not both")
		return true
	}
	for k := range values {
		if tokenIndexPattern.MatchString(k) {
			ps.add(origin(key), "give a list of bare tokens or a list of token entries (name, token, role, apps), not both")
			return true
		}
	}
	if fromFile {
		b, err := os.ReadFile(file)
		if err != nil {
			ps.add(origin(key), err.Error())
			return true
		}
		list = string(b)
	}
	var tokens []string
	if err := set(reflect.ValueOf(&tokens).Elem(), list); err != nil {
		ps.add(origin(key), err.Error())
		return true
	}
	cfg.Admin.Tokens = make([]AdminToken, len(tokens))
	for i, t := range tokens {
		cfg.Admin.Tokens[i] = AdminToken{Name: fmt.Sprintf("%s[%d]", tokensKey, i), Token: t, Role: RoleAdmin, Apps: []string{AllApps}}
	}
	return true
}

// validateTokens checks every admin token against the configured apps.
func (c *Config) validateTokens(add func(key, why string)) {
	bad := func(i int, key, why string) {
		add(fmt.Sprintf("%s[%d].%s", tokensKey, i, key), why)
	}
	apps := make(map[string]bool, len(c.Apps))
	for _, a := range c.Apps {
		apps[a.AppID] = true
	}
	names := map[string]int{}
	digests := map[[sha256.Size]byte]int{}
tokens:
	for i, t := range c.Admin.Tokens {
		if !tokenNamePattern.MatchString(t.Name) {
			bad(i, "name", "is required: 1 to 64 letters, digits or . _ : @ [ ] -")
			continue tokens
		}
		if j, ok := names[t.Name]; ok {
			bad(i, "name", fmt.Sprintf("is the name of admin.tokens[%d] too", j))
			continue tokens
		}
		names[t.Name] = i
		d, err := tokenDigest(t.Token)
		if err != nil {
			bad(i, "token", err.Error())
			continue tokens
		}
		if j, ok := digests[d]; ok {
			bad(i, "token", fmt.Sprintf("is the token of admin.tokens[%d] too", j))
			continue tokens
		}
		digests[d] = i
		switch t.Role {
		case RoleRead, RoleSend, RoleAdmin:
		default:
			bad(i, "role", "must be read, send or admin")
			continue tokens
		}
		if len(t.Apps) == 0 {
			bad(i, "apps", `is required: the appids the token may act on, or "*" for all`)
			continue tokens
		}
		seen := map[string]bool{}
		for _, a := range t.Apps {
			switch {
			case a == AllApps && len(t.Apps) > 1:
				bad(i, "apps", `"*" already means every app: list it alone`)
				continue tokens
			case a != AllApps && !apps[a]:
				bad(i, "apps", fmt.Sprintf("%s is not one of apps[].appid", a))
				continue tokens
			case seen[a]:
				bad(i, "apps", fmt.Sprintf("lists %s twice", a))
				continue tokens
			}
			seen[a] = true
		}
	}
}

// tokenDigest returns the SHA-256 digest of an admin token given as itself or
// as "sha256:<hex digest>", or why it is not acceptable. The admin API reads
// tokens the same way.
func tokenDigest(token string) ([sha256.Size]byte, error) {
	var d [sha256.Size]byte
	if rest, hashed := strings.CutPrefix(token, tokenHashPrefix); hashed {
		if !tokenHashPattern.MatchString(token) {
			return d, fmt.Errorf("a hashed token must be %s followed by 64 hex digits", tokenHashPrefix)
		}
		if _, err := hex.Decode(d[:], []byte(rest)); err != nil {
			return d, fmt.Errorf("a hashed token must be %s followed by 64 hex digits", tokenHashPrefix)
		}
		return d, nil
	}
	if len(token) < minTokenLength {
		return d, fmt.Errorf("must be at least %d characters", minTokenLength)
	}
	return sha256.Sum256([]byte(token)), nil
}
