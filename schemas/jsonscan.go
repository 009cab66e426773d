package schemas

import (
	"encoding/binary"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// parseJSONDocument parses a JSON message: exactly one object.
//
// It reads the bytes in one pass rather than walking encoding/json's tokens:
// the token walk allocated for every token and built an error at the end of
// every top-level value, and pushes are parsed at the gateway's full rate.
// What it accepts is the RFC 8259 grammar with an object at the top level,
// JSON white space around tokens and nothing after the object, under the
// document's rules: depth at most maxDocDepth, no duplicate keys, valid UTF-8
// in strings. Strings are unescaped as encoding/json unescapes them, an
// unpaired surrogate escape becoming U+FFFD, so that the fields and the event
// id are what they were with the decoder. Errors give offsets, never input.
func parseJSONDocument(b []byte) (*docNode, error) {
	s := jsonScanner{in: b, src: string(b)}
	s.skipSpace()
	switch {
	case s.pos == len(s.src):
		return nil, jsonUnexpectedEnd()
	case s.src[s.pos] == '[':
		return nil, malformedf("json: top level is not an object")
	case s.src[s.pos] != '{':
		// A broken scalar is reported as broken, as the decoder did.
		if _, err := s.value(1); err != nil {
			return nil, err
		}
		return nil, malformedf("json: top level is not an object")
	}
	root, err := s.value(1)
	if err != nil {
		return nil, err
	}
	s.skipSpace()
	if s.pos != len(s.src) {
		return nil, malformedf("json: data after the top-level object")
	}
	return root, nil
}

// Arena chunk sizes. A push has a dozen or two values, an envelope three.
// The first chunk of nodes is kept to 480 bytes: measured, a first chunk past
// 512 bytes made the envelope a third slower to parse. Chunks double up to
// jsonMaxChunk, so that a large document costs few allocations.
const (
	jsonFirstNodes = 6
	jsonFirstChunk = 16
	jsonMaxChunk   = 512
)

// jsonLinearKeys is the number of keys up to which an object looks for a
// duplicate by comparing with each earlier key; past it, an index map keeps
// a hostile object with many keys from costing quadratic time.
const jsonLinearKeys = 16

// jsonScanner holds the state of one parseJSONDocument call; it is never
// shared.
type jsonScanner struct {
	// src is a copy of in, the input. A string without escapes, the usual
	// case, becomes a substring of it, so that keys and values cost no
	// allocation of their own.
	in  []byte
	src string
	pos int

	// nodes, keys and lists are the unused rest of the arena chunks that
	// nodes and their keys and elems slices are cut from; the sizes are those
	// of the last chunks made.
	nodes                       []docNode
	keys                        []string
	lists                       []*docNode
	nodeSize, keySize, listSize int

	// buf is scratch space for unescaping a string.
	buf []byte
}

// jsonMember is one key and value of an object being read.
type jsonMember struct {
	key string
	val *docNode
}

// cut returns n elements from the arena chunk *free, starting a new chunk
// when it is short: of first elements, then of twice the last chunk's size
// (held in *size). The result's capacity is n, so appending to it (as set and
// liftItems do) moves it rather than writing over its neighbour's items.
func cut[T any](free *[]T, size *int, first, n int) []T {
	if len(*free) < n {
		switch {
		case *size == 0:
			*size = first
		case *size < jsonMaxChunk:
			*size = min(*size*2, jsonMaxChunk)
		}
		*free = make([]T, max(n, *size))
	}
	out := (*free)[:n:n]
	*free = (*free)[n:]
	return out
}

func (s *jsonScanner) node(kind docKind) *docNode {
	n := &cut(&s.nodes, &s.nodeSize, jsonFirstNodes, 1)[0]
	n.kind = kind
	return n
}

func (s *jsonScanner) leaf(text string) *docNode {
	n := s.node(docLeaf)
	n.text = text
	return n
}

// skipSpace moves past JSON white space, which is narrower than Unicode's.
func (s *jsonScanner) skipSpace() {
	for s.pos < len(s.src) {
		switch s.src[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// value reads the value that starts at s.pos, at the given depth (the
// top-level object is at depth 1).
func (s *jsonScanner) value(depth int) (*docNode, error) {
	if depth > maxDocDepth {
		return nil, malformedf("json: nested deeper than %d", maxDocDepth)
	}
	if s.pos >= len(s.src) {
		return nil, jsonUnexpectedEnd()
	}
	switch c := s.src[s.pos]; c {
	case '{':
		return s.object(depth)
	case '[':
		return s.array(depth)
	case '"':
		v, err := s.str()
		if err != nil {
			return nil, err
		}
		return s.leaf(strings.TrimSpace(v)), nil
	case 't':
		if err := s.literal("true"); err != nil {
			return nil, err
		}
		return s.leaf("true"), nil
	case 'f':
		if err := s.literal("false"); err != nil {
			return nil, err
		}
		return s.leaf("false"), nil
	case 'n':
		if err := s.literal("null"); err != nil {
			return nil, err
		}
		return s.leaf(""), nil
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		v, err := s.number()
		if err != nil {
			return nil, err
		}
		return s.leaf(v), nil
	}
	return nil, jsonSyntaxAt(s.pos)
}

// jsonPending is how many children of one container are held in its reader's
// own frame before they move to the heap: more than a push's objects have.
const jsonPending = 8

// object reads the object whose '{' is at s.pos.
func (s *jsonScanner) object(depth int) (*docNode, error) {
	s.pos++
	// The members read so far. index is made once there are more than
	// jsonLinearKeys of them.
	var (
		frame   [jsonPending]jsonMember
		members = frame[:0]
		index   map[string]*docNode
	)
	s.skipSpace()
	if s.pos < len(s.src) && s.src[s.pos] == '}' {
		s.pos++
		return s.closeObject(members, index), nil
	}
	for {
		if s.pos >= len(s.src) {
			return nil, jsonUnexpectedEnd()
		}
		if s.src[s.pos] != '"' {
			return nil, jsonSyntaxAt(s.pos)
		}
		key, err := s.str()
		if err != nil {
			return nil, err
		}
		if hasKey(members, index, key) {
			// encoding/json would keep the last value and other readers the
			// first; refuse rather than pick one.
			return nil, malformedf("json: duplicate key before offset %d", s.pos)
		}
		s.skipSpace()
		if s.pos >= len(s.src) {
			return nil, jsonUnexpectedEnd()
		}
		if s.src[s.pos] != ':' {
			return nil, jsonSyntaxAt(s.pos)
		}
		s.pos++
		s.skipSpace()
		v, err := s.value(depth + 1)
		if err != nil {
			return nil, err
		}
		members = append(members, jsonMember{key: key, val: v})
		switch {
		case index != nil:
			index[key] = v
		case len(members) > jsonLinearKeys:
			index = make(map[string]*docNode, 2*len(members))
			for _, m := range members {
				index[m.key] = m.val
			}
		}
		s.skipSpace()
		if s.pos >= len(s.src) {
			return nil, jsonUnexpectedEnd()
		}
		switch s.src[s.pos] {
		case ',':
			s.pos++
			s.skipSpace()
		case '}':
			s.pos++
			return s.closeObject(members, index), nil
		default:
			return nil, jsonSyntaxAt(s.pos)
		}
	}
}

// hasKey reports whether an object being read, with members and (when it
// has many) index, already has key.
func hasKey(members []jsonMember, index map[string]*docNode, key string) bool {
	if index != nil {
		_, ok := index[key]
		return ok
	}
	for _, m := range members {
		if m.key == key {
			return true
		}
	}
	return false
}

// closeObject makes the node of an object. An empty object has nil keys and
// an empty map, as newDocObject makes it.
func (s *jsonScanner) closeObject(members []jsonMember, index map[string]*docNode) *docNode {
	n := s.node(docObject)
	n.vals = index
	if n.vals == nil {
		n.vals = make(map[string]*docNode, len(members))
		for _, m := range members {
			n.vals[m.key] = m.val
		}
	}
	if len(members) > 0 {
		n.keys = cut(&s.keys, &s.keySize, jsonFirstChunk, len(members))
		for i, m := range members {
			n.keys[i] = m.key
		}
	}
	return n
}

// array reads the array whose '[' is at s.pos.
func (s *jsonScanner) array(depth int) (*docNode, error) {
	s.pos++
	var (
		frame [jsonPending]*docNode
		elems = frame[:0]
	)
	s.skipSpace()
	if s.pos < len(s.src) && s.src[s.pos] == ']' {
		s.pos++
		return s.closeArray(elems), nil
	}
	for {
		v, err := s.value(depth + 1)
		if err != nil {
			return nil, err
		}
		elems = append(elems, v)
		s.skipSpace()
		if s.pos >= len(s.src) {
			return nil, jsonUnexpectedEnd()
		}
		switch s.src[s.pos] {
		case ',':
			s.pos++
			s.skipSpace()
		case ']':
			s.pos++
			return s.closeArray(elems), nil
		default:
			return nil, jsonSyntaxAt(s.pos)
		}
	}
}

// closeArray makes the node of an array. An empty array has nil elems.
func (s *jsonScanner) closeArray(elems []*docNode) *docNode {
	n := s.node(docList)
	if len(elems) > 0 {
		n.elems = cut(&s.lists, &s.listSize, jsonFirstChunk, len(elems))
		copy(n.elems, elems)
	}
	return n
}

// literal reads true, false or null, whose first byte is at s.pos.
func (s *jsonScanner) literal(word string) error {
	if strings.HasPrefix(s.src[s.pos:], word) {
		s.pos += len(word)
		return nil
	}
	for i := 0; i < len(word); i++ {
		switch {
		case s.pos+i >= len(s.src):
			return jsonUnexpectedEnd()
		case s.src[s.pos+i] != word[i]:
			return jsonSyntaxAt(s.pos + i)
		}
	}
	return jsonSyntaxAt(s.pos)
}

// number reads the number that starts at s.pos and returns its literal text:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jsonScanner) number() (string, error) {
	start, i := s.pos, s.pos
	if s.src[i] == '-' {
		i++
	}
	switch {
	case i >= len(s.src):
		return "", jsonUnexpectedEnd()
	case s.src[i] == '0':
		i++
	case '1' <= s.src[i] && s.src[i] <= '9':
		i = s.digits(i + 1)
	default:
		return "", jsonSyntaxAt(i)
	}
	if i < len(s.src) && s.src[i] == '.' {
		i++
		if i >= len(s.src) {
			return "", jsonUnexpectedEnd()
		}
		if !isDigit(s.src[i]) {
			return "", jsonSyntaxAt(i)
		}
		i = s.digits(i)
	}
	if i < len(s.src) && (s.src[i] == 'e' || s.src[i] == 'E') {
		i++
		if i < len(s.src) && (s.src[i] == '+' || s.src[i] == '-') {
			i++
		}
		if i >= len(s.src) {
			return "", jsonUnexpectedEnd()
		}
		if !isDigit(s.src[i]) {
			return "", jsonSyntaxAt(i)
		}
		i = s.digits(i)
	}
	s.pos = i
	return s.src[start:i], nil
}

// digits returns the offset of the first non-digit at or after i.
func (s *jsonScanner) digits(i int) int {
	for i < len(s.src) && isDigit(s.src[i]) {
		i++
	}
	return i
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// str reads the string literal whose opening quote is at s.pos and returns
// its value, a substring of the input unless it has escapes.
func (s *jsonScanner) str() (string, error) {
	start := s.pos + 1
	i, high := s.plain(start)
	if i >= len(s.src) {
		return "", jsonUnexpectedEnd()
	}
	switch s.src[i] {
	case '"':
		raw := s.src[start:i]
		if high && !utf8.ValidString(raw) {
			return "", jsonInvalidUTF8(start - 1)
		}
		s.pos = i + 1
		return raw, nil
	case '\\':
		return s.unescape(start, i, high)
	}
	return "", jsonSyntaxAt(i)
}

// Masks for looking at eight bytes of a string at once.
const (
	swarOnes = 0x0101010101010101
	swarHigh = 0x8080808080808080
)

// plain returns the offset of the first byte at or after i that ends a run
// of plain string content (a quote, a backslash, a control character, or the
// end of the input), and whether the run has bytes outside ASCII. It looks
// at eight bytes at a time, since the Encrypt field is most of a body.
func (s *jsonScanner) plain(i int) (int, bool) {
	var seen uint64
	for i+8 <= len(s.in) {
		x := binary.LittleEndian.Uint64(s.in[i:])
		quote := x ^ (swarOnes * '"')
		backslash := x ^ (swarOnes * '\\')
		// Each term has a byte's high bit set for the first byte of x that
		// is below 0x20, or a quote, or a backslash (x-ones*n &^ x finds a
		// byte below n, for n up to 0x80).
		if ((x-swarOnes*0x20)&^x|(quote-swarOnes)&^quote|(backslash-swarOnes)&^backslash)&swarHigh != 0 {
			break
		}
		seen |= x
		i += 8
	}
	for ; i < len(s.src); i++ {
		c := s.src[i]
		if c == '"' || c == '\\' || c < 0x20 {
			break
		}
		seen |= uint64(c)
	}
	return i, seen&swarHigh != 0
}

// unescape finishes reading a string literal whose content starts at start
// and whose first escape is at i. Escapes are decoded as encoding/json
// decodes them: \uXXXX pairs of surrogates make one rune, and a surrogate
// that is not the first half of a pair becomes U+FFFD on its own, leaving
// whatever follows it to be read afresh.
func (s *jsonScanner) unescape(start, i int, high bool) (string, error) {
	buf := append(s.buf[:0], s.src[start:i]...)
	for {
		j, h := s.plain(i)
		buf = append(buf, s.src[i:j]...)
		high = high || h
		i = j
		if i >= len(s.src) {
			return "", jsonUnexpectedEnd()
		}
		switch s.src[i] {
		case '"':
			if high && !utf8.ValidString(s.src[start:i]) {
				// Escapes are ASCII, so the raw text is valid UTF-8 exactly
				// when the bytes copied from it are.
				return "", jsonInvalidUTF8(start - 1)
			}
			s.pos = i + 1
			s.buf = buf
			return string(buf), nil
		case '\\':
		default:
			return "", jsonSyntaxAt(i)
		}
		if i+1 >= len(s.src) {
			return "", jsonUnexpectedEnd()
		}
		switch e := s.src[i+1]; e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, err := s.hex4(i + 2)
			if err != nil {
				return "", err
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if r2, ok := s.escapedRune(i); ok {
					if pair := utf16.DecodeRune(r, r2); pair != utf8.RuneError {
						buf = utf8.AppendRune(buf, pair)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			buf = utf8.AppendRune(buf, r)
			continue
		default:
			return "", jsonSyntaxAt(i + 1)
		}
		i += 2
	}
}

// hex4 reads the four hexadecimal digits at i of a \u escape.
func (s *jsonScanner) hex4(i int) (rune, error) {
	var r rune
	for j := i; j < i+4; j++ {
		if j >= len(s.src) {
			return 0, jsonUnexpectedEnd()
		}
		d, ok := hexDigit(s.src[j])
		if !ok {
			return 0, jsonSyntaxAt(j)
		}
		r = r<<4 | d
	}
	return r, nil
}

// escapedRune returns the rune of a complete \uXXXX escape at i, and false
// when there is none: what encoding/json looks for after a surrogate.
func (s *jsonScanner) escapedRune(i int) (rune, bool) {
	if i+6 > len(s.src) || s.src[i] != '\\' || s.src[i+1] != 'u' {
		return 0, false
	}
	var r rune
	for j := i + 2; j < i+6; j++ {
		d, ok := hexDigit(s.src[j])
		if !ok {
			return 0, false
		}
		r = r<<4 | d
	}
	return r, true
}

func hexDigit(c byte) (rune, bool) {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0'), true
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10), true
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10), true
	}
	return 0, false
}

// jsonSyntaxAt reports a byte that JSON does not allow where it stands, by
// its offset only.
func jsonSyntaxAt(offset int) error {
	return malformedf("json: syntax error at offset %d", offset)
}

func jsonInvalidUTF8(offset int) error {
	return malformedf("json: invalid UTF-8 in the string at offset %d", offset)
}

func jsonUnexpectedEnd() error {
	return malformedf("json: unexpected end of input")
}
