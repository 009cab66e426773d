package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxgate/wxgate/schemas"
)

// Publisher stores one event on the stream and waits for the acknowledgement.
type Publisher interface {
	Publish(ctx context.Context, subject, id string, data []byte) (duplicate bool, err error)
}

// TemplateKinds tells whether a template is one-time or long-term. A nil
// TemplateKinds treats every template as one-time, the common case.
type TemplateKinds interface {
	Kind(ctx context.Context, appID, templateID string) string
}

// Config tunes a Processor.
type Config struct {
	// Workers is how many messages each consumer handles at once.
	Workers int
	// MaxDeliver is how many deliveries a message gets before it becomes a dead letter.
	MaxDeliver int
	// AckWait is how long the stream waits for an ack before redelivering.
	AckWait time.Duration
	// Kinds resolves template kinds; nil means one-time.
	Kinds TemplateKinds
	// Sender calls WeChat; nil disables the send consumer (events only).
	Sender Sender
	// SendAttempts is how many times a send is tried before it is dead.
	SendAttempts int
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
}

// Processor applies the stream's events to the store. Its methods are safe for
// concurrent use, and any number of processors may share one stream and store:
// the durable consumers spread messages between them and every write is a
// compare-and-set on one document.
type Processor struct {
	store   Store
	js      jetstream.JetStream
	pub     Publisher
	log     *slog.Logger
	cfg     Config
	metrics *metrics
	// consumers are the durable consumers Run attaches.
	consumers []consumer
	pauses    pauses
}

// consumer is one durable JetStream consumer and its handler.
type consumer struct {
	name    string
	filter  string
	handler func(ctx context.Context, msg jetstream.Msg) error
	// key orders the work: messages with the same key (a user) are handled one at a
	// time and in stream order, so a user's popups, changes and sends never overtake
	// each other within a processor.
	key func(msg jetstream.Msg) string
}

// Consumer names, stable across versions so that restarts resume where they stopped.
const (
	ConsumerEvents = "wxgate-events"
	ConsumerSends  = "wxgate-sends"
)

// New returns a Processor; Run starts consuming.
func New(store Store, js jetstream.JetStream, pub Publisher, logger *slog.Logger, reg prometheus.Registerer, cfg Config) (*Processor, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 8
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
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	p := &Processor{store: store, js: js, pub: pub, log: logger, cfg: cfg, metrics: m}
	p.consumers = append(p.consumers, consumer{name: ConsumerEvents, filter: "wechat.*.in.>", handler: p.handleInbound, key: cloudEventSubject})
	if cfg.Sender != nil {
		// Keyed by the recipient: WeChat refuses concurrent sends to one user (43108).
		p.consumers = append(p.consumers, consumer{name: ConsumerSends, filter: "wechat.*.send", handler: p.handleSend, key: cloudEventSubject})
	}
	return p, nil
}

func (p *Processor) now() time.Time { return p.cfg.Clock().UTC() }

// Run attaches the durable consumers and handles messages until ctx is cancelled,
// then stops fetching and waits for the messages in hand to be settled.
func (p *Processor) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(p.consumers))
	for _, c := range p.consumers {
		cons, err := p.js.CreateOrUpdateConsumer(ctx, schemas.StreamName, jetstream.ConsumerConfig{
			Durable:       c.name,
			FilterSubject: c.filter,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       p.cfg.AckWait,
			MaxDeliver:    p.cfg.MaxDeliver,
			MaxAckPending: 1000,
			DeliverPolicy: jetstream.DeliverAllPolicy,
		})
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return fmt.Errorf("processor: consumer %s: %w", c.name, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.consume(ctx, c, cons); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// consume runs one consumer's fetch loop. Messages are spread over cfg.Workers
// lanes by their key, so at most cfg.Workers handlers run at once and one key's
// messages stay in order. On shutdown the iterator is drained: the messages
// already fetched are handled and settled rather than left to time out.
func (p *Processor) consume(ctx context.Context, c consumer, cons jetstream.Consumer) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * p.cfg.Workers))
	if err != nil {
		return fmt.Errorf("processor: consumer %s: %w", c.name, err)
	}
	stop := context.AfterFunc(ctx, it.Drain)
	defer stop()
	// Handlers finish the message in hand even during shutdown.
	work := context.WithoutCancel(ctx)
	lanes := make([]chan jetstream.Msg, p.cfg.Workers)
	var wg sync.WaitGroup
	for i := range lanes {
		lanes[i] = make(chan jetstream.Msg, 4)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for msg := range lanes[i] {
				hctx, cancel := context.WithTimeout(work, p.cfg.AckWait)
				p.settle(hctx, c.name, msg, c.handler(hctx, msg))
				cancel()
			}
		}()
	}
	defer func() {
		for _, l := range lanes {
			close(l)
		}
		wg.Wait()
	}()
	for {
		msg, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			p.log.Warn("fetching", "consumer", c.name, "err", err)
			continue
		}
		lanes[lane(c.key(msg), len(lanes))] <- msg
	}
}

// lane maps a key to one of n lanes (FNV-1a).
func lane(key string, n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * 16777619
	}
	return int(h % uint32(n))
}

// cloudEventSubject is the CloudEvent's subject (the openid), read without decoding the rest.
func cloudEventSubject(msg jetstream.Msg) string {
	var head struct {
		Subject string `json:"subject"`
	}
	_ = json.Unmarshal(msg.Data(), &head)
	return head.Subject
}
