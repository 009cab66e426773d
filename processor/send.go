package processor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wxgate/wxgate/schemas"
)

// Sender calls WeChat's subscribeMessage.send for an app with the deployment's
// shared access token. An error that carries a WeChat errcode implements
// interface{ ErrCode() int; ErrMsg() string }; any other error is a network or
// availability failure and is retried.
type Sender interface {
	Send(ctx context.Context, appID string, body []byte) (msgID string, err error)
}

// wechatError is how a Sender's error exposes WeChat's errcode and errmsg.
type wechatError interface {
	ErrCode() int
	ErrMsg() string
}

// WeChat errcodes the send pipeline acts on (wechat-protocol.md, section 6).
const (
	codeBusy            = -1
	codeTokenInvalid    = 40001
	codeBadOpenID       = 40003
	codeTokenNotLatest  = 40014
	codeBadTemplate     = 40037
	codeBadPage         = 41030
	codeTokenExpired    = 42001
	codeNoConsent       = 43101
	codeAbilityBanned   = 43107
	codeConcurrentSends = 43108
	codeDailyQuota      = 45009
	codeSensitiveWord   = 45168
	codeBadData         = 47003
)

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

// RequestSend stores a send request as a queued message and puts it on
// wechat.{appid}.send. The request must already be validated. With an
// idempotencyKey the message id is derived from it: a retried request returns
// the existing message with ErrDuplicateRequest, and queues it again if its
// first publish was lost.
func (p *Processor) RequestSend(ctx context.Context, appID string, req *schemas.SendRequest, idempotencyKey string) (*Message, error) {
	now := p.now()
	m := &Message{
		ID: newMessageID(appID, idempotencyKey, now), AppID: appID,
		ToUser: req.ToUser, TemplateID: req.TemplateID, Page: req.Page, Data: req.Data,
		MiniprogramState: req.MiniprogramState, Lang: req.Lang,
		Status: StatusQueued, CreatedAt: now, UpdatedAt: now, Version: 1,
		History: []StatusChange{{Status: StatusQueued, At: now, Detail: "send requested"}},
	}
	var dup error
	if err := p.store.SaveMessage(ctx, m); errors.Is(err, ErrConflict) {
		if m, err = p.store.Message(ctx, appID, m.ID); err != nil {
			return nil, err
		}
		if m.Status != StatusQueued {
			return m, ErrDuplicateRequest
		}
		dup = ErrDuplicateRequest
	} else if err != nil {
		return nil, err
	}
	id := changeID("send", m.ID)
	data := schemas.SendRequested{ID: m.ID, AppID: appID, ToUser: m.ToUser, TemplateID: m.TemplateID}
	ce, err := schemas.NewCloudEvent(id, appID, "wxgate.send", m.ToUser, now, data)
	if err := p.publish(ctx, schemas.SendSubject(appID), id, "wxgate.send", ce, err); err != nil {
		return m, err
	}
	if err := p.publishDelivery(ctx, m); err != nil {
		return m, err
	}
	return m, dup
}

// retryAfter asks settle to redeliver after a given delay (an app-wide pause).
type retryAfter struct {
	delay time.Duration
	err   error
}

func (r *retryAfter) Error() string { return r.err.Error() }
func (r *retryAfter) Unwrap() error { return r.err }

// pauses holds the apps whose daily quota is spent (45009), until when.
type pauses struct {
	mu    sync.Mutex
	until map[string]time.Time
}

func (ps *pauses) get(appID string, now time.Time) time.Duration {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if d := ps.until[appID].Sub(now); d > 0 {
		return d
	}
	return 0
}

func (ps *pauses) set(appID string, until time.Time) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.until == nil {
		ps.until = map[string]time.Time{}
	}
	ps.until[appID] = until
}

// beijing is WeChat's time zone, in which daily quotas reset (no tzdata needed).
var beijing = time.FixedZone("CST", 8*3600)

// nextQuotaReset is the next midnight in Beijing after now.
func nextQuotaReset(now time.Time) time.Time {
	t := now.In(beijing)
	return time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, beijing)
}

// handleSend runs one step of a message's send: consent check and grant use for a
// queued message, then one call to WeChat for a sending one. It is idempotent: a
// message that already left those states is acknowledged and left alone.
func (p *Processor) handleSend(ctx context.Context, msg jetstream.Msg) error {
	ce, err := schemas.DecodeCloudEvent(msg.Data())
	if err != nil {
		return permanentf("send event: %v", err)
	}
	var d schemas.SendRequested
	if err := json.Unmarshal(ce.Data, &d); err != nil || d.ID == "" || d.AppID == "" {
		return permanentf("send event %s: data is not a send request", ce.ID)
	}
	m, err := p.store.Message(ctx, d.AppID, d.ID)
	if errors.Is(err, ErrNotFound) {
		return permanentf("send event %s: message %s is not stored", ce.ID, d.ID)
	}
	if err != nil {
		return err
	}
	if m.Status == StatusDead && msg.Headers().Get(HeaderRedrive) != "" {
		if m, err = p.UpdateMessage(ctx, m.AppID, m.ID, func(m *Message) (bool, error) {
			if m.Status != StatusDead {
				return false, nil
			}
			m.Attempts, m.ErrCode, m.ErrMsg, m.Reason = 0, 0, "", ""
			return true, m.Transition(StatusQueued, "redriven from the dead letters", p.now())
		}); err != nil {
			return err
		}
	}
	if m.Status == StatusQueued {
		if m, err = p.reserve(ctx, m); err != nil {
			return err
		}
	}
	if m.Status != StatusSending {
		return nil
	}
	return p.attempt(ctx, m)
}

// reserve checks the ledger and uses one grant in one atomic update of the consent
// document (a long-term consent is checked, not used), then moves the message to
// sending; without consent the message is rejected without calling WeChat. The
// grant is keyed by the message and its send cycle, so a redelivery never uses a second one.
func (p *Processor) reserve(ctx context.Context, m *Message) (*Message, error) {
	held := false
	ch := ConsentChange{ID: m.grantKey(), Source: SourceSend, Action: ActionConsume}
	c, err := p.updateConsent(ctx, m.AppID, m.ToUser, m.TemplateID, ch, func(c *Consent) error {
		switch {
		case c == nil:
			return fmt.Errorf("%w: the user never accepted this template", errNoConsent)
		case c.Status != ConsentAccepted:
			return fmt.Errorf("%w: the user's consent is %s", errNoConsent, c.Status)
		case c.Kind == KindOneTime && c.Grants == 0:
			return fmt.Errorf("%w: no one-time grant left", errNoConsent)
		}
		return nil
	})
	reason := ""
	switch {
	case errors.Is(err, errNoConsent):
		reason = err.Error()
	case err != nil:
		return nil, err
	default:
		held = c.Kind == KindOneTime
	}
	return p.UpdateMessage(ctx, m.AppID, m.ID, func(m *Message) (bool, error) {
		if m.Status != StatusQueued {
			return false, nil
		}
		if reason != "" {
			m.Reason = reason
			return true, m.Transition(StatusRejected, reason, p.now())
		}
		m.GrantHeld = held
		return true, m.Transition(StatusSending, "consent checked", p.now())
	})
}

// attempt calls WeChat once and applies the errcode table.
func (p *Processor) attempt(ctx context.Context, m *Message) error {
	if d := p.pauses.get(m.AppID, p.now()); d > 0 {
		return &retryAfter{delay: d, err: fmt.Errorf("app %s paused: daily quota reached", m.AppID)}
	}
	req := schemas.SendRequest{ToUser: m.ToUser, TemplateID: m.TemplateID, Page: m.Page, Data: m.Data, MiniprogramState: m.MiniprogramState, Lang: m.Lang}
	body, err := req.WeChatBody()
	if err != nil {
		return p.finish(ctx, m, StatusInvalid, true, 0, "", fmt.Sprintf("cannot encode the request: %v", err))
	}
	msgID, err := p.cfg.Sender.Send(ctx, m.AppID, body)
	if err == nil {
		_, err := p.MarkSent(ctx, m.AppID, m.ID, msgID)
		return err
	}
	var we wechatError
	if !errors.As(err, &we) {
		return p.retry(ctx, m, 0, "", fmt.Sprintf("calling WeChat: %v", err))
	}
	code, errmsg := we.ErrCode(), we.ErrMsg()
	p.metrics.sendErrors.WithLabelValues(m.AppID, strconv.Itoa(code)).Inc()
	switch code {
	case codeBusy, codeConcurrentSends, codeTokenInvalid, codeTokenNotLatest, codeTokenExpired:
		return p.retry(ctx, m, code, errmsg, fmt.Sprintf("WeChat errcode %d", code))
	case codeBadOpenID, codeBadTemplate, codeBadPage, codeSensitiveWord, codeBadData:
		return p.finish(ctx, m, StatusInvalid, true, code, errmsg, fmt.Sprintf("WeChat refused the request: errcode %d", code))
	case codeNoConsent:
		zero := ConsentChange{ID: m.grantKey() + "/43101", Source: SourceSend, Action: ActionZero}
		if _, err := p.updateConsent(ctx, m.AppID, m.ToUser, m.TemplateID, zero, nil); err != nil {
			return err
		}
		return p.finish(ctx, m, StatusRejected, false, code, errmsg, "WeChat: the user has no consent left (43101)")
	case codeDailyQuota:
		until := nextQuotaReset(p.now())
		p.pauses.set(m.AppID, until)
		p.log.Warn("daily send quota reached; pausing the app", "appid", m.AppID, "until", until)
		return &retryAfter{delay: until.Sub(p.now()), err: fmt.Errorf("app %s: daily quota reached (45009)", m.AppID)}
	case codeAbilityBanned:
		p.metrics.alerts.WithLabelValues(m.AppID, "43107").Inc()
		p.log.Error("ALERT: the app's subscription-message ability is banned (43107)", "appid", m.AppID)
		if err := p.finish(ctx, m, StatusDead, true, code, errmsg, "the app's subscription-message ability is banned (43107)"); err != nil {
			return err
		}
		return permanentf("message %s: errcode 43107", m.ID)
	default:
		if err := p.finish(ctx, m, StatusDead, true, code, errmsg, fmt.Sprintf("unexpected WeChat errcode %d", code)); err != nil {
			return err
		}
		return permanentf("message %s: unexpected errcode %d", m.ID, code)
	}
}

// retry records a failed attempt that is not the user's doing. Below the attempt
// limit the message stays sending and the error makes settle redeliver it with
// backoff; at the limit it is dead, its grant given back, and kept as a dead letter.
func (p *Processor) retry(ctx context.Context, m *Message, code int, errmsg, detail string) error {
	var last bool
	m, err := p.UpdateMessage(ctx, m.AppID, m.ID, func(m *Message) (bool, error) {
		if m.Status != StatusSending {
			return false, nil
		}
		m.Attempts++
		m.ErrCode, m.ErrMsg = code, errmsg
		last = m.Attempts >= p.cfg.SendAttempts
		if last {
			m.Reason = fmt.Sprintf("gave up after %d attempts: %s", m.Attempts, detail)
			return true, m.Transition(StatusDead, m.Reason, p.now())
		}
		return true, m.Transition(StatusSending, fmt.Sprintf("attempt %d failed: %s", m.Attempts, detail), p.now())
	})
	if err != nil {
		return err
	}
	if !last {
		return errors.New(detail)
	}
	if err := p.restoreGrant(ctx, m); err != nil {
		return err
	}
	return permanentf("message %s: %s", m.ID, m.Reason)
}

// finish ends a message in a terminal status. restore gives a held grant back:
// WeChat did not use the user's consent.
func (p *Processor) finish(ctx context.Context, m *Message, status string, restore bool, code int, errmsg, reason string) error {
	m, err := p.UpdateMessage(ctx, m.AppID, m.ID, func(m *Message) (bool, error) {
		if m.Status != StatusSending {
			return false, nil
		}
		m.Attempts++
		m.ErrCode, m.ErrMsg, m.Reason = code, errmsg, reason
		return true, m.Transition(status, reason, p.now())
	})
	if err != nil || !restore {
		return err
	}
	return p.restoreGrant(ctx, m)
}

// restoreGrant gives back the grant a message held, once (keyed by the message id).
func (p *Processor) restoreGrant(ctx context.Context, m *Message) error {
	if !m.GrantHeld {
		return nil
	}
	ch := ConsentChange{ID: m.grantKey() + "/restore", Source: SourceSend, Action: ActionRestore}
	_, err := p.updateConsent(ctx, m.AppID, m.ToUser, m.TemplateID, ch, nil)
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
		if h.Status == StatusQueued && h.Detail == "redriven from the dead letters" {
			n++
		}
	}
	return n
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
