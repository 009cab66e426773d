// Package wechat calls WeChat's server API for the configured mini programs and
// keeps one access token per app for the whole deployment.
//
// # Access tokens
//
// WeChat allows one live access token per app: every /cgi-bin/token call
// replaces the previous token (which survives only a five-minute overlap), the
// daily call quota is small, and servers that each fetch their own token kick
// each other's tokens out. [Tokens] therefore shares the token of every app
// through a NATS KV bucket (DefaultBucket, key = appid). The value holds the
// token, its expiry, a generation number and, while a refresh runs, a lease
// naming the instance doing it.
//
// Refreshing works like this:
//
//   - Every instance reads tokens from memory. A watch on the bucket keeps that
//     copy current, so a token fetched by one instance is used by all.
//   - When a token is due (RefreshAhead before it expires), or missing, or was
//     rejected by WeChat, an instance takes the lease by writing the record back
//     with a compare-and-set on its last revision. Only one write can win, so only
//     one instance calls WeChat; the others keep using the current token, or wait
//     for the new record if they have none.
//   - The lease holder fetches the token and writes it with another
//     compare-and-set, which also ends the lease. A holder that dies leaves a
//     lease that lapses after LeaseTTL, after which another instance takes over.
//   - A failed fetch is recorded in the bucket with a retry time, so every
//     instance reports the same clear error and none calls WeChat again before
//     the back-off ends.
//
// When a call fails with an access-token errcode (40001, 40014, 42001) the
// caller hands the token that failed to [Tokens.Invalidate]. The token is
// replaced only if it is still the current one; a stale token means another
// caller already replaced it. With stable_token the replacement first asks
// without force_refresh, which yields a new token whenever WeChat considers the
// old one expired, and forces a refresh only when WeChat hands back the very
// token it rejected: force_refresh is limited to 20 calls a day.
//
// Instance clocks take part in lease and expiry decisions, so they should be
// kept in sync (NTP); a skew of seconds is harmless next to the defaults.
//
// # Secrets
//
// AppSecrets and access tokens never appear in errors or logs. Errors from the
// HTTP client carry the request URL, which holds the secret or the token, so
// this package drops the URL and reports only the operation and the cause.
// The KV bucket does hold the tokens: restrict access to it as to any secret.
package wechat
