package admin

import (
	"slices"
	"strings"
	"time"

	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
)

// The JSON shapes of the API. They are declared here rather than taken from the
// processor's documents, so that a change to storage cannot change the contract,
// and exported so that clients (the wxgate CLI) decode the same types.

// List is one page of a listing: newest first; NextCursor fetches the next
// page and is empty on the last one.
type List[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func newList[S any, T any](items []S, next string, view func(*S) T) List[T] {
	out := List[T]{Items: make([]T, len(items)), NextCursor: next}
	for i := range items {
		out.Items[i] = view(&items[i])
	}
	return out
}

// Accepted is the answer to a send request.
type Accepted struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// MessageView is one message: GET /v1/apps/{appid}/messages/{id} and the items of a message listing.
type MessageView struct {
	ID          string `json:"id"`
	ToUser      string `json:"touser"`
	TemplateID  string `json:"template_id"`
	Status      string `json:"status"`
	Reason      string `json:"reason"`
	WeChatMsgID string `json:"wechat_msgid"`
	// ErrCode is WeChat's last errcode; absent until WeChat has answered a send of it.
	ErrCode  *int   `json:"errcode,omitempty"`
	ErrMsg   string `json:"errmsg"`
	Attempts int    `json:"attempts"`
	// NextAttemptAt is when a send that failed for a passing reason is tried again.
	NextAttemptAt time.Time    `json:"next_attempt_at,omitzero"`
	History       []StatusView `json:"history"`
	CreatedAt     time.Time    `json:"created_at"`
	UpdatedAt     time.Time    `json:"updated_at"`
}

// StatusView is one entry of a message's history.
type StatusView struct {
	Status string `json:"status"`
	// At is when wxgate learned of the change.
	At     time.Time `json:"at"`
	Detail string    `json:"detail"`
	// WeChatTime is WeChat's own time for a change it reported (a sent event's CreateTime).
	WeChatTime time.Time `json:"wechat_time,omitzero"`
}

func viewMessage(m *processor.Message) MessageView {
	v := MessageView{
		ID: m.ID, ToUser: m.ToUser, TemplateID: m.TemplateID, Status: m.Status, Reason: m.Reason,
		WeChatMsgID: m.WeChatMsgID, ErrMsg: m.ErrMsg, Attempts: m.Attempts, NextAttemptAt: m.NextAttemptAt,
		History: make([]StatusView, len(m.History)), CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt,
	}
	if m.Attempts > 0 || m.ErrCode != 0 {
		code := m.ErrCode
		v.ErrCode = &code
	}
	for i, h := range m.History {
		v.History[i] = StatusView{Status: h.Status, At: h.At, Detail: h.Detail, WeChatTime: h.WeChatTime}
	}
	return v
}

// Ledger is a user's consents for one app.
type Ledger struct {
	AppID  string `json:"appid"`
	OpenID string `json:"openid"`
	// RequestID is the id a consent report was recorded under; reporting again
	// with it changes nothing. Absent from a GET.
	RequestID string        `json:"request_id,omitempty"`
	Consents  []ConsentView `json:"consents"`
}

// ConsentView is the user's consent for one template.
type ConsentView struct {
	TemplateID string `json:"template_id"`
	Kind       string `json:"kind"`
	// KindPending is true while the template's kind could not be learned from
	// gettemplate: the entry is counted as one-time meanwhile.
	KindPending bool                `json:"kind_pending,omitempty"`
	Status      string              `json:"status"`
	Grants      int                 `json:"grants"`
	UpdatedAt   time.Time           `json:"updated_at"`
	History     []ConsentChangeView `json:"history"`
}

// ConsentChangeView is one entry of a consent's history.
type ConsentChangeView struct {
	ID     string    `json:"id"`
	Source string    `json:"source"`
	Action string    `json:"action"`
	Status string    `json:"status"`
	Grants int       `json:"grants"`
	At     time.Time `json:"at"`
	// WeChatTime is the time of the answer recorded (the push's CreateTime).
	WeChatTime time.Time `json:"wechat_time,omitzero"`
}

// newLedger renders consents sorted by template id, so that answers are stable.
func newLedger(appID, openID string, consents []processor.Consent) Ledger {
	l := Ledger{AppID: appID, OpenID: openID, Consents: make([]ConsentView, 0, len(consents))}
	for _, c := range consents {
		cv := ConsentView{
			TemplateID: c.TemplateID, Kind: c.Kind, Status: c.Status, Grants: c.Grants, UpdatedAt: c.UpdatedAt,
			History: make([]ConsentChangeView, len(c.History)),
		}
		if cv.Kind == "" {
			cv.Kind, cv.KindPending = processor.KindOneTime, true
		}
		for i, h := range c.History {
			cv.History[i] = ConsentChangeView{ID: h.ID, Source: h.Source, Action: h.Action, Status: h.Status, Grants: h.Grants, At: h.At, WeChatTime: h.WeChatTime}
		}
		l.Consents = append(l.Consents, cv)
	}
	slices.SortFunc(l.Consents, func(a, b ConsentView) int { return strings.Compare(a.TemplateID, b.TemplateID) })
	return l
}

// EventView is one received callback event.
type EventView struct {
	ID         string        `json:"id"`
	OpenID     string        `json:"openid"`
	Event      string        `json:"event"`
	Subject    string        `json:"subject"`
	ReceivedAt time.Time     `json:"received_at"`
	Data       schemas.Event `json:"data"`
}

func viewEvent(e *processor.EventRecord) EventView {
	return EventView{ID: e.ID, OpenID: e.OpenID, Event: e.Event, Subject: e.Subject, ReceivedAt: e.ReceivedAt, Data: e.Data}
}

// DeadLetterView is one dead letter.
type DeadLetterView struct {
	ID       string `json:"id"`
	AppID    string `json:"appid"`
	Consumer string `json:"consumer"`
	Subject  string `json:"subject"`
	MsgID    string `json:"msg_id"`
	Data     string `json:"data"`
	Reason   string `json:"reason"`
	// ErrCode is WeChat's errcode when WeChat's answer was the cause, else 0.
	ErrCode    int        `json:"errcode"`
	Deliveries int        `json:"deliveries"`
	At         time.Time  `json:"at"`
	Redrives   int        `json:"redrives"`
	RedrivenAt *time.Time `json:"redriven_at,omitempty"`
}

func viewDeadLetter(d *processor.DeadLetter) DeadLetterView {
	return DeadLetterView{
		ID: d.ID, AppID: d.AppID, Consumer: d.Consumer, Subject: d.Subject, MsgID: d.MsgID, Data: d.Data, ErrCode: d.ErrCode,
		Reason: d.Reason, Deliveries: d.Deliveries, At: d.At, Redrives: d.Redrives, RedrivenAt: d.RedrivenAt,
	}
}
