package processor

import (
	"context"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wxgate/wxgate/schemas"
)

// lanes run the handlers: every item goes to the lane of its key (one user of
// one app), and each lane handles its items one at a time in the order they
// were pushed, which is stream order. So the events, consent reports and sends
// of one user never run at the same time within a process and never overtake
// each other, and WeChat never sees two concurrent sends to one user (43108)
// from this process.
//
// A lane's queue never blocks the fetch loop: the stream hands out at most the
// consumer's MaxAckPending messages at a time, which bounds every queue. While
// a message waits behind others it is kept alive with an in-progress ack, so the
// stream does not redeliver it to someone else. On shutdown each lane finishes
// the message in hand and naks the ones still queued, which go back to the
// stream at once.
type lanes struct {
	ctx     context.Context // cancelled on shutdown
	handle  func(context.Context, *item)
	log     *slog.Logger
	queues  []*laneQueue
	wg      sync.WaitGroup
	stopped chan struct{}
}

// laneQueue is one lane's FIFO of items.
type laneQueue struct {
	mu     sync.Mutex
	wake   chan struct{} // signalled when an item is pushed
	items  []*item
	closed bool
}

func newLanes(ctx context.Context, n int, ackWait time.Duration, handle func(context.Context, *item), log *slog.Logger) *lanes {
	l := &lanes{ctx: ctx, handle: handle, log: log, queues: make([]*laneQueue, n), stopped: make(chan struct{})}
	// Handlers finish the message in hand even during shutdown.
	work := context.WithoutCancel(ctx)
	for i := range l.queues {
		q := &laneQueue{wake: make(chan struct{}, 1)}
		l.queues[i] = q
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.run(work, q)
		}()
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.keepAlive(max(ackWait/3, time.Second))
	}()
	return l
}

// push appends it to its lane's queue.
func (l *lanes) push(it *item) {
	q := l.queues[laneOf(it.key, len(l.queues))]
	q.mu.Lock()
	q.items = append(q.items, it)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// run is one lane's loop.
func (l *lanes) run(ctx context.Context, q *laneQueue) {
	for {
		q.mu.Lock()
		if len(q.items) == 0 {
			closed := q.closed
			q.mu.Unlock()
			if closed {
				return
			}
			<-q.wake
			continue
		}
		it := q.items[0]
		q.items[0] = nil
		q.items = q.items[1:]
		q.mu.Unlock()
		if l.ctx.Err() != nil {
			// Shutting down: leave it to the next processor.
			_ = it.msg.Nak()
			continue
		}
		l.handle(ctx, it)
	}
}

// keepAlive tells the stream that queued messages are still being worked on,
// until the lanes close.
func (l *lanes) keepAlive(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stopped:
			return
		case <-t.C:
		}
		for _, q := range l.queues {
			q.mu.Lock()
			waiting := append([]*item(nil), q.items...)
			q.mu.Unlock()
			for _, it := range waiting {
				if err := it.msg.InProgress(); err != nil {
					l.log.Debug("in-progress ack failed", "subject", it.msg.Subject(), "err", err)
				}
			}
		}
	}
}

// close lets every lane empty its queue (nakking what is left once the
// context is cancelled) and waits for them.
func (l *lanes) close() {
	for _, q := range l.queues {
		q.mu.Lock()
		q.closed = true
		q.mu.Unlock()
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	close(l.stopped)
	l.wg.Wait()
}

// laneOf maps a key to one of n lanes.
func laneOf(key string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// item is one stream message, decoded, on its way to a lane.
type item struct {
	msg jetstream.Msg
	// key names the lane: the app and the user.
	key     string
	ce      schemas.CloudEvent
	handler func(context.Context, *item) error
	// event is the decoded push of an inbound message, nil otherwise.
	event *schemas.Event
}
