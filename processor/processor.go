package processor

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Publisher stores one event on the stream and waits for the acknowledgement.
// PublishWork also stores it on the work stream for the processors (see
// broker.Publisher).
type Publisher interface {
	Publish(ctx context.Context, subject, id string, data []byte) (duplicate bool, err error)
	PublishWork(ctx context.Context, subject, workSubject, id string, data []byte) (duplicate bool, err error)
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
	// MaxAckPending bounds the messages handed out to the processors and not
	// yet settled, shared among the partitions (at least 32 each); 0 means 64
	// per lane.
	MaxAckPending int
	// Replicas is the replication of the partition consumers and the members
	// bucket; 0 means the stream's.
	Replicas int
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
// sends, sent events, redrives) is a message on the work stream, in the user's
// partition, which one processor of the cluster reads at a time (see
// partitions.go); within that processor it is handled in the user's lane: one
// message at a time, in stream order (see lanes). The store's compare-and-set
// is a guard that does not fire in the normal path.
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
	// fetching holds the partitions while Run runs.
	fetching atomic.Pointer[fetcher]
}

// ConsumerName names the processors' durable consumers: partition p of the
// work stream is read through ConsumerName-pp (PartitionConsumer), stable
// across versions so that a restart resumes where it stopped. Metrics and dead
// letters name the consumer by ConsumerName.
const ConsumerName = "wxgate-processor"

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

// Run fetches this processor's share of the work stream's partitions and
// handles their messages until ctx is cancelled, then stops fetching, finishes
// the message each lane holds, hands the rest back to the stream, and
// releases its partitions to the other processors.
func (p *Processor) Run(ctx context.Context) error {
	// The partition consumers and the members bucket are declared by every
	// processor; a cluster electing leaders may time some of that out, so it
	// is tried again until it works or ctx ends.
	var stream jetstream.Stream
	var members jetstream.KeyValue
	for delay := 250 * time.Millisecond; ; delay = min(2*delay, 10*time.Second) {
		var err error
		if stream, members, err = p.declarePartitions(ctx); err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		p.log.Warn("declaring the partitions; retrying", "err", err, "retry_in", delay.String())
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
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
	incoming := make(chan jetstream.Msg, maxBatch)
	f := &fetcher{p: p, stream: stream, members: members, id: newMemberID(), out: incoming, log: p.log, parts: map[int]*partition{}}
	p.fetching.Store(f)
	defer p.fetching.Store(nil)
	go f.run(ctx)
	p.consume(ctx, incoming)
	f.release()
	return nil
}

// maxBatch bounds the messages taken from the stream at once, whose audit
// records are stored in one call.
const maxBatch = 256

// consume takes the messages the partitions have ready, stores the audit
// records of the inbound events among them in one call, and hands each message
// to its user's lane, until incoming is closed; then it waits for the lanes to
// settle what they hold.
func (p *Processor) consume(ctx context.Context, incoming <-chan jetstream.Msg) {
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
	reply := it.msg.Headers().Get(HeaderReplayReply)
	if reply == "" {
		p.settle(hctx, it.msg, it.handler(hctx, it))
		return
	}
	var changes atomic.Int64
	err := it.handler(withChanges(hctx, &changes), it)
	p.answerReplay(reply, it, changes.Load(), err)
	p.settle(hctx, it.msg, err)
}
