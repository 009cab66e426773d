package wechat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of TokenOptions.
const (
	// DefaultBucket is the KV bucket holding every app's token.
	DefaultBucket = "wxgate_tokens"
	// DefaultRefreshAhead matches stable_token, which hands out a new token
	// only in the last five minutes of the current one's life.
	DefaultRefreshAhead = 5 * time.Minute
	// DefaultLeaseTTL outlasts one token fetch (at most CallTimeout) with room
	// to spare, and is short enough that a crashed holder delays others little.
	DefaultLeaseTTL = 30 * time.Second
)

const (
	// kvTimeout bounds one bucket operation when the caller's context allows longer.
	kvTimeout = 5 * time.Second
	// minLeaseTTL keeps a lease longer than the round trips around a fetch.
	minLeaseTTL = 500 * time.Millisecond
	// minRetryGap keeps a refresh loop from spinning when WeChat hands back a
	// token that is already due.
	minRetryGap = 50 * time.Millisecond
	// maxRetryGap bounds the wait before asking again for a token WeChat has
	// not rotated yet.
	maxRetryGap = time.Minute
)

// TokenOptions tunes a Tokens. The zero value takes the defaults.
type TokenOptions struct {
	// RefreshAhead is how long before expiry a token is refreshed: default
	// DefaultRefreshAhead, never more than half the token's lifetime.
	RefreshAhead time.Duration
	// LeaseTTL is how long one instance may hold the right to fetch before
	// another may take over: default DefaultLeaseTTL. A fetch is abandoned
	// before its lease lapses.
	LeaseTTL time.Duration
	// Clock replaces time.Now for expiry and lease decisions.
	Clock func() time.Time
	// Bucket is the KV bucket name: default DefaultBucket.
	Bucket string
	// Replicas is the bucket's replica count when this instance creates it: default 1.
	Replicas int
}

// TokenStats counts one instance's calls to the token endpoints for an app.
type TokenStats struct {
	// Fetches counts token endpoint calls, failed ones included.
	Fetches int64
	// Failures counts the calls that returned no token, except the ones
	// abandoned because their caller gave up or the Tokens closed.
	Failures int64
	// Forced counts the stable_token calls with force_refresh.
	Forced int64
}

// Tokens hands out each app's access token, one token per app for the whole
// deployment: the token lives in a NATS KV bucket and in memory, and exactly
// one instance refreshes it at a time, holding a lease taken by compare-and-set
// (see the package documentation). All methods are safe for concurrent use.
// Tokens never logs a token or puts one, or a secret, in an error.
type Tokens struct {
	kv     jetstream.KeyValue
	hc     *http.Client
	log    *slog.Logger
	opts   TokenOptions
	holder string
	apps   map[string]*tokenState

	ctx    context.Context // ends the watcher and refreshers
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// tokenState is one app's token as this instance knows it.
type tokenState struct {
	app App
	hot atomic.Pointer[hotToken] // read without locks by Token

	// sem admits one refresh loop per app and instance; other local callers
	// queue behind it and usually find the new token when they get in.
	sem chan struct{}

	mu      sync.Mutex
	rec     record
	rev     uint64
	changed chan struct{} // closed and replaced when rec changes

	fetches, failures, forced atomic.Int64
}

type hotToken struct {
	token     string
	expiresAt time.Time
}

// NewTokens opens (or creates) the token bucket, loads the stored tokens and
// starts watching the bucket and refreshing tokens ahead of expiry. Tokens are
// fetched on first use, not here, so start-up does not depend on WeChat.
// The background work ends when ctx ends or Close is called. A nil httpClient
// uses a default client; a nil logger discards logs.
func NewTokens(ctx context.Context, js jetstream.JetStream, apps []App, httpClient *http.Client, logger *slog.Logger, opts TokenOptions) (*Tokens, error) {
	normalized, ids, err := normalizeApps(apps)
	if err != nil {
		return nil, err
	}
	if opts.RefreshAhead < 0 || opts.LeaseTTL < 0 || opts.Replicas < 0 {
		return nil, errors.New("wechat: token options must not be negative")
	}
	if opts.RefreshAhead == 0 {
		opts.RefreshAhead = DefaultRefreshAhead
	}
	if opts.LeaseTTL == 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	if opts.LeaseTTL < minLeaseTTL {
		return nil, fmt.Errorf("wechat: lease TTL %v is under %v", opts.LeaseTTL, minLeaseTTL)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Bucket == "" {
		opts.Bucket = DefaultBucket
	}
	if opts.Replicas == 0 {
		opts.Replicas = 1
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var id [8]byte
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails

	kv, err := openBucket(ctx, js, opts.Bucket, opts.Replicas)
	if err != nil {
		return nil, err
	}
	t := &Tokens{
		kv:     kv,
		hc:     newHTTPClient(httpClient),
		log:    logger,
		opts:   opts,
		holder: hex.EncodeToString(id[:]),
		apps:   make(map[string]*tokenState, len(normalized)),
	}
	for _, appID := range ids {
		t.apps[appID] = &tokenState{app: normalized[appID], sem: make(chan struct{}, 1), changed: make(chan struct{})}
	}
	t.ctx, t.cancel = context.WithCancel(ctx)
	if len(ids) == 0 {
		return t, nil
	}
	w, err := kv.WatchFiltered(t.ctx, ids)
	if err != nil {
		t.cancel()
		return nil, fmt.Errorf("wechat: watching token bucket %s: %w", opts.Bucket, err)
	}
	if err := t.loadInitial(ctx, w); err != nil {
		_ = w.Stop()
		t.cancel()
		return nil, err
	}
	t.wg.Add(1)
	go t.watch(w)
	for _, st := range t.apps {
		t.wg.Add(1)
		go t.refresher(st)
	}
	return t, nil
}

// openBucket binds to the bucket, creating it when no instance has yet.
func openBucket(ctx context.Context, js jetstream.JetStream, name string, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, name)
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("wechat: opening token bucket %s: %w", name, err)
	}
	kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      name,
		Description: "WeChat access tokens, one per appid, shared by every wxgate instance",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err == nil {
		return kv, nil
	}
	// Another instance may have created it first.
	if kv, err2 := js.KeyValue(ctx, name); err2 == nil {
		return kv, nil
	}
	return nil, fmt.Errorf("wechat: creating token bucket %s: %w", name, err)
}

// Close stops the watcher and the refreshers and waits for them. Afterwards
// Token still returns a cached token that has not expired, so in-flight work
// can finish, but anything that needs a fetch fails with ErrClosed. Close is
// safe to call twice.
func (t *Tokens) Close() {
	t.cancel()
	t.wg.Wait()
}

// Token returns the app's current access token, fetching it first if no
// instance has one that is still valid. The hot path reads memory only.
func (t *Tokens) Token(ctx context.Context, appID string) (string, error) {
	st, ok := t.apps[appID]
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrUnknownApp, truncate(appID, maxAppIDBytes))
	}
	if h := st.hot.Load(); h != nil && t.opts.Clock().Before(h.expiresAt) {
		return h.token, nil
	}
	rec, err := t.ensure(ctx, st, goal{kind: goalUsable})
	if err != nil {
		return "", fmt.Errorf("%w for %s: %w", ErrTokenUnavailable, appID, err)
	}
	return rec.AccessToken, nil
}

// Invalidate reports that WeChat rejected failedToken with a token errcode. If
// failedToken is still the app's current token it is replaced (by this or
// another instance) before Invalidate returns; if it is not, someone already
// replaced it and nothing is fetched. With stable_token the replacement asks
// without force_refresh first and forces only if WeChat hands back failedToken.
func (t *Tokens) Invalidate(ctx context.Context, appID, failedToken string) error {
	st, ok := t.apps[appID]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownApp, truncate(appID, maxAppIDBytes))
	}
	if failedToken == "" {
		return nil
	}
	if _, err := t.ensure(ctx, st, goal{kind: goalReplace, failed: failedToken}); err != nil {
		return fmt.Errorf("%w for %s: %w", ErrTokenUnavailable, appID, err)
	}
	return nil
}

// Stats returns this instance's token-endpoint counters for appID.
func (t *Tokens) Stats(appID string) TokenStats {
	st, ok := t.apps[appID]
	if !ok {
		return TokenStats{}
	}
	return TokenStats{Fetches: st.fetches.Load(), Failures: st.failures.Load(), Forced: st.forced.Load()}
}

// goal is what a refresh loop must achieve.
type goal struct {
	kind   goalKind
	failed string // for goalReplace
}

type goalKind int

const (
	goalUsable  goalKind = iota // a token that has not expired
	goalDue                     // a token that is not yet due for refresh (or none: fetched on use)
	goalReplace                 // a token other than failed
)

func (g goal) met(r record, now time.Time) bool {
	switch g.kind {
	case goalUsable:
		return r.usable(now)
	case goalDue:
		return r.AccessToken == "" || now.Before(r.RefreshAt)
	default:
		return r.AccessToken != g.failed
	}
}

// errConflict is a lost compare-and-set: someone else wrote the record first.
var errConflict = errors.New("token record changed concurrently")

// ensure runs the refresh protocol until g is met and returns the record that
// meets it (or the record holding a freshly fetched token).
func (t *Tokens) ensure(ctx context.Context, st *tokenState, g goal) (record, error) {
	if rec, _, _ := st.current(); g.met(rec, t.opts.Clock()) {
		return rec, nil
	}
	select {
	case st.sem <- struct{}{}:
	case <-ctx.Done():
		return record{}, ctx.Err()
	case <-t.ctx.Done():
		return record{}, ErrClosed
	}
	defer func() { <-st.sem }()

	for {
		if t.ctx.Err() != nil {
			return record{}, ErrClosed
		}
		rec, rev, err := t.load(ctx, st)
		if err != nil {
			return record{}, err
		}
		now := t.opts.Clock()
		if g.met(rec, now) {
			return rec, nil
		}
		if f := rec.Failure; f != nil && now.Before(f.RetryAt) {
			// Every instance honours the back-off of the last failed fetch.
			return rec, f.err(st.app.AppID)
		}
		if l := rec.Lease; l != nil && l.Holder != t.holder && now.Before(l.Until) {
			if err := t.waitChange(ctx, st, rev, l.Until.Sub(now)); err != nil {
				return record{}, err
			}
			continue
		}
		leased := rec
		leased.Lease = &lease{Holder: t.holder, Until: now.Add(t.opts.LeaseTTL)}
		leaseRev, err := t.cas(ctx, st, rev, leased)
		if errors.Is(err, errConflict) {
			continue
		}
		if err != nil {
			return record{}, err
		}
		out, err := t.fetchLeased(ctx, st, rec, leaseRev, g)
		if errors.Is(err, errConflict) {
			continue // the lease lapsed and another instance took over
		}
		return out, err
	}
}

// fetchLeased fetches the token while holding the lease taken at leaseRev and
// stores the outcome, which also ends the lease.
func (t *Tokens) fetchLeased(ctx context.Context, st *tokenState, prev record, leaseRev uint64, g goal) (record, error) {
	// Give up on WeChat before the lease lapses, so no one else fetches meanwhile.
	fctx, cancel := context.WithTimeout(ctx, t.opts.LeaseTTL*3/4)
	defer cancel()
	start := t.opts.Clock()
	f, err := t.fetch(fctx, st, g)
	// The outcome is stored even if the caller gave up meanwhile: a fetched
	// token is worth keeping, and a failure must set the back-off.
	wctx := context.WithoutCancel(ctx)
	now := t.opts.Clock()
	next := prev
	next.Lease = nil
	if err != nil {
		// A caller that gave up, or an instance shutting down, only releases the
		// lease: WeChat did not fail, so no one else should back off.
		gaveUp := ctx.Err() != nil
		if !gaveUp {
			next.Failure = newFailure(err, opName(st.app), prev.Failure, now)
		}
		if _, werr := t.cas(wctx, st, leaseRev, next); werr != nil && !errors.Is(werr, errConflict) {
			t.log.Warn("storing a failed token fetch", "appid", st.app.AppID, "err", werr)
		}
		if !gaveUp {
			t.log.Warn("fetching access token failed", "appid", st.app.AppID, "err", err,
				"failures", next.Failure.Count, "retry_in", next.Failure.RetryAt.Sub(now).Round(time.Millisecond))
		}
		return prev, err
	}
	next = t.newRecord(prev, f, start, now)
	if _, err := t.cas(wctx, st, leaseRev, next); err != nil {
		if errors.Is(err, errConflict) {
			t.log.Warn("lost the token lease during a fetch; using the stored token", "appid", st.app.AppID)
			return record{}, errConflict
		}
		// The token is good even if the bucket is unreachable; the lease lapses
		// and another instance fetches again.
		t.log.Warn("storing access token failed", "appid", st.app.AppID, "err", err)
		return next, nil
	}
	t.log.Info("access token refreshed", "appid", st.app.AppID, "generation", next.Generation,
		"expires_in", f.expiresIn, "refresh_in", next.RefreshAt.Sub(now).Round(time.Millisecond))
	return next, nil
}

// fetch calls the token endpoint; for a replacement that WeChat answers with
// the very token it rejected, it forces a new one.
func (t *Tokens) fetch(ctx context.Context, st *tokenState, g goal) (fetched, error) {
	f, err := t.call(ctx, st, false)
	if err != nil || g.kind != goalReplace || f.token != g.failed || st.app.TokenAPI != TokenAPIStable {
		return f, err
	}
	t.log.Warn("WeChat rejected the access token it still hands out; forcing a refresh", "appid", st.app.AppID)
	return t.call(ctx, st, true)
}

func (t *Tokens) call(ctx context.Context, st *tokenState, force bool) (fetched, error) {
	st.fetches.Add(1)
	if force {
		st.forced.Add(1)
	}
	f, err := fetchToken(ctx, t.hc, st.app, force)
	// A call abandoned because its caller gave up, or because the instance is
	// shutting down, says nothing about WeChat: it is not a failure.
	if err != nil && !errors.Is(ctx.Err(), context.Canceled) {
		st.failures.Add(1)
	}
	return f, err
}

// newRecord stores a fetched token and schedules its refresh.
func (t *Tokens) newRecord(prev record, f fetched, start, now time.Time) record {
	next := record{
		AccessToken: f.token,
		ExpiresAt:   start.Add(f.expiresIn), // start: WeChat counts from before the answer arrived
		Generation:  prev.Generation,
	}
	if f.token != prev.AccessToken {
		next.Generation++
	}
	ahead := min(t.opts.RefreshAhead, f.expiresIn/2)
	next.RefreshAt = next.ExpiresAt.Add(-ahead)
	if f.token == prev.AccessToken || !next.RefreshAt.After(now) {
		// WeChat handed back a token that is already due: stable_token rotates
		// only near the end of a token's life. Ask again shortly, and at the
		// latest when it expires.
		gap := min(max(t.opts.RefreshAhead/4, minRetryGap), maxRetryGap)
		next.RefreshAt = now.Add(gap)
		if next.RefreshAt.After(next.ExpiresAt) {
			next.RefreshAt = next.ExpiresAt
		}
	}
	if next.RefreshAt.Before(now.Add(minRetryGap)) {
		next.RefreshAt = now.Add(minRetryGap)
	}
	return next
}

func opName(app App) string {
	if app.TokenAPI == TokenAPIPlain {
		return OpToken
	}
	return OpStableToken
}

// load reads the app's record from the bucket and caches it.
func (t *Tokens) load(ctx context.Context, st *tokenState) (record, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	e, err := t.kv.Get(ctx, st.app.AppID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return record{}, 0, nil
	}
	if err != nil {
		return record{}, 0, fmt.Errorf("reading token bucket: %w", err)
	}
	rec, err := decodeRecord(e.Value())
	if err != nil {
		// Overwritten by the next fetch; the revision keeps the CAS honest.
		t.log.Warn("ignoring unreadable token record", "appid", st.app.AppID, "err", err)
		rec = record{}
	}
	st.observe(rec, e.Revision())
	return rec, e.Revision(), nil
}

// cas writes rec if the key is still at rev (0: the key must not exist) and
// caches it. A lost race returns errConflict.
func (t *Tokens) cas(ctx context.Context, st *tokenState, rev uint64, rec record) (uint64, error) {
	data, err := encodeRecord(rec)
	if err != nil {
		return 0, fmt.Errorf("encoding token record: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	var newRev uint64
	if rev == 0 {
		newRev, err = t.kv.Create(ctx, st.app.AppID, data)
	} else {
		newRev, err = t.kv.Update(ctx, st.app.AppID, data, rev)
	}
	switch {
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return 0, errConflict
	case err != nil:
		return 0, fmt.Errorf("writing token bucket: %w", err)
	}
	st.observe(rec, newRev)
	return newRev, nil
}

// waitChange waits until the record moves past rev, d passes, or a poll
// interval passes (in case the watcher missed an update).
func (t *Tokens) waitChange(ctx context.Context, st *tokenState, rev uint64, d time.Duration) error {
	poll := min(max(t.opts.LeaseTTL/4, 10*time.Millisecond), time.Second)
	timer := time.NewTimer(max(min(d, poll), time.Millisecond))
	defer timer.Stop()
	_, cur, ch := st.current()
	if cur > rev {
		return nil
	}
	select {
	case <-ch:
	case <-timer.C:
	case <-ctx.Done():
		return ctx.Err()
	case <-t.ctx.Done():
		return ErrClosed
	}
	return nil
}

// loadInitial reads the watcher's initial values, so tokens stored by other
// instances are used from the first call.
func (t *Tokens) loadInitial(ctx context.Context, w jetstream.KeyWatcher) error {
	ctx, cancel := context.WithTimeout(ctx, kvTimeout)
	defer cancel()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("wechat: token bucket watch closed")
			}
			if e == nil {
				return nil // initial values done
			}
			t.apply(e)
		case <-ctx.Done():
			return fmt.Errorf("wechat: loading stored tokens: %w", ctx.Err())
		}
	}
}

// watch applies bucket updates until the Tokens is closed.
func (t *Tokens) watch(w jetstream.KeyWatcher) {
	defer t.wg.Done()
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-t.ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				if t.ctx.Err() == nil {
					t.log.Warn("token bucket watch ended; falling back to polling")
				}
				return
			}
			if e != nil {
				t.apply(e)
			}
		}
	}
}

func (t *Tokens) apply(e jetstream.KeyValueEntry) {
	st, ok := t.apps[e.Key()]
	if !ok {
		return
	}
	var rec record
	if e.Operation() == jetstream.KeyValuePut {
		var err error
		if rec, err = decodeRecord(e.Value()); err != nil {
			t.log.Warn("ignoring unreadable token record", "appid", e.Key(), "err", err)
			return
		}
	}
	st.observe(rec, e.Revision())
}

// refresher refreshes st's token when it falls due, for as long as the
// Tokens runs. Every instance runs one per app; the lease lets only one fetch.
func (t *Tokens) refresher(st *tokenState) {
	defer t.wg.Done()
	idle := min(max(t.opts.LeaseTTL/4, 10*time.Millisecond), time.Second)
	for {
		rec, _, changed := st.current()
		var timer *time.Timer
		var fire <-chan time.Time
		if rec.AccessToken != "" {
			at := rec.RefreshAt
			if f := rec.Failure; f != nil && f.RetryAt.After(at) {
				at = f.RetryAt
			}
			timer = time.NewTimer(max(at.Sub(t.opts.Clock()), 0))
			fire = timer.C
		}
		select {
		case <-t.ctx.Done():
		case <-changed:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
		if t.ctx.Err() != nil {
			return
		}
		if !t.due(st) {
			continue
		}
		if _, err := t.ensure(t.ctx, st, goal{kind: goalDue}); err != nil && t.ctx.Err() == nil {
			t.log.Warn("refreshing access token ahead of expiry failed", "appid", st.app.AppID, "err", err)
			// Failures with a back-off are rescheduled from the record; this
			// pause covers an unreachable bucket.
			select {
			case <-t.ctx.Done():
				return
			case <-time.After(idle):
			}
		}
	}
}

// due reports whether st's token needs a refresh now.
func (t *Tokens) due(st *tokenState) bool {
	rec, _, _ := st.current()
	return !(goal{kind: goalDue}).met(rec, t.opts.Clock())
}

// current returns the cached record, its revision and a channel closed on its next change.
func (st *tokenState) current() (record, uint64, <-chan struct{}) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.rec, st.rev, st.changed
}

// observe caches rec if rev is newer than what is cached, and wakes waiters.
func (st *tokenState) observe(rec record, rev uint64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if rev <= st.rev {
		return
	}
	st.rec, st.rev = rec, rev
	if rec.AccessToken == "" {
		st.hot.Store(nil)
	} else if h := st.hot.Load(); h == nil || h.token != rec.AccessToken || !h.expiresAt.Equal(rec.ExpiresAt) {
		st.hot.Store(&hotToken{token: rec.AccessToken, expiresAt: rec.ExpiresAt})
	}
	close(st.changed)
	st.changed = make(chan struct{})
}
