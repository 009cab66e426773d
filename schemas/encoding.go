package schemas

import (
	"cmp"
	"encoding/json"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// An Event is written the same way in JSON (the stream's CloudEvent data)
// and in BSON (the store), with one rule that its struct tags cannot state:
// an item field that the event defines is written even when it is 0, because
// 0 is a value there. popup_scene 0 is a popup shown inside the mini program
// and error_code 0 a delivered message, and a consumer that looks for
// error_code == 0 must find the deliveries. So:
//
//   - items of subscribe_msg_popup_event always have popup_scene;
//   - items of subscribe_msg_sent_event always have error_code;
//   - other items, and an Item marshalled on its own, leave both out when 0.
//
// The rule depends on the event, which only the Event knows, so Event has
// MarshalJSON and MarshalBSON. Reading needs no rule: an absent key is 0 too,
// so data written before the rule reads the same.
//
// Event and Item are stored in BSON under the names they have in JSON. Before
// they had bson tags, the driver stored them under its default names, the Go
// field names in lower case (touser, createtime, templateid, ...); decoding
// reads those too, so that events already in a store keep their fields. The
// bson package only encodes and decodes bytes: schemas still does no I/O.

// eventWire is an Event as it is written. Its fields and tags are Event's,
// but for Items (a test holds them together).
type eventWire struct {
	AppID      string     `json:"appid" bson:"appid,omitempty"`
	OpenID     string     `json:"openid" bson:"openid,omitempty"`
	ToUser     string     `json:"to_user" bson:"to_user,omitempty"`
	CreateTime int64      `json:"create_time" bson:"create_time,omitempty"`
	MsgType    string     `json:"msg_type" bson:"msg_type,omitempty"`
	Event      string     `json:"event,omitempty" bson:"event,omitempty"`
	Items      []itemWire `json:"items,omitempty" bson:"items,omitempty"`
	Raw        string     `json:"raw" bson:"raw,omitempty"`
}

// itemWire is an Item as it is written: PopupScene and ErrorCode are
// pointers, nil where they are left out.
type itemWire struct {
	TemplateID  string `json:"template_id" bson:"template_id,omitempty"`
	Status      string `json:"status,omitempty" bson:"status,omitempty"`
	PopupScene  *int   `json:"popup_scene,omitempty" bson:"popup_scene,omitempty"`
	MsgID       string `json:"msg_id,omitempty" bson:"msg_id,omitempty"`
	ErrorCode   *int   `json:"error_code,omitempty" bson:"error_code,omitempty"`
	ErrorStatus string `json:"error_status,omitempty" bson:"error_status,omitempty"`
}

// wire returns e as it is written. It points into e.Items.
func (e Event) wire() eventWire {
	w := eventWire{
		AppID: e.AppID, OpenID: e.OpenID, ToUser: e.ToUser, CreateTime: e.CreateTime,
		MsgType: e.MsgType, Event: e.Event, Raw: e.Raw,
	}
	if len(e.Items) == 0 {
		return w
	}
	scene, code := e.Event == EventSubscribePopup, e.Event == EventSubscribeSent
	w.Items = make([]itemWire, len(e.Items))
	for i := range e.Items {
		it := &e.Items[i]
		w.Items[i] = itemWire{TemplateID: it.TemplateID, Status: it.Status, MsgID: it.MsgID, ErrorStatus: it.ErrorStatus}
		if scene || it.PopupScene != 0 {
			w.Items[i].PopupScene = &it.PopupScene
		}
		if code || it.ErrorCode != 0 {
			w.Items[i].ErrorCode = &it.ErrorCode
		}
	}
	return w
}

// MarshalJSON encodes e with its json tags, writing popup_scene on popup
// items and error_code on sent items even when they are 0. It is safe for
// concurrent use as long as e is not being modified.
func (e Event) MarshalJSON() ([]byte, error) {
	return json.Marshal(e.wire())
}

// MarshalBSON encodes e as a BSON document with its bson tags, writing
// popup_scene on popup items and error_code on sent items even when they are
// 0. It is safe for concurrent use as long as e is not being modified.
func (e Event) MarshalBSON() ([]byte, error) {
	return bson.Marshal(e.wire())
}

// eventFields and itemFields are Event and Item without their methods, so
// that the codecs use the struct tags rather than calling back into them.
type (
	eventFields Event
	itemFields  Item
)

// legacyEventFields are Event's fields whose default BSON name differs from
// their tag.
type legacyEventFields struct {
	ToUser     string `bson:"touser"`
	CreateTime int64  `bson:"createtime"`
	MsgType    string `bson:"msgtype"`
}

// legacyItemFields are Item's fields whose default BSON name differs from
// their tag.
type legacyItemFields struct {
	TemplateID  string `bson:"templateid"`
	PopupScene  int    `bson:"popupscene"`
	MsgID       string `bson:"msgid"`
	ErrorCode   int    `bson:"errorcode"`
	ErrorStatus string `bson:"errorstatus"`
}

// UnmarshalBSON decodes an Event from a BSON document, under its field names
// or the driver's default names of earlier versions. Absent fields are zero.
func (e *Event) UnmarshalBSON(b []byte) error {
	var d struct {
		Fields eventFields       `bson:",inline"`
		Legacy legacyEventFields `bson:",inline"`
	}
	if err := bson.Unmarshal(b, &d); err != nil {
		return fmt.Errorf("schemas: decoding event: %w", err)
	}
	*e = Event(d.Fields)
	e.ToUser = cmp.Or(e.ToUser, d.Legacy.ToUser)
	e.CreateTime = cmp.Or(e.CreateTime, d.Legacy.CreateTime)
	e.MsgType = cmp.Or(e.MsgType, d.Legacy.MsgType)
	return nil
}

// UnmarshalBSON decodes an Item from a BSON document, under its field names
// or the driver's default names of earlier versions. Absent fields are zero.
func (it *Item) UnmarshalBSON(b []byte) error {
	var d struct {
		Fields itemFields       `bson:",inline"`
		Legacy legacyItemFields `bson:",inline"`
	}
	if err := bson.Unmarshal(b, &d); err != nil {
		return fmt.Errorf("schemas: decoding item: %w", err)
	}
	*it = Item(d.Fields)
	it.TemplateID = cmp.Or(it.TemplateID, d.Legacy.TemplateID)
	it.PopupScene = cmp.Or(it.PopupScene, d.Legacy.PopupScene)
	it.MsgID = cmp.Or(it.MsgID, d.Legacy.MsgID)
	it.ErrorCode = cmp.Or(it.ErrorCode, d.Legacy.ErrorCode)
	it.ErrorStatus = cmp.Or(it.ErrorStatus, d.Legacy.ErrorStatus)
	return nil
}
