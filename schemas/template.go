package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Template types as WeChat numbers them in gettemplate's "type".
const (
	// TemplateOneTime is a one-time template: each accept allows one send.
	TemplateOneTime = 2
	// TemplateLongTerm is a long-term template: one accept allows sends until the user rejects.
	TemplateLongTerm = 3
)

// Sentinel errors of ParseTemplates.
var (
	// ErrTemplateResponse means a gettemplate body is not the documented shape.
	ErrTemplateResponse = errors.New("malformed gettemplate response")
	// ErrTemplateAPI means WeChat answered gettemplate with a non-zero errcode;
	// the error text carries the errcode and errmsg.
	ErrTemplateAPI = errors.New("gettemplate failed")
	// ErrNoSuchTemplate means the app's template list is known and does not
	// hold the template: WeChat would refuse a send of it (40037).
	ErrNoSuchTemplate = errors.New("the app has no such template")
)

// Bounds of a gettemplate response.
const (
	// maxTemplateBody bounds the body: an account holds at most a few dozen
	// private templates of a few hundred bytes each.
	maxTemplateBody = 1 << 20
	// maxTemplateKeywords bounds the placeholders of one template, matching the
	// largest data a send request may carry.
	maxTemplateKeywords = maxDataKeywords
	// maxTemplateErrMsg bounds how much of WeChat's errmsg an error repeats.
	maxTemplateErrMsg = 200
)

// Template is one private template of an app, as returned by
// /wxaapi/newtmpl/gettemplate. A Template is a value; its methods are safe for
// concurrent use as long as nobody modifies it.
type Template struct {
	// ID is the private template id (priTmplId), the template_id of a send.
	ID string `json:"template_id"`
	// Title is the template's title as shown to users.
	Title string `json:"title"`
	// Type is TemplateOneTime or TemplateLongTerm.
	Type int `json:"type"`
	// Keywords are the template's data keys in the order its content shows them.
	Keywords []Keyword `json:"keywords"`
}

// Keyword is one data key of a template.
type Keyword struct {
	// Key is the data key, such as "thing3".
	Key string `json:"key"`
	// Type is the key's keyword type, such as "thing"; for a type this package
	// does not know it is the key without its trailing digits.
	Type string `json:"type"`
	// Enum lists the allowed values of an enum keyword.
	Enum []string `json:"enum,omitempty"`
}

// LongTerm reports whether the template is a long-term subscription template.
func (t Template) LongTerm() bool { return t.Type == TemplateLongTerm }

// Lookup returns the template's keyword with the given key.
func (t Template) Lookup(key string) (Keyword, bool) {
	for _, kw := range t.Keywords {
		if kw.Key == key {
			return kw, true
		}
	}
	return Keyword{}, false
}

// gettemplateResponse is the body of /wxaapi/newtmpl/gettemplate.
type gettemplateResponse struct {
	ErrCode templateNumber `json:"errcode"`
	ErrMsg  string         `json:"errmsg"`
	Data    []struct {
		PriTmplID            string         `json:"priTmplId"`
		Title                string         `json:"title"`
		Content              string         `json:"content"`
		Type                 templateNumber `json:"type"`
		KeywordEnumValueList []struct {
			KeywordCode   string   `json:"keywordCode"`
			EnumValueList []string `json:"enumValueList"`
		} `json:"keywordEnumValueList"`
	} `json:"data"`
}

// templateNumber is an integer WeChat may send as a JSON number or a string.
type templateNumber int

func (n *templateNumber) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(s)
	}
	v, err := strconv.Atoi(string(b))
	if err != nil {
		return errors.New("not an integer")
	}
	*n = templateNumber(v)
	return nil
}

// ParseTemplates parses a gettemplate response body into Templates. The keys
// and their types come from the {{key.DATA}} placeholders of each template's
// content, in order and without repeats; enum values come from
// keywordEnumValueList, whose keywordCode may be "enum1.DATA" or "enum1". An
// enum list for a key the content does not show is ignored, since only the
// content's keys can be sent.
//
// A non-zero errcode returns an error wrapping ErrTemplateAPI that includes the
// errcode and errmsg; a body that is not a gettemplate response, a template
// without an id, or an oversized body returns an error wrapping
// ErrTemplateResponse. ParseTemplates is safe for concurrent use.
func ParseTemplates(body []byte) ([]Template, error) {
	if len(body) > maxTemplateBody {
		return nil, fmt.Errorf("%w: body of %d bytes exceeds %d", ErrTemplateResponse, len(body), maxTemplateBody)
	}
	var resp gettemplateResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrTemplateResponse, templateJSONDetail(err))
	}
	if resp.ErrCode != 0 {
		return nil, fmt.Errorf("%w: errcode %d: %s", ErrTemplateAPI, int(resp.ErrCode), boundedErrMsg(resp.ErrMsg))
	}
	templates := make([]Template, 0, len(resp.Data))
	for i, d := range resp.Data {
		if d.PriTmplID == "" {
			return nil, fmt.Errorf("%w: template %d has no priTmplId", ErrTemplateResponse, i)
		}
		keys, err := templateKeys(d.Content)
		if err != nil {
			return nil, fmt.Errorf("%w: template %s: %v", ErrTemplateResponse, kwShown(d.PriTmplID), err)
		}
		t := Template{ID: d.PriTmplID, Title: d.Title, Type: int(d.Type), Keywords: make([]Keyword, len(keys))}
		for j, key := range keys {
			t.Keywords[j] = Keyword{Key: key, Type: templateKeywordType(key)}
		}
		for _, e := range d.KeywordEnumValueList {
			key := strings.TrimSuffix(e.KeywordCode, ".DATA")
			for j := range t.Keywords {
				if t.Keywords[j].Key == key && len(e.EnumValueList) > 0 {
					t.Keywords[j].Enum = append([]string(nil), e.EnumValueList...)
				}
			}
		}
		templates = append(templates, t)
	}
	return templates, nil
}

// templateJSONDetail describes a decoding error by position and field name
// only: encoding/json's own text names Go types, and values may be long.
func templateJSONDetail(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("not JSON at offset %d", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("%s has the wrong type at offset %d", kwShown(typ.Field), typ.Offset)
	}
	return "not a gettemplate response"
}

// templateKeys returns the keys of the {{key.DATA}} placeholders of content
// in order of first appearance. Text between braces that is not a
// placeholder, such as a literal "{{", is left alone.
func templateKeys(content string) ([]string, error) {
	var keys []string
	rest := content
	for {
		open := strings.Index(rest, "{{")
		if open < 0 {
			return keys, nil
		}
		rest = rest[open+2:]
		end := strings.Index(rest, "}}")
		if end < 0 {
			return keys, nil
		}
		inner := rest[:end]
		key, isPlaceholder := strings.CutSuffix(inner, ".DATA")
		if !isPlaceholder || !validTemplateKey(key) {
			continue
		}
		rest = rest[end+2:]
		if slices.Contains(keys, key) {
			continue
		}
		if len(keys) == maxTemplateKeywords {
			return nil, fmt.Errorf("more than %d keywords", maxTemplateKeywords)
		}
		keys = append(keys, key)
	}
}

// validTemplateKey reports whether key looks like a data key: ASCII letters,
// digits and underscores, bounded.
func validTemplateKey(key string) bool {
	if key == "" || len(key) > maxKeywordKeyLen {
		return false
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; !isKwLetter(c) && !isKwDigit(c) && c != '_' {
			return false
		}
	}
	return true
}

// templateKeywordType returns the keyword type of a template key: the known
// type, or for an unknown one the key without its trailing digits.
func templateKeywordType(key string) string {
	if typ, ok := KeywordType(key); ok {
		return typ
	}
	if prefix, ok := splitKeywordKey(key); ok {
		return prefix
	}
	return key
}

// boundedErrMsg cuts WeChat's errmsg to a bounded prefix for an error string.
func boundedErrMsg(msg string) string { return Truncate(msg, maxTemplateErrMsg) }
