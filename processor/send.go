package processor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wxgate/wxgate/internal/derrors"
	"github.com/wxgate/wxgate/internal/wechat"
	"github.com/wxgate/wxgate/schemas"
)

// Sender calls WeChat's subscribeMessage.send for an app with the deployment's
// shared access token. Its errors are classified by wechat.SendOutcomeOf, the
// one retry policy for sends; an error that carries WeChat's errcode exposes it
// as derrors.ErrCode reads it.
type Sender interface {
	Send(ctx context.Context, appID string, body []byte) (msgID string, err error)
}

// HeaderRedrive marks a message put back on the stream from the dead letters.
const HeaderRedrive = "Wxgate-Redrive"

// ErrDuplicateRequest is returned by RequestSend with the existing message when its
// Idempotency-Key was used before.
var ErrDuplicateRequest = errors.New("idempotency key already used")

// errNoConsent refuses a send for which the ledger holds no consent.
var errNoConsent = errors.New("no consent")

// newMessageID derives the id from the idempotency key when there is one, so the
// same key always names the same message; otherwise it is time-ordered and random.
func newMessageID(appID, idempotencyKey string, now time.Time) string {
	if idempotencyKey != "" {
		return "k" + changeID("message", appID, idempotencyKey)[:30]
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "m" + strconv.FormatInt(now.UnixMilli(), 36) + hex.EncodeToString(b[:])
}

// RequestSend stores a send request as a queued message and puts it, with its
// content, on wechat.{appid}.send. The request must already be validated. With
// an idempotencyKey the message id is derived from it: a retried request
// returns the existing message with ErrDuplicateRequest, and queues it again if
// its first publish was lost.
//
// An outbox entry is written before the message and removed once the send
// event is on the stream: if the publish fails or the process dies in between,
// the sweeper (see sweep) publishes it later, so a message never stays queued
// for want of its event.
func (p *Processor) RequestSend(ctx context.Context, appID string, req *schemas.SendRequest, idempotencyKey string) (*Message, error) {
	now := p.now()
	m := &Message{
		ID: newMessageID(appID, idempotencyKey, now), AppID: appID,
		ToUser: req.ToUser, TemplateID: req.TemplateID, Page: req.Page, Data: req.Data,
		MiniprogramState: req.MiniprogramState, Lang: req.Lang,
		Status: StatusQueued, CreatedAt: now, UpdatedAt: now, Version: 1,
		History: []StatusChange{{Status: StatusQueued, At: now, Detail: "send requested"}},
	}
	if err := p.store.PutOutbox(ctx, &OutboxEntry{ID: m.ID, AppID: appID, At: now}); err != nil {
		return nil, err
	}
	var dup error
	switch err := p.store.SaveMessage(ctx, m); {
	case errors.Is(err, ErrDuplicate):
		if m, err = p.store.Message(ctx, appID, m.ID); err != nil {
			return nil, err
		}
		if m.Status != StatusQueued {
			return m, ErrDuplicateRequest
		}
		dup = ErrDuplicateRequest
	case err != nil:
		return nil, err
	default:
		p.metrics.deliveries.WithLabelValues(appID, StatusQueued).Inc()
	}
	if err := p.publishSend(ctx, m, now); err != nil {
		return m, err
	}
	if err := p.publishDelivery(ctx, m); err != nil {
		return m, err
	}
	return m, dup
}

// publishSend puts m's send event on the stream, under the same event id
// however often it is called (the stream drops a copy within its duplicate
// window), then removes m's outbox entry.
func (p *Processor) publishSend(ctx context.Context, m *Message, now time.Time) error {
	id := changeID("send", m.ID)
	ce, err := schemas.NewCloudEvent(id, m.AppID, "wxgate.send", m.ToUser, now, m.sendRequested())
	work := schemas.WorkSubject(m.AppID, m.ToUser, schemas.WorkSend)
	if err := p.publishFor(ctx, schemas.SendSubject(m.AppID), work, id, "wxgate.send", ce, err); err != nil {
		return err
	}
	if err := p.store.DeleteOutbox(ctx, m.ID); err != nil {
		// The sweeper will find the entry and publish again, harmlessly.
		p.log.Warn("removing an outbox entry", "message", m.ID, "err", err)
	}
	return nil
}

// sweep publishes, every cfg.SweepEvery, the send events that the outbox says
// were not published cfg.SweepAfter after their message was stored (a failed
// publish, a process that died), until ctx ends. Entries whose message is
// gone or no longer queued are removed. Every processor sweeps; a publish
// made twice is dropped by the stream or changes nothing.
func (p *Processor) sweep(ctx context.Context) {
	t := time.NewTicker(p.cfg.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := p.SweepOutbox(ctx); err != nil {
			p.log.Warn("sweeping the outbox", "err", err)
		} else if n > 0 {
			p.log.Info("published send events the outbox held", "count", n)
		}
	}
}

// maxSweep bounds the outbox entries one sweep looks at.
const maxSweep = 1000

// SweepOutbox makes one pass of the sweeper and returns how many send events
// it published.
func (p *Processor) SweepOutbox(ctx context.Context) (int, error) {
	entries, err := p.store.Outbox(ctx, maxSweep)
	if err != nil {
		return 0, err
	}
	now := p.now()
	n := 0
	for _, e := range entries {
		if now.Sub(e.At) < p.cfg.SweepAfter {
			break // oldest first: the rest are younger
		}
		m, err := p.store.Message(ctx, e.AppID, e.ID)
		switch {
		case errors.Is(err, ErrNotFound) || (err == nil && m.Status != StatusQueued):
			err = p.store.DeleteOutbox(ctx, e.ID)
		case err == nil:
			if err = p.publishSend(ctx, m, now); err == nil {
				n++
			}
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// sendRequested is the data of m's send event.
func (m *Message) sendRequested() schemas.SendRequested {
	return schemas.SendRequested{
		ID: m.ID, AppID: m.AppID, ToUser: m.ToUser, TemplateID: m.TemplateID, Page: m.Page, Data: m.Data,
		MiniprogramState: m.MiniprogramState, Lang: m.Lang, CreatedAt: m.CreatedAt,
	}
}

// queuedMessage is the message a send event describes, as RequestSend stored
// it: version 1, queued.
func queuedMessage(d *schemas.SendRequested) *Message {
	at := d.CreatedAt.UTC()
	return &Message{
		ID: d.ID, AppID: d.AppID, ToUser: d.ToUser, TemplateID: d.TemplateID, Page: d.Page, Data: d.Data,
		MiniprogramState: d.MiniprogramState, Lang: d.Lang,
		Status: StatusQueued, CreatedAt: at, UpdatedAt: at, Version: 1,
		History: []StatusChange{{Status: StatusQueued, At: at, Detail: "send requested"}},
	}
}

// retryAfter asks settle to redeliver after a given delay (an app-wide pause).
type retryAfter struct {
	delay time.Duration
	err   error
}

func (r *retryAfter) Error() string { return r.err.Error() }
func (r *retryAfter) Unwrap() error { return r.err }

// handleSend runs one step of a message's send, in the recipient's lane:
// consent check and grant use for a queued message, then one call to WeChat.
// It is idempotent: a message that already left those states is acknowledged
// and left alone, and a call whose answer was never recorded is not made again
// (the message becomes unknown).
//
// On the first delivery of a send event the message is taken from the event,
// as RequestSend stored it, instead of being read back; the compare-and-set of
// the first write finds out if it changed meanwhile.
func (p *Processor) handleSend(ctx context.Context, it *item) error {
	if p.cfg.Sender == nil {
		return &retryAfter{delay: time.Second, err: errors.New("this processor does not send")}
	}
	var d schemas.SendRequested
	if err := json.Unmarshal(it.ce.Data, &d); err != nil || d.ID == "" || d.AppID == "" {
		return permanentf("send event %s: data is not a send request", it.ce.ID)
	}
	var m *Message
	redrive := it.msg.Headers().Get(HeaderRedrive) != ""
	if meta, err := it.msg.Metadata(); err == nil && meta.NumDelivered == 1 && !redrive && !d.CreatedAt.IsZero() {
		m = queuedMessage(&d)
	} else {
		var err error
		m, err = p.store.Message(ctx, d.AppID, d.ID)
		if errors.Is(err, ErrNotFound) {
			return permanentf("send event %s: message %s is not stored", it.ce.ID, d.ID)
		}
		if err != nil {
			return err
		}
	}
	if redrive && (m.Status == StatusDead || m.Status == StatusUnknown) {
		was := m.Status
		var err error
		if m, err = p.UpdateMessage(ctx, m, m.AppID, m.ID, func(m *Message) (bool, error) {
			if m.Status != was {
				return false, nil
			}
			detail := redrivenDetail
			if was == StatusUnknown {
				detail = resentDetail
			}
			m.Attempts, m.ErrCode, m.ErrMsg, m.Reason, m.InFlight, m.Unsettled = 0, 0, "", "", "", false
			return true, m.Transition(StatusQueued, detail, p.now())
		}); err != nil {
			return err
		}
		if was == StatusUnknown {
			if err := p.forget(ctx, m); err != nil {
				return err
			}
		}
	}
	if m.Status == StatusUnknown {
		if wait := p.cfg.UnknownAfter - p.now().Sub(m.UpdatedAt); wait > 0 {
			// A copy delivered early (the stream redelivered it after a
			// processor or a stream leader went away): wait out the rest.
			return &retryAfter{delay: wait, err: fmt.Errorf("message %s: send outcome unknown; checking for its sent event in %v", m.ID, wait.Round(time.Second))}
		}
		// This send event came back unknown_after later (see unknown): no sent
		// event settled the message. Count it for an operator, once; never
		// resend it.
		_, counted, err := update(ctx, m,
			func(ctx context.Context) (*Message, error) { return p.store.Message(ctx, m.AppID, m.ID) },
			func(m *Message) (*Message, error) {
				if m.Status != StatusUnknown || m.Unsettled {
					return nil, nil
				}
				m.Unsettled = true
				return m, nil
			},
			p.store.SaveMessage)
		if err != nil {
			return err
		}
		if counted {
			p.metrics.unsettled.WithLabelValues(m.AppID).Inc()
			p.log.Warn("send outcome still unknown; an operator may resend it knowing it may arrive twice",
				"appid", m.AppID, "message", m.ID, "since", m.UpdatedAt)
		}
		return nil
	}
	if m.Status == StatusSent {
		return p.linkSent(ctx, m)
	}
	if m.Status != StatusQueued && m.Status != StatusSending {
		// Done: publish its state again under the same event id (the stream
		// drops it if it has it), which completes a publish an earlier
		// delivery could not make.
		return p.publishDelivery(ctx, m)
	}
	if d := p.pauses.get(m.AppID, p.now()); d > 0 {
		// Paused before any grant is used or any call made: nothing to record.
		return &retryAfter{delay: d, err: fmt.Errorf("app %s paused: daily quota reached", m.AppID)}
	}
	switch m.Status {
	case StatusQueued:
		return p.reserve(ctx, m)
	case StatusSending:
		if m.InFlight != "" {
			return p.unknown(ctx, m, "a call to WeChat was started and its answer never recorded")
		}
		return p.attempt(ctx, m, false)
	}
	return nil
}

// History details of the two ways a message is sent again by an operator.
const (
	redrivenDetail = "redriven from the dead letters"
	resentDetail   = "resent by an operator although its first send may have reached the user"
)

// reserve checks the ledger and, for a one-time consent, uses one grant, then
// makes the first call to WeChat. Without consent the message is rejected
// without calling WeChat. The grant is keyed by the message and its send
// cycle: the consent change that uses it is also the record, written before
// the call, that the call may have been made. Finding it already applied to a
// queued message means an earlier delivery got that far: the message becomes
// unknown rather than being sent twice.
func (p *Processor) reserve(ctx context.Context, m *Message) error {
	c, err := p.store.Consent(ctx, ConsentKey(m.AppID, m.ToUser, m.TemplateID))
	switch {
	case errors.Is(err, ErrNotFound):
		c = nil
	case err != nil:
		return err
	}
	if c != nil && c.Kind == "" {
		if k := p.kind(ctx, m.AppID, m.TemplateID); k != "" {
			c.Kind = k
			if c.Kind == KindLongTerm {
				// Write what was learned; a one-time kind is written with the grant below.
				if c, err = p.updateConsent(ctx, c, m.AppID, m.ToUser, m.TemplateID,
					ConsentChange{ID: "kind/" + k, Source: SourceSend, Action: ActionKind, Kind: k}, nil); err != nil {
					return err
				}
			}
		}
	}
	if c != nil && slices.Contains(c.Applied, m.grantKey()) {
		// An earlier delivery got this far. If it also recorded WeChat's answer
		// there is nothing to do; if not, its call may have been made.
		stored, err := p.store.Message(ctx, m.AppID, m.ID)
		if err != nil {
			return err
		}
		if stored.Status == StatusSent {
			return p.linkSent(ctx, stored) // in case a crash cut markSent short
		}
		if stored.Status != StatusQueued {
			return p.publishDelivery(ctx, stored) // as in handleSend
		}
		return p.unknown(ctx, stored, "the grant was used by an earlier delivery whose call to WeChat was never recorded")
	}
	if reason := refusal(c); reason != "" {
		_, err := p.UpdateMessage(ctx, m, m.AppID, m.ID, func(m *Message) (bool, error) {
			if m.Status != StatusQueued {
				return false, nil
			}
			m.Reason = reason
			return true, m.Transition(StatusRejected, reason, p.now())
		})
		return err
	}
	if !c.OneTime() {
		return p.attempt(ctx, m, false)
	}
	// The send is announced before the grant is used: once the grant is
	// written, a delivery that fails before WeChat answers becomes unknown, so
	// nothing that can fail for a passing reason (the stream electing a
	// leader) may come between the two.
	if err := p.announceSending(ctx, m); err != nil {
		return err
	}
	ch := ConsentChange{ID: m.grantKey(), Source: SourceSend, Action: ActionConsume}
	_, err = p.updateConsent(ctx, c, m.AppID, m.ToUser, m.TemplateID, ch, func(c *Consent) error {
		if reason := refusal(c); reason != "" {
			return fmt.Errorf("%w: %s", errNoConsent, reason)
		}
		return nil
	})
	if errors.Is(err, errNoConsent) {
		// The entry changed between the read and the write: decide again next time.
		return err
	}
	if err != nil {
		return err
	}
	m.GrantHeld = true
	return p.attempt(ctx, m, true)
}

// refusal is why the ledger entry c does not allow a send, or "".
func refusal(c *Consent) string {
	switch {
	case c == nil:
		return "no consent: the user never accepted this template"
	case c.Status != ConsentAccepted:
		return "no consent: the user's consent is " + c.Status
	case c.OneTime() && c.Grants == 0:
		return "no consent: no one-time grant left"
	}
	return ""
}

// unknown records that WeChat may or may not have accepted m: it is never sent
// again automatically, its grant stays used, and a sent event for its user and
// template, or an operator, settles it.
func (p *Processor) unknown(ctx context.Context, m *Message, detail string) error {
	p.log.Warn("send outcome unknown; not resending", "appid", m.AppID, "message", m.ID, "detail", detail)
	m, err := p.UpdateMessage(ctx, m, m.AppID, m.ID, func(m *Message) (bool, error) {
		if m.Status != StatusQueued && m.Status != StatusSending {
			return false, nil
		}
		m.InFlight = ""
		m.Reason = "WeChat's answer is unknown: " + detail
		return true, m.Transition(StatusUnknown, m.Reason, p.now())
	})
	if err != nil {
		return err
	}
	if m.Status == StatusSent {
		// The store shows WeChat's answer recorded: this delivery started from
		// the send event's copy of the message, not from the store.
		return p.linkSent(ctx, m)
	}
	if m.Status != StatusUnknown {
		return nil
	}
	if err := p.matchUnknown(ctx, m); err != nil {
		return err
	}
	// Bring the send event back after unknown_after, to count the message if
	// no sent event has settled it by then.
	return &retryAfter{delay: p.cfg.UnknownAfter, err: fmt.Errorf("message %s: send outcome unknown; checking for its sent event in %v", m.ID, p.cfg.UnknownAfter)}
}

// forget removes message m from the messages of its user and template
// waiting for a sent event (an operator resent it).
func (p *Processor) forget(ctx context.Context, m *Message) error {
	return p.editConsentLists(ctx, m.AppID, m.ToUser, m.TemplateID, func(c *Consent) bool {
		if !slices.Contains(c.Unsettled, m.ID) {
			return false
		}
		c.Unsettled = slices.DeleteFunc(c.Unsettled, func(id string) bool { return id == m.ID })
		return true
	})
}

// editConsentLists changes the bookkeeping lists of a consent document
// (Unsettled, Unmatched) with compare-and-set; edit reports whether it changed c.
func (p *Processor) editConsentLists(ctx context.Context, appID, openID, templateID string, edit func(*Consent) bool) error {
	key := ConsentKey(appID, openID, templateID)
	_, _, err := update(ctx, nil,
		func(ctx context.Context) (*Consent, error) { return p.store.Consent(ctx, key) },
		func(c *Consent) (*Consent, error) {
			if c == nil || !edit(c) {
				return nil, nil
			}
			return c, nil
		},
		p.store.SaveConsent)
	return err
}

// attempt makes one call to WeChat and applies the errcode table. Before the
// call its intent is on record: the grant's consent change (reserved true, the
// first call of a one-time send) or the message's InFlight.
func (p *Processor) attempt(ctx context.Context, m *Message, reserved bool) error {
	req := schemas.SendRequest{ToUser: m.ToUser, TemplateID: m.TemplateID, Page: m.Page, Data: m.Data, MiniprogramState: m.MiniprogramState, Lang: m.Lang}
	body, err := req.WeChatBody()
	if err != nil {
		return p.finish(ctx, m, StatusInvalid, true, 0, "", fmt.Sprintf("cannot encode the request: %v", err))
	}
	if err := p.announceSending(ctx, m); err != nil {
		return err
	}
	if !reserved {
		// Write the call's intent first: a crash during the call must not lead to a second one.
		flight := fmt.Sprintf("%s/%d", m.ID, m.Attempts+1)
		var err error
		if m, err = p.saveMessage(ctx, m, func(m *Message) { m.InFlight = flight }); err != nil {
			return err
		}
	}
	msgID, err := p.cfg.Sender.Send(ctx, m.AppID, body)
	if err == nil {
		return p.markSent(ctx, m, msgID)
	}
	code, errmsg, hasCode := derrors.ErrCode(err)
	what := fmt.Sprintf("WeChat errcode %d", code)
	if hasCode {
		p.metrics.sendErrors.WithLabelValues(m.AppID, strconv.Itoa(code)).Inc()
	} else {
		what = fmt.Sprintf("calling WeChat: %v", err)
	}
	switch wechat.SendOutcomeOf(err) {
	case wechat.SendRetry:
		return p.retry(ctx, m, code, errmsg, what, time.Time{})
	case wechat.SendUnknown:
		return p.unknown(ctx, m, what)
	case wechat.SendInvalid:
		return p.finish(ctx, m, StatusInvalid, true, code, errmsg, "WeChat refused the request: "+what)
	case wechat.SendNoConsent:
		zero := ConsentChange{ID: m.grantKey() + "/43101", Source: SourceSend, Action: ActionZero}
		if _, err := p.updateConsent(ctx, nil, m.AppID, m.ToUser, m.TemplateID, zero, nil); err != nil {
			return err
		}
		return p.finish(ctx, m, StatusRejected, false, code, errmsg, "WeChat: the user has no consent left (43101)")
	case wechat.SendPause:
		until := nextQuotaReset(p.now())
		if err := p.pauses.set(ctx, m.AppID, until); err != nil {
			p.log.Warn("the pause is not shared: other processors will find the quota spent themselves", "appid", m.AppID, "err", err)
		}
		p.log.Warn("daily send quota reached; pausing the app", "appid", m.AppID, "until", until)
		return p.retry(ctx, m, code, errmsg, "daily quota reached (45009)", until)
	case wechat.SendBanned:
		p.metrics.alerts.WithLabelValues(m.AppID, "43107").Inc()
		p.log.Error("ALERT: the app's subscription-message ability is banned (43107)", "appid", m.AppID)
		if err := p.finish(ctx, m, StatusDead, true, code, errmsg, "the app's subscription-message ability is banned (43107)"); err != nil {
			return err
		}
		return fmt.Errorf("%w: message %s: %w", ErrPermanent, m.ID, err)
	default:
		if err := p.finish(ctx, m, StatusDead, true, code, errmsg, "unexpected failure: "+what); err != nil {
			return err
		}
		return fmt.Errorf("%w: message %s: %w", ErrPermanent, m.ID, err)
	}
}

// announceSending publishes that a queued message m is being sent and makes m
// sending; the sending state is stored with the call's result. It does
// nothing to a message that is not queued.
func (p *Processor) announceSending(ctx context.Context, m *Message) error {
	if m.Status != StatusQueued {
		return nil
	}
	sending := *m
	_ = sending.Transition(StatusSending, "consent checked", p.now())
	if err := p.publishDelivery(ctx, &sending); err != nil {
		return err
	}
	p.metrics.deliveries.WithLabelValues(m.AppID, StatusSending).Inc()
	*m = sending
	return nil
}

// saveMessage applies fn to the message m the lane holds and writes it. m is
// the state the lane wrote or read last; the compare-and-set fails only if
// someone else wrote it, which the lane never expects: that is an error to
// retry from the stream, with the message read afresh.
func (p *Processor) saveMessage(ctx context.Context, m *Message, fn func(*Message)) (*Message, error) {
	next := *m
	fn(&next)
	next.bump()
	if err := p.store.SaveMessage(ctx, &next); err != nil {
		return m, err
	}
	return &next, nil
}

// MarkSent records that WeChat accepted message id of appID under msgID, as
// the send pipeline does with WeChat's reply, and applies a sent event that
// arrived first. It must run where the recipient's lane would.
func (p *Processor) MarkSent(ctx context.Context, appID, id, msgID string) (*Message, error) {
	m, err := p.store.Message(ctx, appID, id)
	if err != nil {
		return nil, err
	}
	if err := p.markSent(ctx, m, msgID); err != nil {
		return nil, err
	}
	return p.store.Message(ctx, appID, id)
}

// markSent records that WeChat accepted m under msgID (the attempt that
// succeeded), then links the msgid to m for its sent event.
func (p *Processor) markSent(ctx context.Context, m *Message, msgID string) error {
	detail := "WeChat accepted msgid " + msgID
	if msgID == "" {
		// WeChat's bug, not ours: the send is accepted, but its sent event
		// cannot be matched by msgid.
		detail = "WeChat accepted the send without a msgid"
		p.log.Warn("send accepted without a msgid", "appid", m.AppID, "message", m.ID)
	}
	m, err := p.UpdateMessage(ctx, m, m.AppID, m.ID, func(m *Message) (bool, error) {
		if !m.sending(p.now()) {
			return false, nil
		}
		m.Attempts++
		m.InFlight, m.NextAttemptAt = "", time.Time{}
		m.WeChatMsgID, m.ErrCode, m.ErrMsg = msgID, 0, ""
		return true, m.Transition(StatusSent, detail, p.now())
	})
	if err != nil {
		return err
	}
	if msgID == "" {
		return p.matchUnknown(ctx, m)
	}
	_, err = p.linkMsgID(ctx, m, msgID)
	return err
}

// linkSent completes markSent for a message found sent when its send event
// comes again: a process that died after recording WeChat's answer and before
// linking the msgid would otherwise leave the sent event without its message,
// and the message sent for ever. Both writes are idempotent.
func (p *Processor) linkSent(ctx context.Context, m *Message) error {
	if m.WeChatMsgID == "" {
		return p.matchUnknown(ctx, m)
	}
	_, err := p.linkMsgID(ctx, m, m.WeChatMsgID)
	return err
}

// retry records a failed attempt that is not the user's doing. Below the
// attempt limit the message stays sending, shows when it is tried next, and
// settle has the stream redeliver it then (processor.send_retry); at the limit
// it is dead, its grant given back, and kept as a dead letter. A pause (the app
// paused by 45009 until pausedUntil, when its quota resets) uses no attempt.
func (p *Processor) retry(ctx context.Context, m *Message, code int, errmsg, detail string, pausedUntil time.Time) error {
	var last bool
	var delay time.Duration
	m, err := p.UpdateMessage(ctx, m, m.AppID, m.ID, func(m *Message) (bool, error) {
		if !m.sending(p.now()) {
			return false, nil
		}
		now := p.now()
		delay = pausedUntil.Sub(now)
		if pausedUntil.IsZero() {
			m.Attempts++
			delay = p.retryDelay(m.Attempts)
		}
		m.InFlight = ""
		m.ErrCode, m.ErrMsg = code, errmsg
		last = m.Attempts >= p.cfg.SendAttempts
		if last {
			m.NextAttemptAt = time.Time{}
			m.Reason = fmt.Sprintf("gave up after %d attempts: %s", m.Attempts, detail)
			return true, m.Transition(StatusDead, m.Reason, now)
		}
		m.NextAttemptAt = now.Add(delay)
		return true, m.Transition(StatusSending, fmt.Sprintf("attempt %d failed: %s; next try at %s", m.Attempts, detail, m.NextAttemptAt.Format(time.RFC3339)), now)
	})
	if err != nil {
		return err
	}
	if !last {
		return &retryAfter{delay: delay, err: errors.New(detail)}
	}
	if err := p.restoreGrant(ctx, m); err != nil {
		return err
	}
	return fmt.Errorf("%w: message %s: %w", ErrPermanent, m.ID, wechatCause{code: code, msg: m.Reason})
}

// retryDelay is how long a send waits after its n-th failed attempt: the
// configured schedule (its last delay repeating) with up to 20% jitter, so
// that sends failing together do not come back together; without a schedule,
// exponential backoff.
func (p *Processor) retryDelay(n int) time.Duration {
	s := p.cfg.SendRetry
	if len(s) == 0 {
		return backoff(n)
	}
	d := s[min(max(n-1, 0), len(s)-1)]
	if j := d / 5; j > 0 {
		d += mrand.N(2*j+1) - j
	}
	return max(d, 0)
}

// finish ends a message in a terminal status after a call to WeChat. restore
// gives a held grant back: WeChat did not use the user's consent.
func (p *Processor) finish(ctx context.Context, m *Message, status string, restore bool, code int, errmsg, reason string) error {
	m, err := p.UpdateMessage(ctx, m, m.AppID, m.ID, func(m *Message) (bool, error) {
		if !m.sending(p.now()) {
			return false, nil
		}
		m.Attempts++
		m.InFlight, m.NextAttemptAt = "", time.Time{}
		m.ErrCode, m.ErrMsg, m.Reason = code, errmsg, reason
		return true, m.Transition(status, reason, p.now())
	})
	if err != nil || !restore {
		return err
	}
	return p.restoreGrant(ctx, m)
}

// sending reports whether m is waiting for the result of a call to WeChat. A
// message read back as queued (its first call's sending state was announced
// but not yet written) is moved to sending first.
func (m *Message) sending(now time.Time) bool {
	if m.Status == StatusQueued {
		_ = m.Transition(StatusSending, "consent checked", now)
	}
	return m.Status == StatusSending
}

// restoreGrant gives back the grant a message held, once (keyed by the message id).
func (p *Processor) restoreGrant(ctx context.Context, m *Message) error {
	if !m.GrantHeld {
		return nil
	}
	ch := ConsentChange{ID: m.grantKey() + "/restore", Source: SourceSend, Action: ActionRestore}
	_, err := p.updateConsent(ctx, nil, m.AppID, m.ToUser, m.TemplateID, ch, nil)
	return err
}

// grantKey names the grant one send cycle of m uses: a redriven message uses (and
// may give back) a new one.
func (m *Message) grantKey() string {
	return "send/" + m.ID + "/" + strconv.Itoa(m.Redrives())
}

// Redrives counts how often the message came back from the dead letters.
func (m *Message) Redrives() int {
	n := 0
	for _, h := range m.History {
		if h.Status == StatusQueued && (h.Detail == redrivenDetail || h.Detail == resentDetail) {
			n++
		}
	}
	return n
}

// ErrNotUnknown refuses to resend a message whose send outcome is known.
var ErrNotUnknown = fmt.Errorf("%w: only a message whose send outcome is unknown can be resent", derrors.Conflict)

// Resend sends a message whose outcome is unknown again, from the start (a
// consent check and a new grant), at an operator's request: WeChat may have
// accepted the first send, so the user may get the message twice. It puts the
// message's send event back on the stream, for the recipient's lane.
func (p *Processor) Resend(ctx context.Context, appID, id string) (*Message, error) {
	m, err := p.store.Message(ctx, appID, id)
	if err != nil {
		return nil, err
	}
	if m.Status != StatusUnknown {
		return m, ErrNotUnknown
	}
	n := m.Redrives() + 1
	sid := changeID("send", m.ID)
	ce, err := schemas.NewCloudEvent(sid, appID, "wxgate.send", m.ToUser, p.now(), m.sendRequested())
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(ce)
	if err != nil {
		return nil, err
	}
	msg := nats.NewMsg(schemas.WorkSubject(appID, m.ToUser, schemas.WorkSend))
	msg.Data = data
	msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s/resend/%d", sid, n))
	msg.Header.Set(HeaderRedrive, "resend")
	if _, err := p.js.PublishMsg(ctx, msg); err != nil {
		return nil, fmt.Errorf("resending %s: %w: %v", id, ErrUnavailable, err)
	}
	return m, nil
}

// Redrive puts a dead letter's message back on its subject: a dead send is tried
// again from the start, an inbound event is applied again (idempotently).
func (p *Processor) Redrive(ctx context.Context, id string) (*DeadLetter, error) {
	dl, err := p.store.DeadLetter(ctx, id)
	if err != nil {
		return nil, err
	}
	n := dl.Redrives + 1
	msg := nats.NewMsg(dl.Subject)
	msg.Data = []byte(dl.Data)
	msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s/redrive/%d", dl.MsgID, n))
	msg.Header.Set(HeaderRedrive, dl.ID)
	if _, err := p.js.PublishMsg(ctx, msg); err != nil {
		return nil, fmt.Errorf("redriving %s: %w: %v", id, ErrUnavailable, err)
	}
	now := p.now()
	dl.Redrives, dl.RedrivenAt = n, &now
	dl.Version++
	if err := p.store.SaveDeadLetter(ctx, dl); err != nil {
		return nil, err
	}
	return dl, nil
}

// wechatCause carries WeChat's last errcode (0 when the cause was no answer)
// to the dead letter of a send that ran out of attempts.
type wechatCause struct {
	code int
	msg  string
}

func (c wechatCause) Error() string  { return c.msg }
func (c wechatCause) ErrCode() int   { return c.code }
func (c wechatCause) ErrMsg() string { return c.msg }

// DeleteDeadLetter removes one dead letter.
func (p *Processor) DeleteDeadLetter(ctx context.Context, id string) error {
	if _, err := p.store.DeadLetter(ctx, id); err != nil {
		return err
	}
	return p.store.DeleteDeadLetter(ctx, id)
}

// maxBulk bounds the dead letters one bulk redrive or delete handles; the
// caller repeats it for more.
const maxBulk = 10_000

// RedriveMatching redrives every dead letter q matches (its Page's limit and
// cursor are ignored), at most maxBulk of them, and returns how many.
func (p *Processor) RedriveMatching(ctx context.Context, q DeadLetterQuery) (int, error) {
	return p.eachDeadLetter(ctx, q, func(d *DeadLetter) error {
		_, err := p.Redrive(ctx, d.ID)
		return err
	})
}

// DeleteMatching deletes every dead letter q matches (its Page's limit and
// cursor are ignored), at most maxBulk of them, and returns how many.
func (p *Processor) DeleteMatching(ctx context.Context, q DeadLetterQuery) (int, error) {
	// Deleting as the pages go by would move the cursor: collect first.
	var ids []string
	if _, err := p.eachDeadLetter(ctx, q, func(d *DeadLetter) error {
		ids = append(ids, d.ID)
		return nil
	}); err != nil {
		return 0, err
	}
	for i, id := range ids {
		if err := p.store.DeleteDeadLetter(ctx, id); err != nil {
			return i, err
		}
	}
	return len(ids), nil
}

// eachDeadLetter calls fn for every dead letter q matches, newest first, up
// to maxBulk, and returns how many it called fn for.
func (p *Processor) eachDeadLetter(ctx context.Context, q DeadLetterQuery, fn func(*DeadLetter) error) (int, error) {
	q.Limit, q.Cursor = MaxLimit, ""
	n := 0
	for n < maxBulk {
		page, next, err := p.store.DeadLetters(ctx, q)
		if err != nil {
			return n, err
		}
		for i := range page {
			if n == maxBulk {
				break
			}
			if err := fn(&page[i]); err != nil {
				return n, err
			}
			n++
		}
		if next == "" {
			break
		}
		q.Cursor = next
	}
	return n, nil
}
