package schemas

import (
	"cmp"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Event and Item are stored in BSON under the names they have in JSON. Before
// they had bson tags, the driver stored them under its default names, the Go
// field names in lower case (touser, createtime, templateid, ...); decoding
// reads those too, so that events already in a store keep their fields. The
// bson package only encodes and decodes bytes: schemas still does no I/O.

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
