package processor

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/broker"
	"github.com/wxgate/wxgate/internal/broker/natstest"
	"github.com/wxgate/wxgate/internal/checkfor"
	"github.com/wxgate/wxgate/internal/testclock"
)

// sharedPauses is one processor's pauses on the board in srv's pause bucket,
// through a connection of its own, as a separate process has.
func sharedPauses(t *testing.T, srv *natstest.Server) *pauses {
	t.Helper()
	_, js := srv.Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := broker.OpenPauses(ctx, js, slog.New(slog.DiscardHandler), broker.PauseOptions{})
	if err != nil {
		t.Fatalf("OpenPauses: %v", err)
	}
	t.Cleanup(b.Close)
	return &pauses{shared: b}
}

// TestPauseIsSharedUntilBeijingMidnight: a 45009 seen by one processor pauses
// the app for another at once, and for one that starts later; the pause ends
// for all of them at the next midnight in Beijing, and other apps are never
// paused.
func TestPauseIsSharedUntilBeijingMidnight(t *testing.T) {
	const app, other = "wxba5fad812f8e6fb9", "wx0123456789abcdef"
	srv := natstest.Start(t)
	// 22:30 in Beijing: the quota resets 90 minutes later.
	clock := testclock.New(time.Date(2026, 3, 1, 14, 30, 0, 0, time.UTC))
	first, second := sharedPauses(t, srv), sharedPauses(t, srv)

	until := nextQuotaReset(clock.Now())
	if want := time.Date(2026, 3, 2, 0, 0, 0, 0, beijing); !until.Equal(want) {
		t.Fatalf("nextQuotaReset(%v) = %v, want %v", clock.Now(), until, want)
	}
	if err := first.set(context.Background(), app, until); err != nil {
		t.Fatalf("set = %v", err)
	}
	if d := first.get(app, clock.Now()); d != 90*time.Minute {
		t.Errorf("the processor that saw 45009: paused for %v, want 1h30m", d)
	}
	checkfor.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if d := second.get(app, clock.Now()); d != 90*time.Minute {
			return fmt.Errorf("the other processor: paused for %v, want 1h30m", d)
		}
		return nil
	})
	late := sharedPauses(t, srv)

	tests := []struct {
		name    string
		advance time.Duration
		app     string
		want    time.Duration
	}{
		{"a processor started later is paused", 0, app, 90 * time.Minute},
		{"another app is not paused", 0, other, 0},
		{"one minute before midnight", 89 * time.Minute, app, time.Minute},
		{"at midnight the pause is over", time.Minute, app, 0},
		{"the next day too", 12 * time.Hour, app, 0},
	}
	for _, tt := range tests {
		clock.Advance(tt.advance)
		for i, ps := range []*pauses{first, second, late} {
			if d := ps.get(tt.app, clock.Now()); d != tt.want {
				t.Errorf("%s: processor %d: get(%s, %v) = %v, want %v", tt.name, i+1, tt.app, clock.Now(), d, tt.want)
			}
		}
	}
}
