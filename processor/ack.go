package processor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wxgate/wxgate/internal/derrors"
	"github.com/wxgate/wxgate/schemas"
)

// ErrPermanent marks a message that can never be processed (it does not decode,
// or it breaks an invariant). Handlers wrap it; settle terminates the message and
// keeps it as a dead letter instead of redelivering it. It is derrors.Permanent.
var ErrPermanent = derrors.Permanent

// permanentf returns an error wrapping ErrPermanent.
func permanentf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrPermanent, fmt.Sprintf(format, args...))
}

// Backoff bounds for redeliveries after a transient failure.
const (
	minBackoff = 250 * time.Millisecond
	maxBackoff = 30 * time.Second
)

// decision is what settle does with a stream message.
type decision string

const (
	ack        decision = "ack"
	nak        decision = "nak"         // redeliver after a delay
	deadLetter decision = "dead_letter" // keep it as a dead letter, then terminate
)

// decide is the processor's one table from a handler's error, by its kind
// (internal/derrors), to what happens to the message:
//
//	nil                                        ack
//	Permanent, Invalid, NotFound, Ambiguous    dead letter: no redelivery can fix it,
//	                                           and a call that may have happened is not repeated
//	Unavailable, Conflict, Duplicate, other    nak: a dependency may be back, a race
//	                                           may be over
func decide(err error) decision {
	if err == nil {
		return ack
	}
	switch derrors.KindOf(err) {
	case derrors.Permanent, derrors.Invalid, derrors.NotFound, derrors.Ambiguous:
		return deadLetter
	}
	return nak
}

// settle carries out decide for one message. A message to nak on its last
// allowed delivery becomes a dead letter instead, so it never blocks the ones
// behind it; a nak waits with exponential backoff and jitter, or for the delay
// a retryAfter asks (an app paused until its daily quota resets). If the dead
// letter cannot be stored the message is nakked: nothing is dropped without a
// record.
func (p *Processor) settle(ctx context.Context, msg jetstream.Msg, err error) {
	consumer := ConsumerName
	// A dead letter names the subject to publish it on again, which puts it
	// back in its partition.
	subject, appID := msg.Subject(), ""
	if w, werr := schemas.ParseWorkSubject(subject); werr == nil {
		subject, appID = w.Subject(), w.AppID
	}
	d := decide(err)
	if d == ack {
		p.metrics.handled.WithLabelValues(consumer, string(ack)).Inc()
		if aerr := msg.Ack(); aerr != nil {
			p.log.Warn("ack failed; the message will be redelivered and is idempotent", "consumer", consumer, "subject", subject, "err", aerr)
		}
		return
	}
	deliveries := 1
	if meta, merr := msg.Metadata(); merr == nil {
		deliveries = int(meta.NumDelivered)
	}
	if d == nak && deliveries < p.cfg.MaxDeliver {
		delay := backoff(deliveries)
		var ra *retryAfter
		if errors.As(err, &ra) {
			delay = ra.delay
		}
		p.metrics.handled.WithLabelValues(consumer, string(nak)).Inc()
		p.log.Warn("transient failure, redelivering", "consumer", consumer, "subject", subject, "delivery", deliveries, "delay", delay, "err", err)
		_ = msg.NakWithDelay(delay)
		return
	}
	dl := &DeadLetter{
		ID:         deadLetterID(consumer, msg),
		AppID:      appID,
		Consumer:   consumer,
		Subject:    subject,
		MsgID:      msg.Headers().Get(jetstream.MsgIDHeader),
		Data:       string(msg.Data()),
		Reason:     err.Error(),
		ErrCode:    errCodeOf(err),
		Deliveries: deliveries,
		At:         p.now(),
		Version:    1,
	}
	if derr := p.store.PutDeadLetter(ctx, dl); derr != nil {
		p.metrics.handled.WithLabelValues(consumer, string(nak)).Inc()
		p.log.Error("cannot store dead letter; redelivering", "consumer", consumer, "subject", subject, "err", derr, "reason", err)
		_ = msg.NakWithDelay(maxBackoff)
		return
	}
	p.metrics.handled.WithLabelValues(consumer, string(deadLetter)).Inc()
	p.log.Error("dead letter", "consumer", consumer, "subject", subject, "id", dl.ID, "deliveries", deliveries, "reason", err)
	_ = msg.Term()
}

// backoff is the redelivery delay after the n-th delivery failed: exponential
// from minBackoff, capped at maxBackoff, with up to 50% jitter so that a crowd of
// messages failing together does not come back together.
func backoff(n int) time.Duration {
	d := minBackoff << min(max(n-1, 0), 10)
	d = min(d, maxBackoff)
	return d/2 + rand.N(d/2+1)
}

// deadLetterID is stable for one stream message, so storing its dead letter twice is harmless.
func deadLetterID(consumer string, msg jetstream.Msg) string {
	key := msg.Headers().Get(jetstream.MsgIDHeader)
	if meta, err := msg.Metadata(); err == nil {
		key = fmt.Sprintf("%s|%d", key, meta.Sequence.Stream)
	}
	sum := sha256.Sum256([]byte(consumer + "|" + key))
	return hex.EncodeToString(sum[:12])
}

// errCodeOf is WeChat's errcode carried by err, or 0.
func errCodeOf(err error) int {
	code, _, _ := derrors.ErrCode(err)
	return code
}
