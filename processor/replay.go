package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wxgate/wxgate/internal/derrors"
	"github.com/wxgate/wxgate/schemas"
)

// ReplayResult counts the events a replay applied again: Applied changed the
// ledger or a message (they had not been fully applied before), NoOps changed
// nothing.
type ReplayResult struct {
	Applied int `json:"applied"`
	NoOps   int `json:"noops"`
	// Queued counts the events still on their way when replayWait ran out:
	// they will be applied.
	Queued int `json:"queued,omitempty"`
}

// replayWait bounds how long a replay waits for its events to be applied.
const replayWait = 10 * time.Second

// maxReplay bounds the events one replay handles; the caller narrows the
// time range for more.
const maxReplay = 10_000

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

// HeaderReplayReply, on a replayed event, names the inbox where the processor
// that applies it reports what it changed.
const HeaderReplayReply = "Wxgate-Replay-Reply"

// replayAnswer is what a processor reports for one replayed event.
type replayAnswer struct {
	ID      string `json:"id"`
	Changes int64  `json:"changes"`
	Error   string `json:"error,omitempty"`
}

// replay puts the events back on the work stream, in their users'
// partitions, so that whichever processor holds a user applies them in its
// lane after what it already has, and waits for each one's answer on an
// inbox of its own.
func (p *Processor) replay(ctx context.Context, evs []EventRecord) (ReplayResult, error) {
	nc := p.js.Conn()
	inbox := nc.NewRespInbox()
	answers := make(chan *nats.Msg, len(evs))
	sub, err := nc.ChanSubscribe(inbox, answers)
	if err != nil {
		return ReplayResult{}, fmt.Errorf("%w: replay: %v", ErrUnavailable, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	// One replay's copies get ids of their own: the stream's duplicate window
	// must not take them for the original pushes, or for another replay.
	replayID := inbox[strings.LastIndexByte(inbox, '.')+1:]
	waiting := map[string]bool{}
	for i := range evs {
		ev := evs[i].Data
		if err := schemas.Validate(&ev); err != nil {
			return ReplayResult{}, fmt.Errorf("%w: event %s: %v", derrors.Invalid, evs[i].ID, err)
		}
		ce, err := schemas.InboundCloudEventWithID(&ev, evs[i].ID, evs[i].ReceivedAt)
		if err != nil {
			return ReplayResult{}, fmt.Errorf("%w: event %s: %v", derrors.Invalid, evs[i].ID, err)
		}
		data, err := json.Marshal(ce)
		if err != nil {
			return ReplayResult{}, err
		}
		msg := nats.NewMsg(schemas.WorkSubject(ev.AppID, ev.OpenID, schemas.WorkInbound))
		msg.Data = data
		msg.Header.Set(jetstream.MsgIDHeader, evs[i].ID+"/replay/"+replayID)
		msg.Header.Set(HeaderReplayReply, inbox)
		if _, err := p.js.PublishMsg(ctx, msg); err != nil {
			return ReplayResult{}, fmt.Errorf("%w: replaying event %s: %v", ErrUnavailable, evs[i].ID, err)
		}
		waiting[evs[i].ID] = true
	}
	var res ReplayResult
	var errs []error
	wait := time.NewTimer(replayWait)
	defer wait.Stop()
	for len(waiting) > 0 {
		select {
		case m := <-answers:
			var a replayAnswer
			if json.Unmarshal(m.Data, &a) != nil || !waiting[a.ID] {
				continue
			}
			delete(waiting, a.ID)
			switch {
			case a.Error != "":
				errs = append(errs, fmt.Errorf("event %s: %s", a.ID, a.Error))
			case a.Changes > 0:
				res.Applied++
			default:
				res.NoOps++
			}
		case <-wait.C:
			res.Queued = len(waiting)
			return res, errors.Join(errs...)
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	return res, errors.Join(errs...)
}

// answerReplay reports to a replay's caller what applying one of its events
// changed.
func (p *Processor) answerReplay(reply string, it *item, changes int64, err error) {
	a := replayAnswer{ID: it.ce.ID, Changes: changes}
	if err != nil {
		a.Error = err.Error()
	}
	b, _ := json.Marshal(a)
	if perr := p.js.Conn().Publish(reply, b); perr != nil {
		p.log.Debug("answering a replay", "event", it.ce.ID, "err", perr)
	}
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
