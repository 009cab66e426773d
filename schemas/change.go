package schemas

import "time"

// ConsentChange is the data of a wechat.{appid}.consent.{event} CloudEvent: one
// change of a user's consent for one template, after it was applied.
type ConsentChange struct {
	// ID names the change's cause: an event id and template, a report, a message.
	ID         string `json:"id"`
	AppID      string `json:"appid"`
	OpenID     string `json:"openid"`
	TemplateID string `json:"template_id"`
	// Source is "push" (WeChat's popup or change event), "report" (the backend's
	// report of wx.requestSubscribeMessage) or "send" (the send pipeline).
	Source string `json:"source"`
	// Action is accept, reject, ban, filter, consume, restore or zero.
	Action string `json:"action"`
	// Kind is one_time or long_term.
	Kind string `json:"kind"`
	// Status is accepted, rejected or banned, after the change.
	Status string `json:"status"`
	// Grants is the number of one-time sends left after the change.
	Grants int       `json:"grants"`
	At     time.Time `json:"at"`
}

// DeliveryChange is the data of a wechat.{appid}.delivery.{status} CloudEvent: a
// message's state after it changed status.
type DeliveryChange struct {
	ID         string `json:"id"`
	AppID      string `json:"appid"`
	ToUser     string `json:"touser"`
	TemplateID string `json:"template_id"`
	// Status is queued, sending, sent, delivered, failed, rejected, invalid or dead.
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	// WeChatMsgID is WeChat's msgid, a string because it exceeds 2^53.
	WeChatMsgID string    `json:"wechat_msgid,omitempty"`
	ErrCode     int       `json:"errcode"`
	ErrMsg      string    `json:"errmsg,omitempty"`
	Attempts    int       `json:"attempts"`
	At          time.Time `json:"at"`
}

// SendRequested is the data of a wechat.{appid}.send CloudEvent: a message to
// send, by id; the stored message is the source of truth for its content.
type SendRequested struct {
	ID         string `json:"id"`
	AppID      string `json:"appid"`
	ToUser     string `json:"touser"`
	TemplateID string `json:"template_id"`
}
