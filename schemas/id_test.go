package schemas

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// indentXML puts every element of a one-line WeChat XML message on its own
// line, CDATA sections included, as a pretty-printer would.
func indentXML(s string) string {
	return strings.ReplaceAll(s, "><", ">\n    <")
}

func indentJSON(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Indent(&b, []byte(s), "", "    "); err != nil {
		t.Fatalf("json.Indent(%q): %v", s, err)
	}
	return "\n" + b.String() + "\n"
}

func mustParse(t *testing.T, appID, msg string) *Event {
	t.Helper()
	e, err := ParseEvent(appID, []byte(msg))
	if err != nil {
		t.Fatalf("ParseEvent(%q) error = %v", msg, err)
	}
	return e
}

func TestEventIDSame(t *testing.T) {
	tests := []struct {
		name string
		a, b string
	}{
		{name: "popup_xml_and_json", a: sampleXMLPopup, b: sampleJSONPopup},
		{name: "sent_json_and_xml", a: sampleJSONSent, b: sampleXMLSent},
		{name: "change_xml_and_json", a: sampleXMLChange, b: sampleJSONChange},
		{name: "sent_string_and_number_fields", a: sampleJSONSent, b: sampleJSONSentNumbers},
		{name: "sent_top_level_and_nested_list", a: sampleJSONSent, b: sampleJSONSentNested},
		{name: "sent_list_object_and_one_element_array", a: sampleJSONSent, b: strings.Replace(strings.Replace(sampleJSONSent, `"List":{`, `"List":[{`, 1), `}}`, `}]}`, 1)},
		{name: "popup_xml_indented", a: sampleXMLPopup, b: indentXML(sampleXMLPopup)},
		{name: "popup_json_indented", a: sampleJSONPopup, b: indentJSON(t, sampleJSONPopup)},
		{name: "text_xml_indented", a: sampleV2, b: indentXML(strings.ReplaceAll(sampleV2, "\n", ""))},
		{name: "json_key_order", a: sampleV1, b: `{"debug_str":"hello world","Event":"debug_demo","MsgType":"event","CreateTime":1714112445,"FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY","ToUserName":"gh_97417a04a28d"}`},
		{name: "xml_declaration_and_comment", a: sampleXMLPopup, b: `<?xml version="1.0" encoding="UTF-8"?>` + "\n<!-- retry -->" + sampleXMLPopup},
		{name: "compatible_body_drops_encrypt", a: sampleV2, b: strings.Replace(sampleV2, "</xml>", "<Encrypt><![CDATA["+v2Encrypt+"]]></Encrypt></xml>", 1)},
		{name: "plain_cdata_and_text", a: sampleV2, b: strings.Replace(sampleV2, "<![CDATA[abcdteT]]>", "abcdteT", 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			appID := appSample
			a, b := mustParse(t, appID, tt.a), mustParse(t, appID, tt.b)
			if a.ID() != b.ID() {
				t.Errorf("ID of %q = %s, ID of %q = %s, want equal", tt.a, a.ID(), tt.b, b.ID())
			}
		})
	}
}

func TestEventIDDifferent(t *testing.T) {
	tests := []struct {
		name   string
		appA   string
		a, b   string
		appIDB string
	}{
		{name: "other_template", a: sampleJSONPopup, b: strings.Replace(sampleJSONPopup, "VRR0UEO9", "VRR0UEO8", 1)},
		{name: "other_status", a: sampleJSONPopup, b: strings.Replace(sampleJSONPopup, `"accept"`, `"reject"`, 1)},
		{name: "other_popup_scene", a: sampleJSONPopup, b: strings.Replace(sampleJSONPopup, `"PopupScene":2`, `"PopupScene":0`, 1)},
		{name: "other_msgid_same_second", a: sampleJSONSent, b: strings.Replace(sampleJSONSent, "1864323726461255680", "1864323726461255681", 1)},
		{name: "other_error_code", a: sampleJSONSent, b: strings.Replace(sampleJSONSent, `"ErrorCode":"0"`, `"ErrorCode":"10001"`, 1)},
		{name: "other_user", a: sampleJSONSent, b: strings.Replace(sampleJSONSent, "o7esq5PH", "o7esq5PX", 1)},
		{name: "other_second", a: sampleJSONSent, b: strings.Replace(sampleJSONSent, "1620963428", "1620963429", 1)},
		{name: "other_event", a: sampleXMLChange, b: strings.Replace(strings.ReplaceAll(sampleXMLChange, "SubscribeMsgChangeEvent", "SubscribeMsgPopupEvent"), "subscribe_msg_change_event", "subscribe_msg_popup_event", 1)},
		{name: "other_text_same_second", a: sampleV2, b: strings.Replace(sampleV2, "abcdteT", "abcdteU", 1)},
		{name: "other_unknown_field", a: sampleV1, b: strings.Replace(sampleV1, "hello world", "hello there", 1)},
		{name: "extra_item", a: sampleJSONChange, b: strings.Replace(strings.Replace(sampleJSONChange, `"List":{`, `"List":[{`, 1), `}}`, `},{"TemplateId":"x","SubscribeStatusString":"reject"}]}`, 1)},
		{name: "other_app", a: sampleJSONSent, b: sampleJSONSent, appIDB: "wx1111111111111111"},
		{name: "key_with_dot_is_not_nesting", a: `{"ToUserName":"g","FromUserName":"o","CreateTime":1,"MsgType":"x","a":{"b":"1"}}`, b: `{"ToUserName":"g","FromUserName":"o","CreateTime":1,"MsgType":"x","a.b":"1"}`},
		{name: "value_boundaries", a: `{"ToUserName":"g","FromUserName":"o","CreateTime":1,"MsgType":"x","a":"bc","ab":"c"}`, b: `{"ToUserName":"g","FromUserName":"o","CreateTime":1,"MsgType":"x","a":"b","ab":"cc"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			appB := tt.appIDB
			if appB == "" {
				appB = appSample
			}
			a, b := mustParse(t, appSample, tt.a), mustParse(t, appB, tt.b)
			if a.ID() == b.ID() {
				t.Errorf("ID of %q = ID of %q = %s, want different", tt.a, tt.b, a.ID())
			}
		})
	}
}

func TestEventIDFormatAndStability(t *testing.T) {
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, msg := range []string{sampleXMLPopup, sampleJSONSent, sampleV1, sampleV2} {
		e := mustParse(t, appSample, msg)
		id := e.ID()
		if !hex32.MatchString(id) {
			t.Errorf("ID() = %q, want 32 lower-case hex digits", id)
		}
		if again := e.ID(); again != id {
			t.Errorf("ID() = %q then %q, want deterministic", id, again)
		}
		// A consumer decoding the event from the stream gets the same id.
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var back Event
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if got := back.ID(); got != id {
			t.Errorf("ID() after a JSON round trip = %q, want %q", got, id)
		}
	}
}

// TestEventIDPinned fixes the ids of the documented samples: ids are stored
// for dedupe, so a change of scheme must be deliberate (and change eventIDLabel).
func TestEventIDPinned(t *testing.T) {
	tests := []struct {
		name  string
		appID string
		msg   string
		want  string
	}{
		{name: "xml_popup", appID: appSample, msg: sampleXMLPopup, want: "6174d0c21f473b9f75b7c4c32830da54"},
		{name: "json_sent", appID: appSample, msg: sampleJSONSent, want: "a3f0a9b0d805e01a796319bb11e26f01"},
		{name: "v2_text", appID: appV2, msg: sampleV2, want: "9ac372285317f2cf213156325a528c85"},
	}
	for _, tt := range tests {
		if got := mustParse(t, tt.appID, tt.msg).ID(); got != tt.want {
			t.Errorf("%s: ParseEvent(%q).ID() = %q, want %q", tt.name, tt.msg, got, tt.want)
		}
	}
}

func TestEventIDWithoutRaw(t *testing.T) {
	tests := []struct {
		name string
		msg  string
	}{
		{name: "popup", msg: sampleXMLPopup},
		{name: "change", msg: sampleJSONChange},
		{name: "sent", msg: sampleJSONSent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parsed := mustParse(t, appSample, tt.msg)
			byHand := *parsed
			byHand.Raw = ""
			if got, want := byHand.ID(), parsed.ID(); got != want {
				t.Errorf("ID() of %+v = %q, want the parsed push's %q", byHand, got, want)
			}
			byHand.Raw = "not a message"
			if got, want := byHand.ID(), parsed.ID(); got != want {
				t.Errorf("ID() with unparseable Raw = %q, want %q", got, want)
			}
			other := byHand
			other.Items = append([]Item(nil), byHand.Items...)
			other.Items[0].TemplateID += "x"
			if other.ID() == byHand.ID() {
				t.Errorf("ID() of hand-built events with different templates are equal")
			}
		})
	}
}

func BenchmarkEventID(b *testing.B) {
	e, err := ParseEvent(appSample, []byte(sampleXMLPopup))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = e.ID()
	}
}

// TestParseEventWithIDMatchesID checks that the id hashed from ParseEvent's own
// document is the id ID computes from Raw, for every sample.
func TestParseEventWithIDMatchesID(t *testing.T) {
	for name, msg := range map[string]string{
		"xml popup":   `<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName><CreateTime>1610969440</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe_msg_popup_event]]></Event><SubscribeMsgPopupEvent><List><TemplateId><![CDATA[T1]]></TemplateId><SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString><PopupScene>2</PopupScene></List></SubscribeMsgPopupEvent></xml>`,
		"json sent":   `{"ToUserName":"gh_1","FromUserName":"o1","CreateTime":"1620963428","MsgType":"event","Event":"subscribe_msg_sent_event","List":{"TemplateId":"T1","MsgID":"1864323726461255680","ErrorCode":"0","ErrorStatus":"success"}}`,
		"compat json": `{"ToUserName":"gh_1","FromUserName":"o1","CreateTime":1,"MsgType":"text","Content":"hi","MsgId":7,"Encrypt":"abc"}`,
	} {
		e, id, err := ParseEventWithID("wx0123456789abcdef", []byte(msg))
		if err != nil {
			t.Fatalf("%s: ParseEventWithID = %v", name, err)
		}
		if want := e.ID(); id != want {
			t.Errorf("%s: ParseEventWithID id = %s, want ID() = %s", name, id, want)
		}
	}
}
