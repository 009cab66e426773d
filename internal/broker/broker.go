// Package broker wires wxgate to NATS JetStream: it starts the embedded server
// when no cluster is configured, connects, declares the WECHAT stream and
// publishes with acknowledgement.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wxgate/wxgate/internal/derrors"
	"github.com/wxgate/wxgate/schemas"
)

// DuplicateWindow is how long the stream remembers a Nats-Msg-Id. WeChat retries a
// push within seconds of the first try; ten minutes also covers a gateway that
// answered 503 for a while. Later duplicates are caught by the processor, which
// stores every event once by its id.
const DuplicateWindow = 10 * time.Minute

// ErrUnavailable marks a publish that was not acknowledged: the event is not
// stored. It is derrors.Unavailable.
var ErrUnavailable = derrors.Unavailable

// EmbeddedOptions configures the in-process NATS server.
type EmbeddedOptions struct {
	// Listen is the client address ("127.0.0.1:4222"; port 0 picks a free one).
	Listen string
	// StoreDir holds JetStream's files.
	StoreDir string
}

// StartEmbedded starts a NATS server with JetStream in this process and waits until it
// accepts connections. The caller shuts it down with Shutdown and WaitForShutdown.
func StartEmbedded(o EmbeddedOptions) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: listen address %q: %w", o.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: listen port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	} else {
		// The server only logs a failed listen (and logging is off), so a taken
		// port would look like a server that never became ready: try it first.
		ln, err := net.Listen("tcp", o.Listen)
		if err != nil {
			return nil, fmt.Errorf("embedded nats: listen %s: %w", o.Listen, err)
		}
		if err := ln.Close(); err != nil {
			return nil, fmt.Errorf("embedded nats: %w", err)
		}
	}
	opts := &server.Options{
		ServerName: "wxgate-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   filepath.Clean(o.StoreDir),
		NoSigs:     true,
		NoLog:      true,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, errors.New("embedded nats: not ready after 10s")
	}
	return s, nil
}

// Connect dials NATS and returns the connection and its JetStream context. The
// client reconnects for ever: a broker outage is something to ride out, not exit on.
func Connect(url, name string, logger *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { logger.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to nats: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

// StreamOptions sizes the WECHAT stream.
type StreamOptions struct {
	Replicas int
	MaxAge   time.Duration
}

// EnsureStream creates the WECHAT stream and the processor's work stream
// WXGATE_WORK, or updates them to the given options, and returns WECHAT. It is
// idempotent, so every instance calls it at start-up.
func EnsureStream(ctx context.Context, js jetstream.JetStream, o StreamOptions) (jetstream.Stream, error) {
	cfg := jetstream.StreamConfig{
		Name:        schemas.StreamName,
		Description: "WeChat pushes, consent and delivery changes, and send requests",
		Subjects:    []string{schemas.StreamSubjects},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
		MaxAge:      o.MaxAge,
		Duplicates:  DuplicateWindow,
		Discard:     jetstream.DiscardOld,
	}
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("declaring stream %s: %w", schemas.StreamName, err)
	}
	src, dst := schemas.WorkTransform()
	work := jetstream.StreamConfig{
		Name:        schemas.WorkStreamName,
		Description: "The processor's queue: every change of a user's state, partitioned by user",
		Subjects:    []string{schemas.WorkSubjects},
		// The stream adds each user's partition to the subject as it stores a
		// message; one consumer per partition reads it (see schemas.WorkSubject).
		SubjectTransform: &jetstream.SubjectTransformConfig{Source: src, Destination: dst},
		// A message is removed once its partition's consumer acknowledged it.
		Retention: jetstream.WorkQueuePolicy,
		Storage:   jetstream.FileStorage,
		Replicas:  o.Replicas,
		// Work older than the WECHAT stream's history is dropped with it.
		MaxAge:     o.MaxAge,
		Duplicates: DuplicateWindow,
		// A full work stream refuses new work (the publisher retries) rather
		// than dropping queued work.
		Discard: jetstream.DiscardNew,
	}
	if _, err := js.CreateOrUpdateStream(ctx, work); err != nil {
		return nil, fmt.Errorf("declaring stream %s: %w", schemas.WorkStreamName, err)
	}
	return s, nil
}

// Publisher publishes CloudEvents to the stream and waits for the acknowledgement.
// It is safe for concurrent use.
type Publisher struct {
	js      jetstream.JetStream
	timeout time.Duration
}

// NewPublisher returns a Publisher whose publishes give up after timeout.
func NewPublisher(js jetstream.JetStream, timeout time.Duration) *Publisher {
	return &Publisher{js: js, timeout: timeout}
}

// Publish stores data on subject with id as its Nats-Msg-Id and returns once the
// stream has acknowledged it. duplicate reports that the stream already held a
// message with that id (nothing new was stored). Any failure wraps ErrUnavailable.
func (p *Publisher) Publish(ctx context.Context, subject, id string, data []byte) (duplicate bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	ack, err := p.js.Publish(ctx, subject, data, jetstream.WithMsgID(id), jetstream.WithExpectStream(schemas.StreamName))
	if err != nil {
		return false, fmt.Errorf("%w: publishing to %s: %v", ErrUnavailable, subject, err)
	}
	return ack.Duplicate, nil
}

// PublishWork stores data under id twice: on subject in the WECHAT stream, for
// downstream services, and on workSubject in the work stream, for the
// processor; an empty subject stores the work copy only. Both publishes run at
// once and PublishWork returns when both are acknowledged; duplicate is the
// WECHAT stream's answer (the work stream's when subject is empty). A failure
// of either wraps ErrUnavailable, and publishing again with the same id stores
// nothing twice.
func (p *Publisher) PublishWork(ctx context.Context, subject, workSubject, id string, data []byte) (duplicate bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	type result struct {
		dup bool
		err error
	}
	work := make(chan result, 1)
	go func() {
		ack, err := p.js.Publish(ctx, workSubject, data, jetstream.WithMsgID(id), jetstream.WithExpectStream(schemas.WorkStreamName))
		if err != nil {
			work <- result{err: fmt.Errorf("%w: publishing to %s: %v", ErrUnavailable, workSubject, err)}
			return
		}
		work <- result{dup: ack.Duplicate}
	}()
	if subject != "" {
		ack, err := p.js.Publish(ctx, subject, data, jetstream.WithMsgID(id), jetstream.WithExpectStream(schemas.StreamName))
		if err != nil {
			<-work
			return false, fmt.Errorf("%w: publishing to %s: %v", ErrUnavailable, subject, err)
		}
		duplicate = ack.Duplicate
	}
	w := <-work
	if w.err != nil {
		return false, w.err
	}
	if subject == "" {
		duplicate = w.dup
	}
	return duplicate, nil
}
