package processor

import (
	"errors"
	"fmt"
	"time"

	"github.com/wxgate/wxgate/schemas"
)

// Message statuses. A message moves queued -> sending -> sent -> delivered or
// failed; rejected, invalid and dead end it without a delivery.
const (
	StatusQueued    = "queued"
	StatusSending   = "sending"
	StatusSent      = "sent"
	StatusDelivered = "delivered"
	StatusFailed    = "failed"
	StatusRejected  = "rejected"
	StatusInvalid   = "invalid"
	StatusDead      = "dead"
)

// ErrTransition marks a status change the state machine does not allow.
var ErrTransition = errors.New("status transition not allowed")

// transitions lists, for each status, the statuses it may move to.
var transitions = map[string][]string{
	StatusQueued:  {StatusSending, StatusRejected, StatusInvalid, StatusDead},
	StatusSending: {StatusSending, StatusQueued, StatusSent, StatusRejected, StatusInvalid, StatusDead},
	StatusSent:    {StatusDelivered, StatusFailed},
	StatusDead:    {StatusQueued},
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
	// WeChatKey is appid/msgid, the sparse unique key that finds a message from its sent event.
	WeChatKey string `bson:"wechat_key,omitempty" json:"-"`
	ErrCode   int    `bson:"errcode" json:"errcode"`
	ErrMsg    string `bson:"errmsg,omitempty" json:"errmsg,omitempty"`
	Attempts  int    `bson:"attempts" json:"attempts"`
	// GrantHeld records that a one-time grant was consumed for this message, so that a
	// failure that is not the user's gives it back exactly once.
	GrantHeld bool           `bson:"grant_held" json:"-"`
	History   []StatusChange `bson:"history" json:"history"`
	CreatedAt time.Time      `bson:"created_at" json:"created_at"`
	UpdatedAt time.Time      `bson:"updated_at" json:"updated_at"`
	Version   int64          `bson:"version" json:"-"`
}

// StatusChange is one entry of a message's history.
type StatusChange struct {
	Status string    `bson:"status" json:"status"`
	At     time.Time `bson:"at" json:"at"`
	Detail string    `bson:"detail,omitempty" json:"detail,omitempty"`
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
	m.Status = to
	m.UpdatedAt = at
	m.History = appendBounded(m.History, StatusChange{Status: to, At: at, Detail: detail}, maxHistory)
	return nil
}

// Outcome is the final result of one send as pushed by WeChat in a
// subscribe_msg_sent_event. It is stored on its own, keyed by appid/msgid, so that
// an outcome that arrives before the send's reply is applied when the message
// record learns its msgid.
type Outcome struct {
	ID          string    `bson:"_id"`
	AppID       string    `bson:"appid"`
	MsgID       string    `bson:"msgid"`
	OpenID      string    `bson:"openid"`
	TemplateID  string    `bson:"template_id"`
	ErrorCode   int       `bson:"error_code"`
	ErrorStatus string    `bson:"error_status"`
	EventID     string    `bson:"event_id"`
	At          time.Time `bson:"at"`
}

// WeChatKey is the natural key of a message by its WeChat msgid.
func WeChatKey(appID, msgID string) string { return appID + "/" + msgID }

// ApplyOutcome moves a sent message to delivered or failed. It returns false when
// the message is not waiting for an outcome (already applied, or not sent yet).
func (m *Message) ApplyOutcome(o Outcome) bool {
	if m.Status != StatusSent {
		return false
	}
	to, detail := StatusDelivered, "subscribe_msg_sent_event"
	if o.ErrorCode != 0 {
		to = StatusFailed
		m.ErrCode, m.ErrMsg = o.ErrorCode, o.ErrorStatus
		m.Reason = fmt.Sprintf("WeChat reported ErrorCode %d (%s)", o.ErrorCode, o.ErrorStatus)
	}
	return m.Transition(to, detail, o.At) == nil
}

// Change returns the delivery event for m's current status.
func (m *Message) Change() schemas.DeliveryChange {
	return schemas.DeliveryChange{
		ID: m.ID, AppID: m.AppID, ToUser: m.ToUser, TemplateID: m.TemplateID, Status: m.Status,
		Reason: m.Reason, WeChatMsgID: m.WeChatMsgID, ErrCode: m.ErrCode, ErrMsg: m.ErrMsg,
		Attempts: m.Attempts, At: m.UpdatedAt,
	}
}
