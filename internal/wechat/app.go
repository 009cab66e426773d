package wechat

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/wxgate/wxgate/schemas"
)

// Token APIs an App may use.
const (
	// TokenAPIStable is POST /cgi-bin/stable_token: it returns the same token to
	// every caller while the token lives, so callers cannot invalidate each
	// other's tokens. It is the default.
	TokenAPIStable = "stable_token"
	// TokenAPIPlain is GET /cgi-bin/token: every call issues a new token and the
	// previous one dies after a five-minute overlap.
	TokenAPIPlain = "token"
)

// DefaultAPIBase is WeChat's API host.
const DefaultAPIBase = "https://api.weixin.qq.com"

// Bounds of an App's fields.
const (
	maxAppIDBytes  = 64
	maxSecretBytes = 256
	maxBaseBytes   = 1024
)

// App is one mini program as the API client sees it. An App is a value and
// safe to share.
type App struct {
	// AppID is the mini program's appid.
	AppID string
	// Secret is the AppSecret, used only to fetch access tokens.
	Secret string
	// APIBase is WeChat's API host ("https://api.weixin.qq.com"), or the
	// simulator's URL in tests. Empty means DefaultAPIBase.
	APIBase string
	// TokenAPI is TokenAPIStable (the default when empty) or TokenAPIPlain.
	TokenAPI string
}

// String describes the app without its secret, so an App can be logged.
func (a App) String() string {
	return fmt.Sprintf("app %s (api %s, %s)", a.AppID, a.APIBase, a.TokenAPI)
}

// normalize applies defaults and checks the fields. Errors name the app and
// the field, never the secret.
func (a App) normalize() (App, error) {
	if a.AppID == "" || len(a.AppID) > maxAppIDBytes || !kvKeySafe(a.AppID) {
		return a, fmt.Errorf("%w: appid %q must be 1 to %d letters, digits, '-' or '_'", ErrInvalidApp, truncate(a.AppID, maxAppIDBytes), maxAppIDBytes)
	}
	if a.Secret == "" || len(a.Secret) > maxSecretBytes {
		return a, fmt.Errorf("%w: app %s: secret must be 1 to %d bytes", ErrInvalidApp, a.AppID, maxSecretBytes)
	}
	if a.APIBase == "" {
		a.APIBase = DefaultAPIBase
	}
	a.APIBase = strings.TrimRight(a.APIBase, "/")
	u, err := url.Parse(a.APIBase)
	if err != nil || len(a.APIBase) > maxBaseBytes || (u.Scheme != "http" && u.Scheme != "https") ||
		u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return a, fmt.Errorf("%w: app %s: api_base must be an http(s) URL without query or credentials", ErrInvalidApp, a.AppID)
	}
	switch a.TokenAPI {
	case "":
		a.TokenAPI = TokenAPIStable
	case TokenAPIStable, TokenAPIPlain:
	default:
		return a, fmt.Errorf("%w: app %s: token_api %q must be %s or %s", ErrInvalidApp, a.AppID, truncate(a.TokenAPI, 32), TokenAPIStable, TokenAPIPlain)
	}
	return a, nil
}

// normalizeApps checks every app and rejects duplicates.
func normalizeApps(apps []App) (map[string]App, []string, error) {
	out := make(map[string]App, len(apps))
	ids := make([]string, 0, len(apps))
	for _, a := range apps {
		n, err := a.normalize()
		if err != nil {
			return nil, nil, err
		}
		if _, dup := out[n.AppID]; dup {
			return nil, nil, fmt.Errorf("%w: appid %s configured twice", ErrInvalidApp, n.AppID)
		}
		out[n.AppID] = n
		ids = append(ids, n.AppID)
	}
	return out, ids, nil
}

// kvKeySafe reports whether s can be a NATS KV key and a subject token:
// appids are letters and digits, '-' and '_' leave room for test ids.
func kvKeySafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string { return schemas.Truncate(s, n) }
