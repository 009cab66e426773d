package schemas

// Event is one normalised WeChat push: the same shape whatever mode (plaintext,
// compatible, secure) and format (XML, JSON) it arrived in. It is the `data` of
// a `wechat.{appid}.in.{event}` CloudEvent.
//
// In BSON (the store) its fields have the same snake_case names as in JSON,
// and empty fields are left out, but for one rule of MarshalJSON and
// MarshalBSON: the items of a popup event always have popup_scene, and those
// of a sent event always have error_code, even when 0.
type Event struct {
	// AppID is the mini program the push was addressed to (from the callback URL).
	AppID string `json:"appid" bson:"appid,omitempty" validate:"required"`
	// OpenID is the user (FromUserName).
	OpenID string `json:"openid" bson:"openid,omitempty" validate:"required"`
	// ToUser is the mini program's original id (ToUserName, gh_...).
	ToUser string `json:"to_user" bson:"to_user,omitempty" validate:"required"`
	// CreateTime is the push's CreateTime in unix seconds.
	CreateTime int64 `json:"create_time" bson:"create_time,omitempty" validate:"gt=0"`
	// MsgType is "event" for events, or the plain message type ("text", "image", ...).
	MsgType string `json:"msg_type" bson:"msg_type,omitempty" validate:"required"`
	// Event is the Event field as sent (e.g. "subscribe_msg_popup_event"); empty for plain messages.
	Event string `json:"event,omitempty" bson:"event,omitempty" validate:"required_if=MsgType event"`
	// Items are the subscription-message items of popup, change and sent events.
	Items []Item `json:"items,omitempty" bson:"items,omitempty" validate:"dive"`
	// Raw is the decrypted (or plaintext) message exactly as received.
	Raw string `json:"raw" bson:"raw,omitempty"`
}

// Item is one entry of a subscription event's List.
type Item struct {
	TemplateID string `json:"template_id" bson:"template_id,omitempty" validate:"required"`
	// Status is SubscribeStatusString for popup and change events ("accept", "reject").
	Status string `json:"status,omitempty" bson:"status,omitempty"`
	// PopupScene is where the popup was shown (0 = inside the mini program); popup events only.
	// An Event writes it on every popup item, even when 0.
	PopupScene int `json:"popup_scene,omitempty" bson:"popup_scene,omitempty"`
	// MsgID is the message id of a sent event, kept as a string because it exceeds 2^53.
	MsgID string `json:"msg_id,omitempty" bson:"msg_id,omitempty"`
	// ErrorCode is a sent event's ErrorCode (0 = delivered). An Event writes it on every
	// sent item, even when 0.
	ErrorCode int `json:"error_code,omitempty" bson:"error_code,omitempty"`
	// ErrorStatus is a sent event's ErrorStatus ("success", ...).
	ErrorStatus string `json:"error_status,omitempty" bson:"error_status,omitempty"`
}

// Event names of the subscription-message pushes.
const (
	EventSubscribePopup  = "subscribe_msg_popup_event"
	EventSubscribeChange = "subscribe_msg_change_event"
	EventSubscribeSent   = "subscribe_msg_sent_event"
)

// Subscription statuses carried by popup and change events.
const (
	StatusAccept = "accept"
	StatusReject = "reject"
)
