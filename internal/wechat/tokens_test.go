package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wxgate/wxgate/internal/broker/natstest"
	"github.com/wxgate/wxgate/internal/checkfor"
	"github.com/wxgate/wxgate/internal/sim"
	"github.com/wxgate/wxgate/internal/testclock"
)

func TestTokenFetchedOnceAndShared(t *testing.T) {
	s, base := startSim(t, sim.Config{})
	srv := natstest.Start(t)
	apps := []App{testApp(base, "")}
	instances := []*Tokens{newTokens(t, srv, apps, TokenOptions{}), newTokens(t, srv, apps, TokenOptions{}), newTokens(t, srv, apps, TokenOptions{})}
	ctx := testCtx(t)

	// Every instance asks at once, many times: one fetch in all.
	var wg sync.WaitGroup
	got := make([]string, len(instances)*20)
	errs := make([]error, len(got))
	for i := range got {
		wg.Go(func() { got[i], errs[i] = instances[i%len(instances)].Token(ctx, testAppID) })
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil {
			t.Fatalf("Token() call %d: %v", i, errs[i])
		}
		if got[i] != got[0] {
			t.Fatalf("Token() call %d returned a different token than call 0", i)
		}
	}
	if st := s.Stats().Apps[testAppID]; st.StableTokenCalls != 1 || st.TokenCalls != 0 {
		t.Errorf("sim stats = %+v, want exactly 1 stable_token call", st)
	}
	var fetches int64
	for _, tk := range instances {
		fetches += tk.Stats(testAppID).Fetches
	}
	if fetches != 1 {
		t.Errorf("fetches over all instances = %d, want 1", fetches)
	}

	// A later instance finds the stored token and fetches nothing.
	late := newTokens(t, srv, apps, TokenOptions{})
	if tok, err := late.Token(ctx, testAppID); err != nil || tok != got[0] {
		t.Errorf("late instance Token() = (same token: %v), %v; want the stored token", tok == got[0], err)
	}
	if n := late.Stats(testAppID).Fetches; n != 0 {
		t.Errorf("late instance fetches = %d, want 0", n)
	}
	if st := s.Stats().Apps[testAppID]; st.StableTokenCalls != 1 {
		t.Errorf("stable_token calls after a late instance = %d, want 1", st.StableTokenCalls)
	}
}

// hammer runs n instances on clk, which the simulator must share. After the
// first token exists it moves clk by step, steps times, and waits each time
// until one more token call has been made and stored; meanwhile every instance
// calls Token() and Send() continuously, and stops before the clock moves
// again. It returns the instances and the number of successful sends.
func hammer(t *testing.T, s *sim.Sim, srv *natstest.Server, clk *testclock.Clock, app App, n, steps int, step time.Duration, opts TokenOptions) ([]*Tokens, int64) {
	t.Helper()
	ctx := testCtx(t)
	opts.Clock = clk.Now
	instances := make([]*Tokens, n)
	clients := make([]*Client, n)
	bodies := make([][]byte, n)
	for i := range instances {
		instances[i] = newTokens(t, srv, []App{app}, opts)
		clients[i] = NewClient([]App{app}, instances[i], nil)
		openID := fmt.Sprintf("o-hammer-user-%d", i)
		subscribe(t, s, openID)
		bodies[i] = sendBody(t, openID)
	}
	if _, err := instances[0].Token(ctx, testAppID); err != nil {
		t.Fatalf("first Token(): %v", err)
	}
	kv := kvOf(t, srv)
	var sent atomic.Int64
	for k := range steps + 1 {
		if k > 0 {
			clk.Advance(step)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		errc := make(chan error, 3*n)
		// every runs f at least once, then again every pause until stop.
		every := func(pause time.Duration, f func() error) {
			wg.Go(func() {
				for {
					if err := f(); err != nil {
						errc <- err
						return
					}
					select {
					case <-stop:
						return
					case <-time.After(pause):
					}
				}
			})
		}
		for i := range instances {
			// Two goroutines per instance read the token; one sends with it.
			for range 2 {
				every(time.Millisecond, func() error {
					if _, err := instances[i].Token(ctx, testAppID); err != nil {
						return fmt.Errorf("instance %d Token(): %w", i, err)
					}
					return nil
				})
			}
			every(20*time.Millisecond, func() error {
				if _, err := clients[i].Send(ctx, testAppID, bodies[i]); err != nil {
					return fmt.Errorf("instance %d Send(): %w", i, err)
				}
				sent.Add(1)
				return nil
			})
		}
		checkfor.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
			return tokenCallsStored(ctx, s, kv, int64(k+1))
		})
		close(stop)
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Error(err)
		}
	}
	return instances, sent.Load()
}

// tokenCallsStored reports whether the simulator has answered at least calls
// token calls and the last one's outcome is stored, its lease released.
func tokenCallsStored(ctx context.Context, s *sim.Sim, kv jetstream.KeyValue, calls int64) error {
	app := s.Stats().Apps[testAppID]
	if got := app.TokenCalls + app.StableTokenCalls; got < calls {
		return fmt.Errorf("%d token calls, want %d", got, calls)
	}
	e, err := kv.Get(ctx, testAppID)
	if err != nil {
		return err
	}
	rec, err := decodeRecord(e.Value())
	if err != nil {
		return err
	}
	if rec.Lease != nil {
		return fmt.Errorf("the token record is leased by %s", rec.Lease.Holder)
	}
	return nil
}

func TestRefreshAheadByOneInstance(t *testing.T) {
	t.Parallel()
	// With /cgi-bin/token every call issues a new token, so the call count is
	// exactly the number of refreshes. A 2 s token refreshed 1 s ahead is
	// refreshed every second; the clock moves a second four times: the first
	// fetch and refreshes at 1, 2, 3 and 4 s make 5 calls.
	const (
		ttl   = 2 * time.Second
		ahead = time.Second
		steps = 4
		want  = 5
	)
	clk := testclock.New(time.Unix(1714112445, 0))
	s, base := startSim(t, sim.Config{TokenTTL: ttl, Clock: clk.Now})
	srv := natstest.Start(t)
	instances, sent := hammer(t, s, srv, clk, testApp(base, TokenAPIPlain), 4, steps, time.Second, TokenOptions{RefreshAhead: ahead, LeaseTTL: time.Second})
	st := s.Stats()
	for _, tk := range instances {
		tk.Close()
	}
	app := st.Apps[testAppID]
	var fetches int64
	per := make([]int64, len(instances))
	for i, tk := range instances {
		per[i] = tk.Stats(testAppID).Fetches
		fetches += per[i]
	}
	t.Logf("%d sends; token calls %d, tokens issued %d, fetches per instance %v", sent, app.TokenCalls, app.TokensIssued, per)
	if app.TokenCalls != want || app.TokensIssued != want {
		t.Errorf("token calls = %d, tokens issued = %d over %v with a %v token; want %d each", app.TokenCalls, app.TokensIssued, steps*time.Second, ttl, want)
	}
	if fetches != app.TokenCalls {
		t.Errorf("instances counted %d fetches, the simulator %d", fetches, app.TokenCalls)
	}
	if bad := app.Sends[CodeInvalidCredential] + app.Sends[CodeAccessTokenExpired]; bad != 0 {
		t.Errorf("sends rejected for the token: %v, want none", app.Sends)
	}
	if sent == 0 || app.Sends[0] != sent {
		t.Errorf("successful sends: simulator %d, clients %d; want equal and non-zero", app.Sends[0], sent)
	}
}

func TestRefreshAheadStableToken(t *testing.T) {
	t.Parallel()
	// stable_token hands back the current token until WeChat rotates it, so a
	// refresh can yield the same token; what must hold is one token per
	// lifetime for the whole fleet and every fetch coordinated.
	const (
		ttl   = 2 * time.Second
		steps = 4
	)
	clk := testclock.New(time.Unix(1714112445, 0))
	s, base := startSim(t, sim.Config{TokenTTL: ttl, Clock: clk.Now})
	srv := natstest.Start(t)
	instances, sent := hammer(t, s, srv, clk, testApp(base, TokenAPIStable), 4, steps, time.Second, TokenOptions{RefreshAhead: time.Second, LeaseTTL: time.Second})
	st := s.Stats()
	for _, tk := range instances {
		tk.Close()
	}
	app := st.Apps[testAppID]
	var fetches, forced int64
	for _, tk := range instances {
		fetches += tk.Stats(testAppID).Fetches
		forced += tk.Stats(testAppID).Forced
	}
	t.Logf("%d sends; stable_token calls %d, tokens issued %d, sends by errcode %v", sent, app.StableTokenCalls, app.TokensIssued, app.Sends)
	// Lifetimes start at 0, 2 and 4 s (3 tokens) if the simulator keeps a
	// token to its end, or every second (5 tokens) if it rotates early as WeChat does.
	if app.TokensIssued < 3 || app.TokensIssued > 5 {
		t.Errorf("tokens issued = %d over %v with a %v token, want 3 to 5", app.TokensIssued, steps*time.Second, ttl)
	}
	if fetches != app.StableTokenCalls {
		t.Errorf("instances counted %d fetches, the simulator %d", fetches, app.StableTokenCalls)
	}
	if forced != 0 {
		t.Errorf("forced refreshes = %d, want 0", forced)
	}
	if app.Sends[CodeInvalidCredential] != 0 {
		t.Errorf("sends with errcode 40001 = %d, want 0 (no token was kicked out)", app.Sends[CodeInvalidCredential])
	}
	if sent == 0 || app.Sends[0] != sent {
		t.Errorf("successful sends: simulator %d, clients %d; want equal and non-zero", app.Sends[0], sent)
	}
}

func TestInvalidateReplacesOnlyCurrentToken(t *testing.T) {
	s, base := startSim(t, sim.Config{})
	srv := natstest.Start(t)
	apps := []App{testApp(base, TokenAPIStable)}
	a, b := newTokens(t, srv, apps, TokenOptions{}), newTokens(t, srv, apps, TokenOptions{})
	ctx := testCtx(t)
	first, err := a.Token(ctx, testAppID)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := b.Token(ctx, testAppID); err != nil || got != first {
		t.Fatalf("second instance Token() = (same: %v), %v; want the shared token", got == first, err)
	}

	// A token that is not current is ignored.
	if err := a.Invalidate(ctx, testAppID, "some-older-token"); err != nil {
		t.Fatalf("Invalidate(stale) = %v", err)
	}
	if n := a.Stats(testAppID).Fetches; n != 1 {
		t.Fatalf("fetches after Invalidate(stale) = %d, want 1", n)
	}

	// The current token, still valid in WeChat's eyes: stable_token without
	// force hands it back, so the refresh is forced.
	if err := a.Invalidate(ctx, testAppID, first); err != nil {
		t.Fatalf("Invalidate(current) = %v", err)
	}
	second, err := a.Token(ctx, testAppID)
	if err != nil || second == first {
		t.Fatalf("Token() after Invalidate = (changed: %v), %v; want a new token", second != first, err)
	}
	if st := a.Stats(testAppID); st.Fetches != 3 || st.Forced != 1 {
		t.Fatalf("stats after Invalidate(current) = %+v, want 3 fetches, 1 forced", st)
	}
	// The other instance learns the new token from the bucket watch, unasked.
	checkfor.Eventually(t, 2*time.Second, 10*time.Millisecond, func() error {
		if h := b.apps[testAppID].hot.Load(); h == nil || h.token != second {
			return errors.New("the second instance has not cached the new token")
		}
		return nil
	})

	// The other instance reports the same failed token late: nothing is fetched
	// and it now uses the new token.
	if err := b.Invalidate(ctx, testAppID, first); err != nil {
		t.Fatalf("late Invalidate = %v", err)
	}
	if got, err := b.Token(ctx, testAppID); err != nil || got != second {
		t.Fatalf("second instance Token() after late Invalidate: same as new token = %v, %v", got == second, err)
	}
	if n := b.Stats(testAppID).Fetches; n != 0 {
		t.Fatalf("late Invalidate fetched %d times, want 0", n)
	}

	// An expired token is replaced without force_refresh.
	if err := s.SetFaults(sim.Faults{ExpireTokens: true}); err != nil {
		t.Fatal(err)
	}
	if err := b.Invalidate(ctx, testAppID, second); err != nil {
		t.Fatalf("Invalidate(expired) = %v", err)
	}
	third, err := b.Token(ctx, testAppID)
	if err != nil || third == second || third == first {
		t.Fatalf("Token() after Invalidate(expired): new = %v, %v", third != second, err)
	}
	if st := b.Stats(testAppID); st.Fetches != 1 || st.Forced != 0 {
		t.Fatalf("stats after Invalidate(expired) = %+v, want 1 fetch, none forced", st)
	}
	if st := s.Stats().Apps[testAppID]; st.StableTokenCalls != 4 || st.TokensIssued != 3 {
		t.Fatalf("sim stats = %+v, want 4 stable_token calls, 3 tokens", st)
	}
}

func TestTokenFetchFailureBacksOff(t *testing.T) {
	s, base := startSim(t, sim.Config{})
	srv := natstest.Start(t)
	apps := []App{testApp(base, TokenAPIStable)}
	a, b := newTokens(t, srv, apps, TokenOptions{}), newTokens(t, srv, apps, TokenOptions{})
	ctx := testCtx(t)
	if err := s.SetFaults(sim.Faults{TokenErrcode: CodeBusy, TokenErrcodeNext: 1}); err != nil {
		t.Fatal(err)
	}
	_, err := a.Token(ctx, testAppID)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Code != CodeBusy || !IsRetryable(err) || !errors.Is(err, ErrTokenUnavailable) {
		t.Fatalf("Token() with WeChat busy = %v, want a retryable *APIError -1 wrapping ErrTokenUnavailable", err)
	}
	// Within the back-off neither instance calls WeChat; both report the failure.
	for _, tk := range []*Tokens{a, b} {
		_, err := tk.Token(ctx, testAppID)
		if !errors.As(err, &apiErr) || apiErr.Code != CodeBusy || !IsRetryable(err) {
			t.Fatalf("Token() inside the back-off = %v, want the recorded -1", err)
		}
	}
	if st := s.Stats().Apps[testAppID]; st.StableTokenCalls != 1 {
		t.Fatalf("stable_token calls inside the back-off = %d, want 1", st.StableTokenCalls)
	}
	start := time.Now()
	var tok string
	checkfor.Eventually(t, 3*time.Second, 10*time.Millisecond, func() error {
		tok, err = b.Token(ctx, testAppID)
		return err
	})
	if waited := time.Since(start); waited < minBackoff/2 {
		t.Errorf("token fetched again after %v, want a back-off of about %v", waited, minBackoff)
	}
	if tok == "" {
		t.Fatal("empty token")
	}
	if st := s.Stats().Apps[testAppID]; st.StableTokenCalls != 2 {
		t.Errorf("stable_token calls = %d, want 2 (one failure, one success)", st.StableTokenCalls)
	}
}

func TestLapsedLeaseIsTakenOver(t *testing.T) {
	s, base := startSim(t, sim.Config{})
	srv := natstest.Start(t)
	apps := []App{testApp(base, TokenAPIStable)}
	const leaseTTL = 800 * time.Millisecond
	tk := newTokens(t, srv, apps, TokenOptions{LeaseTTL: leaseTTL})

	// An instance took the lease and died before fetching.
	kv := kvOf(t, srv)
	ctx := testCtx(t)
	orphan, _ := json.Marshal(record{Lease: &lease{Holder: "crashed-instance", Until: time.Now().Add(leaseTTL)}})
	if _, err := kv.Put(ctx, testAppID, orphan); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	tok, err := tk.Token(ctx, testAppID)
	if err != nil || tok == "" {
		t.Fatalf("Token() = %v, want a token once the lease lapses", err)
	}
	if waited := time.Since(start); waited < leaseTTL/2 {
		t.Errorf("Token() returned after %v, before the orphaned lease lapsed (%v)", waited, leaseTTL)
	}
	if st := s.Stats().Apps[testAppID]; st.StableTokenCalls != 1 {
		t.Errorf("stable_token calls = %d, want 1", st.StableTokenCalls)
	}
	e, err := kv.Get(ctx, testAppID)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := decodeRecord(e.Value())
	if err != nil || rec.Lease != nil || rec.AccessToken != tok || rec.Generation != 1 {
		t.Errorf("stored record: lease %v, same token %v, generation %d, err %v; want no lease, the token, generation 1",
			rec.Lease, rec.AccessToken == tok, rec.Generation, err)
	}
}

func TestTokenUnknownAppAndClosed(t *testing.T) {
	_, base := startSim(t, sim.Config{})
	srv := natstest.Start(t)
	tk := newTokens(t, srv, []App{testApp(base, "")}, TokenOptions{})
	ctx := testCtx(t)
	if _, err := tk.Token(ctx, "wx-not-configured"); !errors.Is(err, ErrUnknownApp) {
		t.Errorf("Token(unknown) = %v, want ErrUnknownApp", err)
	}
	if err := tk.Invalidate(ctx, "wx-not-configured", "x"); !errors.Is(err, ErrUnknownApp) {
		t.Errorf("Invalidate(unknown) = %v, want ErrUnknownApp", err)
	}
	cached, err := tk.Token(ctx, testAppID)
	if err != nil {
		t.Fatal(err)
	}
	tk.Close()
	tk.Close()
	if got, err := tk.Token(ctx, testAppID); err != nil || got != cached {
		t.Errorf("Token() after Close = (cached: %v), %v; want the cached token", got == cached, err)
	}
	if err := tk.Invalidate(ctx, testAppID, cached); !errors.Is(err, ErrClosed) || !IsRetryable(err) {
		t.Errorf("Invalidate() after Close = %v, want a retryable ErrClosed", err)
	}
}

func TestNewTokensRejectsBadApps(t *testing.T) {
	srv := natstest.Start(t)
	_, js := srv.Connect()
	good := App{AppID: testAppID, Secret: testSecret}
	tests := []struct {
		name string
		apps []App
		opts TokenOptions
	}{
		{"empty appid", []App{{Secret: testSecret}}, TokenOptions{}},
		{"appid with a dot", []App{{AppID: "wx.1", Secret: testSecret}}, TokenOptions{}},
		{"no secret", []App{{AppID: testAppID}}, TokenOptions{}},
		{"bad api_base", []App{{AppID: testAppID, Secret: testSecret, APIBase: "ftp://x"}}, TokenOptions{}},
		{"api_base with query", []App{{AppID: testAppID, Secret: testSecret, APIBase: "http://x/?secret=" + testSecret}}, TokenOptions{}},
		{"bad token api", []App{{AppID: testAppID, Secret: testSecret, TokenAPI: "oauth"}}, TokenOptions{}},
		{"duplicate", []App{good, good}, TokenOptions{}},
		{"tiny lease", []App{good}, TokenOptions{LeaseTTL: time.Millisecond}},
		{"negative ahead", []App{good}, TokenOptions{RefreshAhead: -time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk, err := NewTokens(testCtx(t), js, tt.apps, nil, nil, tt.opts)
			if err == nil {
				tk.Close()
				t.Fatalf("NewTokens(%s) = nil error, want one", tt.name)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("NewTokens(%s) error %q contains the secret", tt.name, err)
			}
		})
	}
}

func TestNewRecordSchedule(t *testing.T) {
	tk := &Tokens{opts: TokenOptions{RefreshAhead: 5 * time.Minute}}
	now := time.Unix(1714112445, 0)
	tests := []struct {
		name        string
		prev        record
		f           fetched
		wantRefresh time.Duration // from now
		wantGen     uint64
	}{
		{"new 2h token", record{}, fetched{"A", 2 * time.Hour}, 2*time.Hour - 5*time.Minute, 1},
		{"short token: half its life ahead", record{AccessToken: "A", Generation: 1}, fetched{"B", 4 * time.Minute}, 2 * time.Minute, 2},
		{"same token, not rotated", record{AccessToken: "A", Generation: 1}, fetched{"A", 4 * time.Minute}, time.Minute, 1},
		{"same token about to expire", record{AccessToken: "A", Generation: 3}, fetched{"A", 10 * time.Second}, 10 * time.Second, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tk.newRecord(tt.prev, tt.f, now, now)
			if d := got.RefreshAt.Sub(now); d != tt.wantRefresh || got.Generation != tt.wantGen {
				t.Errorf("newRecord(%s): refresh in %v, generation %d; want %v, %d", tt.name, d, got.Generation, tt.wantRefresh, tt.wantGen)
			}
			if !got.ExpiresAt.Equal(now.Add(tt.f.expiresIn)) {
				t.Errorf("newRecord(%s): expires %v, want %v", tt.name, got.ExpiresAt, now.Add(tt.f.expiresIn))
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		count int
		want  time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {4, 8 * time.Second}, {7, time.Minute}, {1000, time.Minute}}
	for _, tt := range tests {
		if got := backoff(tt.count); got != tt.want {
			t.Errorf("backoff(%d) = %v, want %v", tt.count, got, tt.want)
		}
	}
}

func BenchmarkTokenCached(b *testing.B) {
	_, base := startSim(b, sim.Config{})
	srv := natstest.Start(b)
	tk := newTokens(b, srv, []App{testApp(base, "")}, TokenOptions{})
	ctx := context.Background()
	if _, err := tk.Token(ctx, testAppID); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := tk.Token(ctx, testAppID); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
