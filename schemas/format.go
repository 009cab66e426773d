package schemas

import "strconv"

// Format is the body format of a push: WeChat sends XML or JSON depending on
// the mini program's console setting, in every mode.
type Format int

// Body formats. The zero Format is no format.
const (
	FormatXML Format = iota + 1
	FormatJSON
)

// MaxMessageSize bounds the bodies and messages this package parses, in
// bytes. WeChat pushes are a few hundred bytes; the bound only stops a hostile
// body from costing parse time and memory, and it is above any sensible
// callback.max_body.
const MaxMessageSize = 4 << 20

// String returns "xml" or "json".
func (f Format) String() string {
	switch f {
	case FormatXML:
		return "xml"
	case FormatJSON:
		return "json"
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// DetectFormat decides the format of a body by its first non-space byte: '<'
// is XML and '{' is JSON. WeChat's Content-Type is not documented, so the
// body itself is the only reliable signal. Anything else, including an empty
// body, is ErrMalformed. It is safe for concurrent use.
func DetectFormat(b []byte) (Format, error) {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '<':
			return FormatXML, nil
		case '{':
			return FormatJSON, nil
		default:
			return 0, malformedf("neither XML nor a JSON object")
		}
	}
	return 0, malformedf("empty body")
}
