package broker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wxgate/wxgate/schemas"
)

// Backoff is a capped exponential backoff: Initial, then doubling up to Max.
type Backoff struct {
	Initial, Max time.Duration
}

// DefaultStartBackoff waits 250ms after the first failure and at most 30s
// between tries: fast enough to start soon after NATS does, slow enough that
// a fleet of waiting processes does not hammer a recovering cluster.
var DefaultStartBackoff = Backoff{Initial: 250 * time.Millisecond, Max: 30 * time.Second}

// next is the delay after d.
func (b Backoff) next(d time.Duration) time.Duration {
	if d <= 0 {
		return b.Initial
	}
	return min(2*d, b.Max)
}

// attemptTimeout bounds one try to declare the stream, so that a request lost
// to a server that went away is retried instead of waited on.
const attemptTimeout = 5 * time.Second

// AwaitStream declares the WECHAT stream as EnsureStream does, trying again
// with backoff b until it succeeds or ctx ends: a process that starts before
// NATS (or before its JetStream quorum) waits for it instead of exiting. Each
// failure is logged at warn level with its reason and the delay before the
// next try. When ctx ends first it returns ctx's error.
func AwaitStream(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, o StreamOptions, b Backoff, log *slog.Logger) (jetstream.Stream, error) {
	var delay time.Duration
	for attempt := 1; ; attempt++ {
		s, err := ensureOnce(ctx, nc, js, o)
		if err == nil {
			if attempt > 1 {
				log.Info("nats stream ready", "stream", schemas.StreamName, "attempts", attempt)
			}
			return s, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		delay = b.next(delay)
		log.Warn("nats not ready; retrying", "err", err, "attempt", attempt, "retry_in", delay.String())
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// ensureOnce makes one try of AwaitStream. A client that is not connected
// fails at once with the reason of its last failed dial, instead of waiting
// for a request that cannot be sent.
func ensureOnce(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, o StreamOptions) (jetstream.Stream, error) {
	if !nc.IsConnected() {
		if err := nc.LastError(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNotConnected, err)
		}
		return nil, ErrNotConnected
	}
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	return EnsureStream(ctx, js, o)
}
