package processor

import (
	"errors"
	"fmt"
	"time"

	"github.com/wxgate/wxgate/schemas"
)

// Message statuses. A message moves queued -> sending -> sent -> delivered or
// failed; rejected, invalid and dead end it without a delivery; unknown means
// WeChat may or may not have accepted it, and only a sent event or an operator
// moves it on.
const (
	StatusQueued    = "queued"
	StatusSending   = "sending"
	StatusSent      = "sent"
	StatusDelivered = "delivered"
	StatusFailed    = "failed"
	StatusRejected  = "rejected"
	StatusInvalid   = "invalid"
	StatusDead      = "dead"
	StatusUnknown   = "unknown"
)

// ErrTransition marks a status change the state machine does not allow.
var ErrTransition = errors.New("status transition not allowed")

// transitions lists, for each status, the statuses it may move to.
var transitions = map[string][]string{
	StatusQueued:  {StatusSending, StatusRejected, StatusInvalid, StatusDead, StatusUnknown},
	StatusSending: {StatusSending, StatusQueued, StatusSent, StatusRejected, StatusInvalid, StatusDead, StatusUnknown},
	StatusSent:    {StatusDelivered, StatusFailed},
	StatusDead:    {StatusQueued},
	StatusUnknown: {StatusDelivered, StatusFailed, StatusQueued},
}

// Message is one subscription-message send and its delivery state, stored as one
// document keyed by its id.
type Message struct {
	ID               string            `bson:"_id" json:"id"`
	AppID            string            `bson:"appid" json:"appid"`
	ToUser           string            `bson:"touser" json:"touser"`
	TemplateID       string            `bson:"template_id" json:"template_id"`
	Page             string            `bson:"page,omitempty" json:"page,omitempty"`
	Data             map[string]string `bson:"data" json:"data,omitempty"`
	MiniprogramState string            `bson:"miniprogram_state,omitempty" json:"miniprogram_state,omitempty"`
	Lang             string            `bson:"lang,omitempty" json:"lang,omitempty"`
	Status           string            `bson:"status" json:"status"`
	Reason           string            `bson:"reason,omitempty" json:"reason,omitempty"`
	// WeChatMsgID is WeChat's msgid, a string because it exceeds 2^53.
	WeChatMsgID string `bson:"wechat_msgid,omitempty" json:"wechat_msgid,omitempty"`
	ErrCode     int    `bson:"errcode" json:"errcode"`
	ErrMsg      string `bson:"errmsg,omitempty" json:"errmsg,omitempty"`
	Attempts    int    `bson:"attempts" json:"attempts"`
	// NextAttemptAt is when a send that failed for a passing reason is tried
	// again (the stream redelivers it then); zero otherwise.
	NextAttemptAt time.Time `bson:"next_attempt_at,omitempty" json:"next_attempt_at,omitzero"`
	// InFlight names a call to WeChat that was started and whose answer was
	// never recorded (written before the call, cleared with its result).
	InFlight string `bson:"in_flight,omitempty" json:"-"`
	// GrantHeld records that a one-time grant was consumed for this message, so that a
	// failure that is not the user's gives it back exactly once.
	GrantHeld bool `bson:"grant_held" json:"-"`
	// Unsettled records that the message was counted in
	// wxgate_send_unsettled_total, which counts each message once.
	Unsettled bool           `bson:"unsettled,omitempty" json:"-"`
	History   []StatusChange `bson:"history" json:"history"`
	CreatedAt time.Time      `bson:"created_at" json:"created_at"`
	UpdatedAt time.Time      `bson:"updated_at" json:"updated_at"`
	Version   int64          `bson:"version" json:"-"`
}

// StatusChange is one entry of a message's history.
type StatusChange struct {
	Status string `bson:"status" json:"status"`
	// At is when wxgate learned of the change; entries never go back in time.
	At     time.Time `bson:"at" json:"at"`
	Detail string    `bson:"detail,omitempty" json:"detail,omitempty"`
	// WeChatTime is WeChat's own time for a change it reported (a sent event's CreateTime).
	WeChatTime time.Time `bson:"wechat_time,omitempty" json:"wechat_time,omitzero"`
}

// Terminal reports whether no further status change is expected (dead can be redriven).
func (m *Message) Terminal() bool {
	switch m.Status {
	case StatusDelivered, StatusFailed, StatusRejected, StatusInvalid, StatusDead:
		return true
	}
	return false
}

// Transition moves m to status to, recording detail in the history.
func (m *Message) Transition(to, detail string, at time.Time) error {
	allowed := false
	for _, s := range transitions[m.Status] {
		allowed = allowed || s == to
	}
	if !allowed {
		return fmt.Errorf("%w: %s -> %s", ErrTransition, m.Status, to)
	}
	return m.record(StatusChange{Status: to, At: at, Detail: detail})
}

// record moves m to ch.Status, stamping ch no earlier than the entry before it.
func (m *Message) record(ch StatusChange) error {
	if ch.At.Before(m.UpdatedAt) {
		ch.At = m.UpdatedAt
	}
	m.Status = ch.Status
	m.UpdatedAt = ch.At
	m.History = appendBounded(m.History, ch, maxHistory)
	return nil
}

// Outcome is what wxgate knows of one WeChat msgid, keyed by appid/msgid: the
// message WeChat accepted under it (MessageID, written when the send's reply is
// recorded) and the final result WeChat pushed in a subscribe_msg_sent_event
// (EventID and the rest). Either may come first; whichever side writes second
// finds the other's part and completes the message, so the message is found
// from its msgid by _id and needs no second unique index.
type Outcome struct {
	ID        string `bson:"_id"`
	AppID     string `bson:"appid"`
	MsgID     string `bson:"msgid"`
	MessageID string `bson:"message_id,omitempty"`
	// The sent event's part, empty until it arrives.
	OpenID      string    `bson:"openid,omitempty"`
	TemplateID  string    `bson:"template_id,omitempty"`
	ErrorCode   int       `bson:"error_code"`
	ErrorStatus string    `bson:"error_status,omitempty"`
	EventID     string    `bson:"event_id,omitempty"`
	WeChatTime  time.Time `bson:"wechat_time,omitempty"`
	Version     int64     `bson:"version"`
}

// Reported reports whether the sent event's part is known.
func (o *Outcome) Reported() bool { return o.EventID != "" }

// WeChatKey is the natural key of a message by its WeChat msgid.
func WeChatKey(appID, msgID string) string { return appID + "/" + msgID }

// ApplyOutcome moves a sent message (or one whose send is unknown) to
// delivered or failed at time at, keeping WeChat's time beside it. It returns
// false when the message is not waiting for an outcome (already applied, or not
// sent yet).
func (m *Message) ApplyOutcome(o *Outcome, at time.Time) bool {
	if m.Status != StatusSent && m.Status != StatusUnknown {
		return false
	}
	to, detail := StatusDelivered, "subscribe_msg_sent_event"
	if o.ErrorCode != 0 {
		to = StatusFailed
		m.ErrCode, m.ErrMsg = o.ErrorCode, o.ErrorStatus
		m.Reason = fmt.Sprintf("WeChat reported ErrorCode %d (%s)", o.ErrorCode, o.ErrorStatus)
	}
	if m.WeChatMsgID == "" {
		m.WeChatMsgID = o.MsgID
	}
	_ = m.record(StatusChange{Status: to, At: at, Detail: detail, WeChatTime: o.WeChatTime})
	return true
}

// Change returns the delivery event for m's current status.
func (m *Message) Change() schemas.DeliveryChange {
	return schemas.DeliveryChange{
		ID: m.ID, AppID: m.AppID, ToUser: m.ToUser, TemplateID: m.TemplateID, Status: m.Status,
		Reason: m.Reason, WeChatMsgID: m.WeChatMsgID, ErrCode: m.ErrCode, ErrMsg: m.ErrMsg,
		Attempts: m.Attempts, At: m.UpdatedAt,
	}
}
