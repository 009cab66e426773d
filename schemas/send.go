package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
)

// Defaults WeChat applies to a send without miniprogram_state or lang;
// WeChatBody writes them out so the stored body says what was sent.
const (
	DefaultMiniprogramState = "formal"
	DefaultLang             = "zh_CN"
)

// maxDataKeywords bounds the keywords of one send; real templates have at most
// a handful, so this only stops abuse. SendRequest.Data's "max=64" tag says the same.
const maxDataKeywords = 64

// SendRequest is the body of POST /v1/apps/{appid}/messages and of
// subscribeMessage.send. Data maps each keyword key to its value.
// A SendRequest is a plain value; it is not safe to modify concurrently.
type SendRequest struct {
	// ToUser is the recipient's openid.
	ToUser string `json:"touser" validate:"required,max=128,printascii"`
	// TemplateID is the private template id.
	TemplateID string `json:"template_id" validate:"required,max=128,printascii"`
	// Page is the mini-program page opened from the message, with an optional query.
	Page string `json:"page,omitempty" validate:"omitempty,max=1024"`
	// Data maps each keyword key ("thing1") to its value.
	Data map[string]string `json:"data" validate:"required,min=1,max=64"`
	// MiniprogramState is developer, trial or formal (WeChat's default).
	MiniprogramState string `json:"miniprogram_state,omitempty" validate:"omitempty,oneof=developer trial formal"`
	// Lang is zh_CN (WeChat's default), en_US, zh_HK or zh_TW.
	Lang string `json:"lang,omitempty" validate:"omitempty,oneof=zh_CN en_US zh_HK zh_TW"`
}

// UnmarshalJSON decodes a send request whose data values are either strings,
// {"thing1": "text"}, or WeChat's objects, {"thing1": {"value": "text"}}, and
// accepts a mix of the two. Other members of a value object (such as the
// retired "color") are ignored. Any other value shape returns FieldErrors
// naming each offending key, with rule "type".
func (r *SendRequest) UnmarshalJSON(b []byte) error {
	type plain SendRequest // drops this method, so decoding does not recurse
	var aux struct {
		plain
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	data, err := decodeSendData(aux.Data)
	if err != nil {
		return err
	}
	*r = SendRequest(aux.plain)
	r.Data = data
	return nil
}

// decodeSendData decodes the data member; absent or null gives nil, which
// validation reports as missing.
func decodeSendData(raw json.RawMessage) (map[string]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] != '{' {
		return nil, FieldErrors{{Field: "data", Rule: "type", Message: "data must be an object of keyword values"}}
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return nil, FieldErrors{{Field: "data", Rule: "type", Message: "data must be an object of keyword values"}}
	}
	data := make(map[string]string, len(members))
	var errs FieldErrors
	for key, v := range members {
		value, ok := decodeKeywordValue(v)
		if !ok {
			errs = append(errs, FieldError{
				Field:   "data." + kwShown(key),
				Rule:    "type",
				Message: fmt.Sprintf(`data.%s must be a string or {"value": string}`, kwShown(key)),
			})
			continue
		}
		data[key] = value
	}
	if len(errs) > 0 {
		sort.Slice(errs, func(i, j int) bool { return errs[i].Field < errs[j].Field })
		if len(errs) > maxDataKeywords {
			errs = errs[:maxDataKeywords]
		}
		return nil, errs
	}
	return data, nil
}

// decodeKeywordValue accepts "text" or {"value": "text"}.
func decodeKeywordValue(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false
		}
		return s, true
	case '{':
		var obj struct {
			Value *string `json:"value"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil || obj.Value == nil {
			return "", false
		}
		return *obj.Value, true
	}
	return "", false
}

// wechatSendBody is the body of /cgi-bin/message/subscribe/send.
type wechatSendBody struct {
	ToUser           string                   `json:"touser"`
	TemplateID       string                   `json:"template_id"`
	Page             string                   `json:"page,omitempty"`
	Data             map[string]wechatKeyword `json:"data"`
	MiniprogramState string                   `json:"miniprogram_state"`
	Lang             string                   `json:"lang"`
}

type wechatKeyword struct {
	Value string `json:"value"`
}

// errNilSendRequest is returned by WeChatBody on a nil receiver.
var errNilSendRequest = errors.New("nil send request")

// WeChatBody returns the JSON body WeChat's subscribeMessage.send expects:
// data as {"key": {"value": "text"}}, miniprogram_state defaulting to formal
// and lang to zh_CN. Keys are sorted and HTML characters are not escaped, so
// the same request always gives the same bytes. It does not validate; call
// Validator.Check first. It is safe for concurrent use with other readers.
func (r *SendRequest) WeChatBody() ([]byte, error) {
	if r == nil {
		return nil, errNilSendRequest
	}
	body := wechatSendBody{
		ToUser:           r.ToUser,
		TemplateID:       r.TemplateID,
		Page:             r.Page,
		Data:             make(map[string]wechatKeyword, len(r.Data)),
		MiniprogramState: r.MiniprogramState,
		Lang:             r.Lang,
	}
	if body.MiniprogramState == "" {
		body.MiniprogramState = DefaultMiniprogramState
	}
	if body.Lang == "" {
		body.Lang = DefaultLang
	}
	for k, v := range r.Data {
		body.Data[k] = wechatKeyword{Value: v}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body); err != nil {
		return nil, fmt.Errorf("encode send body: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
