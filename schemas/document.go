package schemas

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// A push is first parsed into a document: a small tree that XML and JSON
// both map onto, so that field lookup, the WeChat quirks and the event id are
// written once for both formats.
//
//   - An XML element with child elements, or a JSON object, is an object.
//     XML elements that repeat a name become one list under that name.
//   - A JSON array is a list.
//   - An XML element with text only, or a JSON string, number, boolean or
//     null, is a leaf whose text has surrounding white space removed. A JSON
//     number keeps its literal text, so 123 and "123" are the same leaf and a
//     MsgID beyond 2^53 is never rounded through float64; null is "".
//
// Parsing is strict where two readers could disagree about a message: invalid
// UTF-8, duplicate JSON keys, XML mixed content, DTDs, and anything after the
// top-level value are ErrMalformed.

// docKind is the kind of a docNode.
type docKind uint8

const (
	docLeaf docKind = iota
	docObject
	docList
)

// maxDocDepth bounds nesting. WeChat messages nest three deep (xml, wrapper,
// List); the bound stops deep recursion on hostile input.
const maxDocDepth = 32

// docNode is one node of a parsed document.
type docNode struct {
	kind docKind
	// text is a leaf's value.
	text string
	// keys are an object's names in document order; vals holds their values.
	keys []string
	vals map[string]*docNode
	// elems are a list's elements.
	elems []*docNode
}

func newDocObject() *docNode {
	return &docNode{kind: docObject, vals: make(map[string]*docNode)}
}

// get returns an object's child by name, or nil.
func (n *docNode) get(name string) *docNode {
	if n == nil || n.kind != docObject {
		return nil
	}
	return n.vals[name]
}

// set adds or replaces a child of an object, keeping the first position.
func (n *docNode) set(name string, v *docNode) {
	if _, ok := n.vals[name]; !ok {
		n.keys = append(n.keys, name)
	}
	n.vals[name] = v
}

// remove deletes a child of an object.
func (n *docNode) remove(name string) {
	if _, ok := n.vals[name]; !ok {
		return
	}
	delete(n.vals, name)
	for i, k := range n.keys {
		if k == name {
			n.keys = append(n.keys[:i], n.keys[i+1:]...)
			break
		}
	}
}

// addRepeated adds an XML child: a second child of the same name turns the
// entry into a list.
func (n *docNode) addRepeated(name string, v *docNode) {
	prev, ok := n.vals[name]
	switch {
	case !ok:
		n.set(name, v)
	case prev.kind == docList:
		// An XML child is never a list by itself, so a list here holds repeats.
		prev.elems = append(prev.elems, v)
	default:
		n.vals[name] = &docNode{kind: docList, elems: []*docNode{prev, v}}
	}
}

// members returns a node as a sequence of items: a list's elements, an
// object or a non-empty leaf as itself, and nothing for an absent node or an
// empty leaf (an empty XML element). This is how List is read: WeChat sends an
// object for one item and an array for several.
func (n *docNode) members() []*docNode {
	switch {
	case n == nil:
		return nil
	case n.kind == docList:
		return n.elems
	case n.kind == docLeaf && n.text == "":
		return nil
	}
	return []*docNode{n}
}

// scalar returns the text of an object's leaf child, "" when it is absent,
// and ErrMalformed when it is an object or a list (an XML field sent twice).
func (n *docNode) scalar(name string) (string, error) {
	v := n.get(name)
	if v == nil {
		return "", nil
	}
	if v.kind != docLeaf {
		return "", malformedf("%s is not a single value", name)
	}
	return v.text, nil
}

// scalarAlias is scalar over names that WeChat and SDKs spell differently
// (MsgID, MsgId). Two spellings in one object are ErrMalformed, since they
// could disagree.
func (n *docNode) scalarAlias(names ...string) (string, error) {
	found := ""
	for _, name := range names {
		if n.get(name) == nil {
			continue
		}
		if found != "" {
			return "", malformedf("both %s and %s present", found, name)
		}
		found = name
	}
	if found == "" {
		return "", nil
	}
	return n.scalar(found)
}

// parseDocument parses a body or message of the given format into a
// document whose root is an object.
func parseDocument(f Format, b []byte) (*docNode, error) {
	if len(b) > MaxMessageSize {
		return nil, malformedf("larger than %d bytes", MaxMessageSize)
	}
	// A JSON decoder would turn invalid UTF-8 into U+FFFD, so the Raw text
	// and the parsed fields would disagree; reject it in both formats.
	if !utf8.Valid(b) {
		return nil, malformedf("invalid UTF-8")
	}
	switch f {
	case FormatXML:
		return parseXMLDocument(b)
	case FormatJSON:
		return parseJSONDocument(b)
	}
	return nil, malformedf("unknown format %v", f)
}

// parseXMLDocument parses a WeChat XML message: one <xml> root element,
// optionally preceded by a declaration and comments.
func parseXMLDocument(b []byte) (*docNode, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	var root *docNode
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, xmlSyntax(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if root != nil {
				return nil, malformedf("xml: more than one root element")
			}
			if t.Name.Local != "xml" {
				return nil, malformedf("xml: root element is not <xml>")
			}
			if root, err = parseXMLElement(d, 1); err != nil {
				return nil, err
			}
			if root.kind != docObject {
				if root.text != "" {
					return nil, malformedf("xml: root element has no fields")
				}
				root = newDocObject()
			}
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return nil, malformedf("xml: text outside the root element")
			}
		case xml.Directive:
			// WeChat never sends a DTD; refusing it keeps entity tricks out.
			return nil, malformedf("xml: directive not allowed")
		}
	}
	if root == nil {
		return nil, malformedf("xml: no root element")
	}
	return root, nil
}

// parseXMLElement parses the content of an element whose start tag has just
// been read, up to and including its end tag.
func parseXMLElement(d *xml.Decoder, depth int) (*docNode, error) {
	if depth > maxDocDepth {
		return nil, malformedf("xml: nested deeper than %d", maxDocDepth)
	}
	var (
		text []byte
		obj  *docNode
	)
	for {
		tok, err := d.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, malformedf("xml: unexpected end of input")
			}
			return nil, xmlSyntax(err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			child, err := parseXMLElement(d, depth+1)
			if err != nil {
				return nil, err
			}
			if obj == nil {
				obj = newDocObject()
			}
			obj.addRepeated(t.Name.Local, child)
		case xml.CharData:
			text = append(text, t...)
		case xml.EndElement:
			trimmed := strings.TrimSpace(string(text))
			if obj == nil {
				return &docNode{kind: docLeaf, text: trimmed}, nil
			}
			if trimmed != "" {
				return nil, malformedf("xml: element <%s> mixes text and elements", shortName(t.Name.Local))
			}
			return obj, nil
		case xml.Directive:
			return nil, malformedf("xml: directive not allowed")
		}
	}
}

// shortName cuts a field name from the input before it goes into an error
// message, so a hostile body cannot make errors arbitrarily long.
func shortName(s string) string {
	const maxNameInError = 40
	return Truncate(s, maxNameInError)
}

// xmlSyntax reports an XML reader error by position only: the reader's own
// message may quote names from the input at any length.
func xmlSyntax(err error) error {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return malformedf("xml: syntax error on line %d", se.Line)
	}
	return malformedf("xml: unreadable")
}

// jsonErrorDetail words a JSON reader error without quoting the input.
func jsonErrorDetail(err error) string {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at offset %d", se.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	}
	return "unreadable"
}
