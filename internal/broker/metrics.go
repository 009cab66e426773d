package broker

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultInfoTimeout bounds the JetStream requests of one scrape: well inside
// a scrape timeout, so that a slow NATS costs the stream metrics of one
// scrape, never the whole scrape.
const DefaultInfoTimeout = 2 * time.Second

// Descriptions of the stream metrics. The values are JetStream's, read at
// scrape time: every instance that reports them reports the same numbers, so
// aggregate them with max, not sum.
var (
	descStreamUp = prometheus.NewDesc("wxgate_stream_up",
		"1 if the stream's and its durable consumers' info was read at this scrape, 0 if JetStream did not answer in time.",
		[]string{"stream"}, nil)
	descStreamMessages = prometheus.NewDesc("wxgate_stream_messages",
		"Messages the stream holds.",
		[]string{"stream"}, nil)
	descStreamBytes = prometheus.NewDesc("wxgate_stream_bytes",
		"Bytes the stream's messages take in storage (one replica).",
		[]string{"stream"}, nil)
	descStreamMaxBytes = prometheus.NewDesc("wxgate_stream_max_bytes",
		"The stream's max_bytes limit; -1 when it has none.",
		[]string{"stream"}, nil)
	descConsumerPending = prometheus.NewDesc("wxgate_consumer_pending_messages",
		"Messages of the consumer's subjects not yet delivered to it: its backlog.",
		[]string{"stream", "consumer"}, nil)
	descConsumerAckPending = prometheus.NewDesc("wxgate_consumer_ack_pending_messages",
		"Messages delivered to the consumer and not yet acknowledged.",
		[]string{"stream", "consumer"}, nil)
	descConsumerMaxAckPending = prometheus.NewDesc("wxgate_consumer_max_ack_pending",
		"The consumer's max_ack_pending limit; -1 when it has none.",
		[]string{"stream", "consumer"}, nil)
	descConsumerRedelivered = prometheus.NewDesc("wxgate_consumer_redelivered_messages",
		"Messages delivered to the consumer more than once and not yet acknowledged.",
		[]string{"stream", "consumer"}, nil)
)

// StreamCollector reports streams' storage and the backlog of its durable
// consumers (wxgate's own and any downstream service's), asking JetStream at
// scrape time. Ephemeral consumers are left out: their names are random, and a
// series per name would never end. It is safe for concurrent use.
type StreamCollector struct {
	js      jetstream.JetStream
	streams []string
	timeout time.Duration
	log     *slog.Logger
}

var _ prometheus.Collector = (*StreamCollector)(nil)

// NewStreamCollector returns a collector for streams whose JetStream requests
// give up after timeout (0 means DefaultInfoTimeout). Register it on the
// registry that serves /metrics.
func NewStreamCollector(js jetstream.JetStream, streams []string, timeout time.Duration, logger *slog.Logger) *StreamCollector {
	if timeout <= 0 {
		timeout = DefaultInfoTimeout
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &StreamCollector{js: js, streams: streams, timeout: timeout, log: logger}
}

// Describe sends the descriptions of every stream metric.
func (c *StreamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descStreamUp, descStreamMessages, descStreamBytes, descStreamMaxBytes,
		descConsumerPending, descConsumerAckPending, descConsumerMaxAckPending, descConsumerRedelivered,
	} {
		ch <- d
	}
}

// Collect reads each stream's info and its consumers' and sends their metrics.
// When JetStream does not answer within the timeout it sends what it has and
// wxgate_stream_up 0 for that stream, and logs why: the rest of the scrape goes on.
func (c *StreamCollector) Collect(ch chan<- prometheus.Metric) {
	for _, stream := range c.streams {
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		up := 1.0
		if err := c.collect(ctx, stream, ch); err != nil {
			up = 0
			c.log.Warn("reading stream info for metrics", "stream", stream, "err", err)
		}
		cancel()
		ch <- prometheus.MustNewConstMetric(descStreamUp, prometheus.GaugeValue, up, stream)
	}
}

func (c *StreamCollector) collect(ctx context.Context, stream string, ch chan<- prometheus.Metric) error {
	s, err := c.js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	info := s.CachedInfo()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(descStreamMessages, float64(info.State.Msgs), stream)
	gauge(descStreamBytes, float64(info.State.Bytes), stream)
	gauge(descStreamMaxBytes, float64(limit(info.Config.MaxBytes)), stream)

	l := s.ListConsumers(ctx)
	// The lister's goroutine ends only once its channel is drained.
	for ci := range l.Info() {
		if ci.Config.Durable == "" {
			continue
		}
		gauge(descConsumerPending, float64(ci.NumPending), stream, ci.Name)
		gauge(descConsumerAckPending, float64(ci.NumAckPending), stream, ci.Name)
		gauge(descConsumerMaxAckPending, float64(limit(int64(ci.Config.MaxAckPending))), stream, ci.Name)
		gauge(descConsumerRedelivered, float64(ci.NumRedelivered), stream, ci.Name)
	}
	return l.Err()
}

// limit reports JetStream's "no limit" (0 or -1, depending on the field and
// the server) as -1.
func limit(v int64) int64 {
	if v <= 0 {
		return -1
	}
	return v
}
