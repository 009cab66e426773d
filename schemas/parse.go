package schemas

import (
	"fmt"
	"strconv"
)

// XML elements that wrap the List items of the subscription events. JSON
// pushes put List at the top level instead, and one SDK has seen the sent
// event's wrapper in JSON too; both shapes are read.
const (
	wrapperPopup  = "SubscribeMsgPopupEvent"
	wrapperChange = "SubscribeMsgChangeEvent"
	wrapperSent   = "SubscribeMsgSentEvent"
)

// ParseEvent parses a decrypted or plaintext push, XML or JSON, addressed to
// the mini program appID, into the normalised Event, with Raw holding msg
// exactly. It accepts every shape WeChat is known to send:
//
//   - List as one object (one item) or as an array (several items);
//   - CreateTime, PopupScene, ErrorCode and MsgID as JSON strings or numbers,
//     with MsgID kept as its exact decimal text (it exceeds 2^53);
//   - the items at the top level, or inside a SubscribeMsgPopupEvent,
//     SubscribeMsgChangeEvent or SubscribeMsgSentEvent wrapper, in XML (one
//     <List> per item) or JSON;
//   - unknown events and plain messages (text, image, ...), kept with no
//     Items: Raw holds everything they carry.
//
// Items are read for the three subscription events only. The result is
// checked with Validate. Every failure wraps ErrMalformed. ParseEvent is
// safe for concurrent use.
func ParseEvent(appID string, msg []byte) (*Event, error) {
	e, _, err := parseEvent(appID, msg)
	return e, err
}

// ParseEventWithID is ParseEvent that also returns the event's ID, hashed from
// the document just parsed rather than by parsing Raw again: the gateway's path.
func ParseEventWithID(appID string, msg []byte) (*Event, string, error) {
	e, root, err := parseEvent(appID, msg)
	if err != nil {
		return nil, "", err
	}
	// The parsed document is canonical but for the transport field Encrypt.
	root.remove("Encrypt")
	return e, documentID(appID, root), nil
}

func parseEvent(appID string, msg []byte) (*Event, *docNode, error) {
	f, err := DetectFormat(msg)
	if err != nil {
		return nil, nil, err
	}
	root, err := parseDocument(f, msg)
	if err != nil {
		return nil, nil, err
	}
	e, err := eventFromDocument(appID, root, liftItems(root))
	if err != nil {
		return nil, nil, err
	}
	e.Raw = string(msg)
	if err := Validate(e); err != nil {
		return nil, nil, err
	}
	return e, root, nil
}

// liftItems gathers the items of a message, from a top-level List and from
// the subscription wrappers, and rewrites the document so that they all sit
// in one top-level List: after it, the XML and the JSON form of one push are
// the same document, which the event id relies on.
func liftItems(root *docNode) []*docNode {
	items := root.get("List").members()
	for _, name := range [...]string{wrapperPopup, wrapperChange, wrapperSent} {
		w := root.get(name)
		if w == nil {
			continue
		}
		empty := true
		for _, m := range w.members() {
			if m.kind != docObject {
				empty = false
				continue
			}
			items = append(items, m.get("List").members()...)
			m.remove("List")
			if len(m.keys) != 0 {
				empty = false
			}
		}
		// A wrapper left with nothing but its items disappears; anything else
		// it carried stays in the document and so in the event id.
		if empty {
			root.remove(name)
		}
	}
	root.remove("List")
	if len(items) > 0 {
		root.set("List", &docNode{kind: docList, elems: items})
	}
	return items
}

// eventFromDocument reads the Event fields of a message; Raw is left to the caller.
func eventFromDocument(appID string, root *docNode, items []*docNode) (*Event, error) {
	e := &Event{AppID: appID}
	for _, f := range [...]struct {
		name string
		dst  *string
	}{
		{"ToUserName", &e.ToUser},
		{"FromUserName", &e.OpenID},
		{"MsgType", &e.MsgType},
		{"Event", &e.Event},
	} {
		v, err := root.scalar(f.name)
		if err != nil {
			return nil, err
		}
		*f.dst = v
	}
	ct, err := root.scalar("CreateTime")
	if err != nil {
		return nil, err
	}
	if e.CreateTime, err = parseIntField("CreateTime", ct, 64); err != nil {
		return nil, err
	}
	switch e.Event {
	case EventSubscribePopup, EventSubscribeChange, EventSubscribeSent:
	default:
		return e, nil
	}
	if len(items) > 0 {
		e.Items = make([]Item, 0, len(items))
	}
	for i, n := range items {
		if n.kind != docObject {
			return nil, malformedf("List[%d] is not an object", i)
		}
		it, err := itemFromDocument(n)
		if err != nil {
			return nil, fmt.Errorf("%w (in List[%d])", err, i)
		}
		e.Items = append(e.Items, it)
	}
	return e, nil
}

// itemFromDocument reads one List item.
func itemFromDocument(n *docNode) (Item, error) {
	var (
		it  Item
		err error
	)
	if it.TemplateID, err = n.scalarAlias("TemplateId", "TemplateID"); err != nil {
		return Item{}, err
	}
	if it.Status, err = n.scalar("SubscribeStatusString"); err != nil {
		return Item{}, err
	}
	if it.MsgID, err = n.scalarAlias("MsgID", "MsgId"); err != nil {
		return Item{}, err
	}
	if it.ErrorStatus, err = n.scalar("ErrorStatus"); err != nil {
		return Item{}, err
	}
	scene, err := n.scalar("PopupScene")
	if err != nil {
		return Item{}, err
	}
	v, err := parseIntField("PopupScene", scene, strconv.IntSize)
	if err != nil {
		return Item{}, err
	}
	it.PopupScene = int(v)
	code, err := n.scalar("ErrorCode")
	if err != nil {
		return Item{}, err
	}
	if v, err = parseIntField("ErrorCode", code, strconv.IntSize); err != nil {
		return Item{}, err
	}
	it.ErrorCode = int(v)
	return it, nil
}

// parseIntField parses a decimal integer field that WeChat sends as a string
// or a number; an absent or empty field is 0.
func parseIntField(name, s string, bits int) (int64, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 10, bits)
	if err != nil {
		return 0, malformedf("%s is not an integer", name)
	}
	return v, nil
}
