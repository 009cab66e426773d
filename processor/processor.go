package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxgate/wxgate/schemas"
)

// Publisher stores one event on the stream and waits for the acknowledgement.
type Publisher interface {
	Publish(ctx context.Context, subject, id string, data []byte) (duplicate bool, err error)
}

// TemplateKinds tells whether a template is one-time or long-term: KindOneTime,
// KindLongTerm, or "" when it cannot tell now (the template list could not be
// fetched). A nil TemplateKinds treats every template as one-time, the common case.
type TemplateKinds interface {
	Kind(ctx context.Context, appID, templateID string) string
}

// Config tunes a Processor.
type Config struct {
	// Workers is the number of lanes: how many users' messages are handled at once.
	Workers int
	// MaxAckPending bounds the messages handed out and not yet settled; 0 means
	// 64 per lane.
	MaxAckPending int
	// MaxDeliver is how many deliveries a message gets before it becomes a dead letter.
	MaxDeliver int
	// AckWait is how long the stream waits for an ack before redelivering.
	AckWait time.Duration
	// Kinds resolves template kinds; nil means one-time.
	Kinds TemplateKinds
	// Sender calls WeChat; with none the processor hands every send request
	// back to the stream, for a processor that has one.
	Sender Sender
	// SendAttempts is how many times a send is tried before it is dead.
	SendAttempts int
	// SendRetry are the delays before the second, third, ... try of a send
	// (the last repeats), each with up to 20% jitter; empty means exponential
	// backoff from 250ms to 30s.
	SendRetry []time.Duration
	// SweepEvery is how often the outbox is swept for send events whose
	// publish was lost, and SweepAfter how old an entry must be to be
	// published again; 0 means 30s and 1m.
	SweepEvery, SweepAfter time.Duration
	// UnknownAfter is how long a message whose send outcome is unknown waits
	// for a sent event before it is counted as unsettled; 0 means 30 minutes.
	UnknownAfter time.Duration
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// AppIDs are the configured apps: their metric series exist at zero from
	// the start. Messages of other apps are handled all the same.
	AppIDs []string
}

// Processor applies the stream's events to the store. Its methods are safe for
// concurrent use.
//
// Every change to one user's state (popup and change events, consent reports,
// sends, sent events, redrives) is a message on the stream, read by one durable
// consumer and handled in that user's lane: one message at a time, in stream
// order, within the process (see lanes). The store's compare-and-set is a guard
// that does not fire in the normal path.
type Processor struct {
	store   Store
	js      jetstream.JetStream
	pub     Publisher
	log     *slog.Logger
	cfg     Config
	metrics *metrics
	pauses  pauses
	// running holds the lanes while Run runs, for Replay.
	running atomic.Pointer[lanes]
}

// ConsumerName is the durable consumer every processor reads through, stable
// across versions so that a restart resumes where it stopped.
const ConsumerName = "wxgate-processor"

// Subjects the processor consumes.
const (
	subjectsInbound = "wechat.*.in.>"
	subjectsSend    = "wechat.*.send"
	subjectsReport  = "wechat.*.report"
)

// New returns a Processor; Run starts consuming.
func New(store Store, js jetstream.JetStream, pub Publisher, logger *slog.Logger, reg prometheus.Registerer, cfg Config) (*Processor, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.MaxAckPending <= 0 {
		cfg.MaxAckPending = 64 * cfg.Workers
	}
	if cfg.MaxDeliver <= 1 {
		cfg.MaxDeliver = 20
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.SendAttempts <= 0 {
		cfg.SendAttempts = 5
	}
	if cfg.SweepEvery <= 0 {
		cfg.SweepEvery = 30 * time.Second
	}
	if cfg.SweepAfter <= 0 {
		cfg.SweepAfter = time.Minute
	}
	if cfg.UnknownAfter <= 0 {
		cfg.UnknownAfter = 30 * time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	m, err := newMetrics(reg, cfg.AppIDs)
	if err != nil {
		return nil, err
	}
	return &Processor{store: store, js: js, pub: pub, log: logger, cfg: cfg, metrics: m}, nil
}

func (p *Processor) now() time.Time { return p.cfg.Clock().UTC() }

// Run attaches the durable consumer and handles messages until ctx is
// cancelled, then stops fetching, finishes the message each lane holds, and
// hands the rest back to the stream.
func (p *Processor) Run(ctx context.Context) error {
	cons, err := p.js.CreateOrUpdateConsumer(ctx, schemas.StreamName, jetstream.ConsumerConfig{
		Durable:        ConsumerName,
		FilterSubjects: []string{subjectsInbound, subjectsReport, subjectsSend},
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        p.cfg.AckWait,
		MaxDeliver:     p.cfg.MaxDeliver,
		MaxAckPending:  p.cfg.MaxAckPending,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("processor: consumer %s: %w", ConsumerName, err)
	}
	sctx, stopSweeping := context.WithCancel(ctx)
	sweeping := make(chan struct{})
	go func() {
		defer close(sweeping)
		p.sweep(sctx)
	}()
	defer func() {
		stopSweeping()
		<-sweeping
	}()
	return p.consume(ctx, cons)
}

// maxBatch bounds the messages taken from the stream at once, whose audit
// records are stored in one call.
const maxBatch = 256

// consume runs the fetch loop: it takes the messages the stream has ready,
// stores the audit records of the inbound events among them in one call, and
// hands each message to its user's lane.
func (p *Processor) consume(ctx context.Context, cons jetstream.Consumer) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(min(p.cfg.MaxAckPending, maxBatch)))
	if err != nil {
		return fmt.Errorf("processor: consumer %s: %w", ConsumerName, err)
	}
	stop := context.AfterFunc(ctx, it.Drain)
	defer stop()

	incoming := make(chan jetstream.Msg, maxBatch)
	go func() {
		defer close(incoming)
		for {
			msg, err := it.Next()
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			if err != nil {
				p.log.Warn("fetching", "consumer", ConsumerName, "err", err)
				continue
			}
			incoming <- msg
		}
	}()

	ln := newLanes(ctx, p.cfg.Workers, p.cfg.AckWait, p.handle, p.log)
	p.running.Store(ln)
	defer func() {
		p.running.Store(nil)
		ln.close()
	}()
	// Handlers finish the message in hand even during shutdown.
	work := context.WithoutCancel(ctx)
	for msg := range incoming {
		batch := []jetstream.Msg{msg}
	more:
		for len(batch) < maxBatch {
			select {
			case m, ok := <-incoming:
				if !ok {
					break more
				}
				batch = append(batch, m)
			default:
				break more
			}
		}
		for _, it := range p.prepare(work, batch) {
			ln.push(it)
		}
	}
	return nil
}

// prepare decodes a batch and stores the audit records of its inbound events
// in one call. It returns the items to hand to the lanes; a message that does
// not decode is settled here as a dead letter, and the inbound events of a
// batch whose audit records could not be stored are nakked and come back.
func (p *Processor) prepare(ctx context.Context, batch []jetstream.Msg) []*item {
	items := make([]*item, 0, len(batch))
	var records []EventRecord
	for _, msg := range batch {
		it, err := p.decode(msg)
		if err != nil {
			p.settle(ctx, msg, err)
			continue
		}
		if it.event != nil {
			records = append(records, it.record())
		}
		items = append(items, it)
	}
	if err := p.store.InsertEvents(ctx, records); err != nil {
		kept := items[:0]
		for _, it := range items {
			if it.event != nil {
				p.settle(ctx, it.msg, fmt.Errorf("storing the audit record: %w", err))
				continue
			}
			kept = append(kept, it)
		}
		items = kept
	}
	return items
}

// handle runs the handler of one item and settles its message.
func (p *Processor) handle(ctx context.Context, it *item) {
	hctx, cancel := context.WithTimeout(ctx, p.cfg.AckWait)
	defer cancel()
	if it.replay != nil {
		// A replay is not a stream message: its caller settles it.
		hctx = withChanges(hctx, &it.changes)
		it.replay <- it.handler(hctx, it)
		return
	}
	p.settle(hctx, it.msg, it.handler(hctx, it))
}
