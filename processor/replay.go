package processor

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/wxgate/wxgate/internal/derrors"
	"github.com/wxgate/wxgate/schemas"
)

// ReplayResult counts the events a replay applied again: Applied changed the
// ledger or a message (they had not been fully applied before), NoOps changed
// nothing.
type ReplayResult struct {
	Applied int `json:"applied"`
	NoOps   int `json:"noops"`
}

// maxReplay bounds the events one replay handles; the caller narrows the
// time range for more.
const maxReplay = 10_000

// ErrNotRunning refuses a replay while this processor is not consuming.
var ErrNotRunning = fmt.Errorf("%w: the processor is not running", derrors.Unavailable)

// ReplayEvent applies one received event again, by its id, through the
// processor's normal path: the handler of its kind, in its user's lane. It is
// idempotent: an event applied before changes nothing.
func (p *Processor) ReplayEvent(ctx context.Context, appID, id string) (ReplayResult, error) {
	ev, err := p.store.Event(ctx, appID, id)
	if err != nil {
		return ReplayResult{}, err
	}
	return p.replay(ctx, []EventRecord{*ev})
}

// ReplayEvents applies again every received event of an app in [since,
// until), oldest first, as ReplayEvent does, up to maxReplay of them.
func (p *Processor) ReplayEvents(ctx context.Context, appID string, since, until time.Time) (ReplayResult, error) {
	var all []EventRecord
	q := EventQuery{AppID: appID, Page: Page{Since: since, Until: until, Limit: MaxLimit}}
	for len(all) < maxReplay {
		page, next, err := p.store.Events(ctx, q)
		if err != nil {
			return ReplayResult{}, err
		}
		all = append(all, page...)
		if next == "" {
			break
		}
		q.Cursor = next
	}
	all = all[:min(len(all), maxReplay)]
	// The listing is newest first; events are applied in the order received.
	for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
		all[i], all[j] = all[j], all[i]
	}
	return p.replay(ctx, all)
}

// replay hands the events to their users' lanes, one user's events in order,
// and waits for each.
func (p *Processor) replay(ctx context.Context, evs []EventRecord) (ReplayResult, error) {
	ln := p.running.Load()
	if ln == nil {
		return ReplayResult{}, ErrNotRunning
	}
	items := make([]*item, len(evs))
	for i := range evs {
		ev := evs[i].Data
		if err := schemas.Validate(&ev); err != nil {
			return ReplayResult{}, fmt.Errorf("%w: event %s: %v", derrors.Invalid, evs[i].ID, err)
		}
		it := &item{
			key:    ev.AppID + "/" + ev.OpenID,
			ce:     schemas.CloudEvent{ID: evs[i].ID, Subject: ev.OpenID, Time: evs[i].ReceivedAt},
			event:  &ev,
			replay: make(chan error, 1),
		}
		it.handler = p.handleInbound
		items[i] = it
		ln.push(it)
	}
	var res ReplayResult
	var errs []error
	for _, it := range items {
		select {
		case err := <-it.replay:
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("event %s: %w", it.ce.ID, err))
			case it.changes.Load() > 0:
				res.Applied++
			default:
				res.NoOps++
			}
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	return res, errors.Join(errs...)
}

// changesKey carries a replay's change counter in a handler's context.
type changesKey struct{}

func withChanges(ctx context.Context, n *atomic.Int64) context.Context {
	return context.WithValue(ctx, changesKey{}, n)
}

// changedDocument counts one document changed, for a replay that asks.
func changedDocument(ctx context.Context) {
	if n, ok := ctx.Value(changesKey{}).(*atomic.Int64); ok {
		n.Add(1)
	}
}
