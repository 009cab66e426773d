package sim

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"
)

const (
	tokenRandomBytes = 96  // base64url of 96 bytes is 128 characters, close to WeChat's length
	maxTokenChars    = 512 // anything longer is malformed (40014)
	maxTokenBody     = 4 << 10
	grantType        = "client_credential"
)

// accessToken is one issued token.
type accessToken struct {
	appID   string
	expires time.Time
	// deadline, when set, is the end of the overlap after the token was
	// replaced; it is never later than expires.
	deadline time.Time
}

// tokenBook holds every issued token. Plain (/cgi-bin/token) and stable
// (/cgi-bin/stable_token) tokens are separate, as on WeChat: fetching one kind
// never invalidates the other.
type tokenBook struct {
	mu         sync.Mutex
	byValue    map[string]*accessToken
	plain      map[string]string // appid -> current plain token
	stable     map[string]string // appid -> current stable token
	lastForce  map[string]time.Time
	plainCalls map[string]int // for Config.TokenCallLimit
	lastSweep  time.Time
}

func (b *tokenBook) init() {
	b.byValue = map[string]*accessToken{}
	b.plain = map[string]string{}
	b.stable = map[string]string{}
	b.lastForce = map[string]time.Time{}
	b.plainCalls = map[string]int{}
}

func (b *tokenBook) resetQuota() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.plainCalls = map[string]int{}
	b.lastForce = map[string]time.Time{}
}

// newTokenValue returns a random token of WeChat's alphabet [A-Za-z0-9_-].
func newTokenValue() string {
	var raw [tokenRandomBytes]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

// issueLocked creates a token for appID, replacing cur (if any) after the overlap.
// The caller holds b.mu.
func (s *Sim) issueLocked(appID string, cur map[string]string, now time.Time) (string, *accessToken) {
	b := &s.tokens
	if old, ok := b.byValue[cur[appID]]; ok {
		d := now.Add(s.cfg.TokenOverlap)
		if d.Before(old.expires) && (old.deadline.IsZero() || d.Before(old.deadline)) {
			old.deadline = d
		}
	}
	v := newTokenValue()
	t := &accessToken{appID: appID, expires: now.Add(s.cfg.TokenTTL)}
	b.byValue[v] = t
	cur[appID] = v
	s.sweepLocked(now)
	s.counters.update(appID, func(_ *Stats, a *AppStats) { a.TokensIssued++ })
	return v, t
}

// sweepLocked forgets tokens long dead, at most once per TTL, so the book
// stays bounded however often clients fetch tokens. A forgotten token answers
// 40001 instead of 42001, which clients treat alike.
func (s *Sim) sweepLocked(now time.Time) {
	b := &s.tokens
	if now.Sub(b.lastSweep) < s.cfg.TokenTTL {
		return
	}
	b.lastSweep = now
	for v, t := range b.byValue {
		if now.Sub(t.expires) > s.cfg.TokenTTL {
			delete(b.byValue, v)
		}
	}
}

// checkToken resolves an access_token to its app, or the errcode WeChat gives.
func (s *Sim) checkToken(v string) (appID string, errcode int) {
	if v == "" {
		return "", 41001
	}
	if len(v) > maxTokenChars || !validTokenChars(v) {
		return "", 40014
	}
	now := s.now()
	b := &s.tokens
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.byValue[v]
	switch {
	case !ok:
		return "", 40001
	case !t.deadline.IsZero() && !now.Before(t.deadline):
		return t.appID, 40001
	case !now.Before(t.expires):
		return t.appID, 42001
	}
	return t.appID, 0
}

func validTokenChars(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ExpireTokens expires every access token issued so far: calls using them get
// 42001 and the next stable_token call issues a new one. It is safe for
// concurrent use.
func (s *Sim) ExpireTokens() {
	now := s.now()
	b := &s.tokens
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, t := range b.byValue {
		if now.Before(t.expires) {
			t.expires = now
		}
		if !t.deadline.IsZero() && t.deadline.After(t.expires) {
			t.deadline = t.expires
		}
	}
}

// authenticate checks appid and secret; the secret is compared in constant time.
func (s *Sim) authenticate(appID, secret string) (*app, int) {
	a, ok := s.apps[appID]
	if !ok {
		return nil, 40013
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(a.cfg.Secret)) != 1 {
		return nil, 40001
	}
	return a, 0
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
}

// expiresIn rounds the remaining lifetime up to whole seconds, at least 1,
// so a sub-second TTL in tests still reads as a live token.
func expiresIn(d time.Duration) int64 {
	return max(1, int64((d+time.Second-1)/time.Second))
}

// handleToken serves GET /cgi-bin/token: every call issues a new token.
func (s *Sim) handleToken(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	appID := q.Get("appid")
	s.counters.update(appID, func(_ *Stats, a *AppStats) { a.TokenCalls++ })
	if q.Get("grant_type") != grantType {
		writeErr(w, 40002)
		return
	}
	if _, code := s.authenticate(appID, q.Get("secret")); code != 0 {
		writeErr(w, code)
		return
	}
	if code, fail := s.injectToken(); fail {
		writeErr(w, code)
		return
	}
	v, code := s.plainToken(appID)
	if code != 0 {
		writeErr(w, code)
		return
	}
	writeJSON(w, http.StatusOK, tokenResponse{AccessToken: v, ExpiresIn: expiresIn(s.cfg.TokenTTL)})
}

// plainToken issues a new plain token for appID within the call quota.
func (s *Sim) plainToken(appID string) (string, int) {
	now := s.now()
	b := &s.tokens
	b.mu.Lock()
	defer b.mu.Unlock()
	b.plainCalls[appID]++
	if s.cfg.TokenCallLimit > 0 && b.plainCalls[appID] > s.cfg.TokenCallLimit {
		return "", 45009
	}
	v, _ := s.issueLocked(appID, b.plain, now)
	return v, 0
}

type stableTokenRequest struct {
	GrantType    string `json:"grant_type"`
	AppID        string `json:"appid"`
	Secret       string `json:"secret"`
	ForceRefresh bool   `json:"force_refresh"`
}

// handleStableToken serves POST /cgi-bin/stable_token: the current stable
// token while it lives, a new one when it has expired or on force_refresh.
func (s *Sim) handleStableToken(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxTokenBody))
	var req stableTokenRequest
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	s.counters.update(req.AppID, func(_ *Stats, a *AppStats) { a.StableTokenCalls++ })
	if err != nil {
		writeErr(w, 47001)
		return
	}
	if req.GrantType != grantType {
		writeErr(w, 40002)
		return
	}
	if _, code := s.authenticate(req.AppID, req.Secret); code != 0 {
		writeErr(w, code)
		return
	}
	if code, fail := s.injectToken(); fail {
		writeErr(w, code)
		return
	}
	resp, code := s.stableToken(req.AppID, req.ForceRefresh)
	if code != 0 {
		writeErr(w, code)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// stableToken returns the app's current stable token, issuing a new one when
// there is none alive or force is set (at most once per ForceRefreshGap).
func (s *Sim) stableToken(appID string, force bool) (tokenResponse, int) {
	now := s.now()
	b := &s.tokens
	b.mu.Lock()
	defer b.mu.Unlock()
	if force {
		if last, ok := b.lastForce[appID]; ok && now.Sub(last) < s.cfg.ForceRefreshGap {
			return tokenResponse{}, 45011
		}
		b.lastForce[appID] = now
	} else if t, ok := b.byValue[b.stable[appID]]; ok && now.Before(t.expires) &&
		(t.deadline.IsZero() || now.Before(t.deadline)) {
		return tokenResponse{AccessToken: b.stable[appID], ExpiresIn: expiresIn(t.expires.Sub(now))}, 0
	}
	v, t := s.issueLocked(appID, b.stable, now)
	return tokenResponse{AccessToken: v, ExpiresIn: expiresIn(t.expires.Sub(now))}, 0
}
