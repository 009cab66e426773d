package schemas

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strconv"
)

// eventIDLabel versions the id scheme: changing the scheme changes the label,
// so ids of different schemes never collide.
const eventIDLabel = "wxgate/event-id/v1"

// eventIDHexLen is the id's length in hex digits.
const eventIDHexLen = 32

// ID returns the event's stable id, the CloudEvent id of the push.
//
// WeChat retries a push it got no answer to within 5 seconds, re-encrypting
// it each time, and an operator may switch the console between XML and JSON,
// so nothing about the bytes of a push is stable. Its content is. The id is
// therefore a hash of the parsed content:
//
//  1. Raw is parsed as ParseEvent parses it: leaf values have surrounding
//     white space removed, and a JSON number is its literal text, so 123 and
//     "123" are the same value.
//  2. The subscription items are moved into one top-level List, whether they
//     came as a top-level List or inside a SubscribeMsg*Event wrapper, and the
//     transport field Encrypt (present in compatible mode) is dropped.
//  3. Every leaf becomes a (path, value) pair. A path is the sequence of
//     object names and list positions leading to the leaf; a list of one
//     element is the element itself, because WeChat sends List as an object
//     for one item and as an array for several.
//  4. The pairs are sorted by path, so field order does not matter, and
//     hashed with SHA-256 after a version label and AppID, every string
//     length-prefixed so that no two different inputs share an encoding.
//  5. The id is the first 32 hex digits (128 bits) of the hash.
//
// So a retry, re-encrypted or not, in either format, with any white space
// between fields, gets the same id, and two pushes that differ in any field
// (a template id, a status, a MsgID, a message's text) get different ids,
// even from the same user in the same second. An Event whose Raw does not
// parse (one built by hand) is hashed the same way from its typed fields
// under their WeChat names, which gives a documented push's own id.
//
// ID is deterministic, caches nothing, and is safe for concurrent use as long
// as the Event is not being modified.
func (e *Event) ID() string {
	return documentID(e.AppID, e.canonicalDocument())
}

// documentID hashes a canonical document (items lifted, Encrypt dropped) as ID describes.
func documentID(appID string, root *docNode) string {
	var leaves []docLeafPair
	leaves = collectLeaves(root, nil, leaves)
	slices.SortFunc(leaves, func(a, b docLeafPair) int { return bytes.Compare(a.path, b.path) })

	var buf []byte
	buf = appendLenPrefixed(buf, []byte(eventIDLabel))
	buf = appendLenPrefixed(buf, []byte(appID))
	buf = binary.AppendUvarint(buf, uint64(len(leaves)))
	for _, l := range leaves {
		buf = appendLenPrefixed(buf, l.path)
		buf = appendLenPrefixed(buf, []byte(l.value))
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:])[:eventIDHexLen]
}

// canonicalDocument returns the document the id is computed from.
func (e *Event) canonicalDocument() *docNode {
	if f, err := DetectFormat([]byte(e.Raw)); err == nil {
		if root, err := parseDocument(f, []byte(e.Raw)); err == nil {
			liftItems(root)
			root.remove("Encrypt")
			return root
		}
	}
	return e.typedDocument()
}

// typedDocument rebuilds a message from the typed fields under their WeChat
// names, so that a hand-built Event of a documented push gets the id of the
// push itself.
func (e *Event) typedDocument() *docNode {
	leaf := func(s string) *docNode { return &docNode{kind: docLeaf, text: s} }
	root := newDocObject()
	root.set("ToUserName", leaf(e.ToUser))
	root.set("FromUserName", leaf(e.OpenID))
	root.set("CreateTime", leaf(strconv.FormatInt(e.CreateTime, 10)))
	root.set("MsgType", leaf(e.MsgType))
	if e.Event != "" {
		root.set("Event", leaf(e.Event))
	}
	if len(e.Items) == 0 {
		return root
	}
	list := &docNode{kind: docList}
	for _, it := range e.Items {
		n := newDocObject()
		n.set("TemplateId", leaf(it.TemplateID))
		switch e.Event {
		case EventSubscribePopup:
			n.set("SubscribeStatusString", leaf(it.Status))
			n.set("PopupScene", leaf(strconv.Itoa(it.PopupScene)))
		case EventSubscribeChange:
			n.set("SubscribeStatusString", leaf(it.Status))
		case EventSubscribeSent:
			n.set("MsgID", leaf(it.MsgID))
			n.set("ErrorCode", leaf(strconv.Itoa(it.ErrorCode)))
			n.set("ErrorStatus", leaf(it.ErrorStatus))
		default:
			setIfNotEmpty(n, "SubscribeStatusString", it.Status)
			if it.PopupScene != 0 {
				n.set("PopupScene", leaf(strconv.Itoa(it.PopupScene)))
			}
			setIfNotEmpty(n, "MsgID", it.MsgID)
			if it.ErrorCode != 0 {
				n.set("ErrorCode", leaf(strconv.Itoa(it.ErrorCode)))
			}
			setIfNotEmpty(n, "ErrorStatus", it.ErrorStatus)
		}
		list.elems = append(list.elems, n)
	}
	root.set("List", list)
	return root
}

func setIfNotEmpty(n *docNode, name, value string) {
	if value != "" {
		n.set(name, &docNode{kind: docLeaf, text: value})
	}
}

// docLeafPair is one leaf of a document with its encoded path.
type docLeafPair struct {
	path  []byte
	value string
}

// Path segment tags: an object name and a list position can never encode the
// same way.
const (
	segmentName  = 'n'
	segmentIndex = 'i'
)

// collectLeaves appends the leaves under n, whose path is path, to out.
func collectLeaves(n *docNode, path []byte, out []docLeafPair) []docLeafPair {
	switch n.kind {
	case docLeaf:
		return append(out, docLeafPair{path: slices.Clone(path), value: n.text})
	case docObject:
		for _, k := range n.keys {
			p := append(path, segmentName)
			p = appendLenPrefixed(p, []byte(k))
			out = collectLeaves(n.vals[k], p, out)
		}
	case docList:
		if len(n.elems) == 1 {
			return collectLeaves(n.elems[0], path, out)
		}
		for i, el := range n.elems {
			p := append(path, segmentIndex)
			p = binary.AppendUvarint(p, uint64(i))
			out = collectLeaves(el, p, out)
		}
	}
	return out
}

func appendLenPrefixed(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
