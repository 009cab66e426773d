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
	Grants int `json:"grants"`
	// At is when wxgate applied the change.
	At time.Time `json:"at"`
	// WeChatTime is the time of the answer: the push's CreateTime, or when a
	// report was received; absent for the send pipeline's changes.
	WeChatTime time.Time `json:"wechat_time,omitzero"`
}

// DeliveryChange is the data of a wechat.{appid}.delivery.{status} CloudEvent: a
// message's state after it changed status.
type DeliveryChange struct {
	ID         string `json:"id"`
	AppID      string `json:"appid"`
	ToUser     string `json:"touser"`
	TemplateID string `json:"template_id"`
	// Status is queued, sending, sent, delivered, failed, rejected, invalid, dead
	// or unknown (WeChat may or may not have accepted the send).
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
// send, with its content as it was stored when the send was requested, so the
// processor does not read it back. The stored message stays the source of
// truth for its state.
type SendRequested struct {
	ID               string            `json:"id"`
	AppID            string            `json:"appid"`
	ToUser           string            `json:"touser"`
	TemplateID       string            `json:"template_id"`
	Page             string            `json:"page,omitempty"`
	Data             map[string]string `json:"data,omitempty"`
	MiniprogramState string            `json:"miniprogram_state,omitempty"`
	Lang             string            `json:"lang,omitempty"`
	CreatedAt        time.Time         `json:"created_at"`
}

// ConsentReport is the data of a wechat.{appid}.report CloudEvent: the results
// of one wx.requestSubscribeMessage call as the mini program's backend
// reported them, on their way to the user's lane.
type ConsentReport struct {
	AppID     string `json:"appid"`
	OpenID    string `json:"openid"`
	RequestID string `json:"request_id"`
	// Results maps each template id to accept, reject, ban or filter.
	Results    map[string]string `json:"results"`
	ReceivedAt time.Time         `json:"received_at"`
}
