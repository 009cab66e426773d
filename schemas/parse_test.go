package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var updateGoldens = flag.Bool("update", false, "rewrite the golden files in testdata/")

// Samples from WeChat's documentation and the official test vectors.
const (
	appSample = "wx0123456789abcdef"
	appV1     = "wxba5fad812f8e6fb9"
	appV2     = "wx2c2769f8efd9abc2"

	// sampleXMLPopup is the documented XML popup event with two items.
	sampleXMLPopup = `<xml><ToUserName><![CDATA[gh_123456789abc]]></ToUserName><FromUserName><![CDATA[otFpruAK8D-E6EfStSYonYSBZ8_4]]></FromUserName><CreateTime>1610969440</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe_msg_popup_event]]></Event><SubscribeMsgPopupEvent><List><TemplateId><![CDATA[VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc]]></TemplateId><SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString><PopupScene>2</PopupScene></List><List><TemplateId><![CDATA[9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI]]></TemplateId><SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString><PopupScene>2</PopupScene></List></SubscribeMsgPopupEvent></xml>`

	// sampleJSONSent is the documented JSON sent event: one item, numbers as strings.
	sampleJSONSent = `{"ToUserName":"gh_123456789abc","FromUserName":"o7esq5PHRGBQYmeNyfG064wEFVpQ","CreateTime":"1620963428","MsgType":"event","Event":"subscribe_msg_sent_event","List":{"TemplateId":"BEwX0BO-T3MqK3Uc5oTU3CGBqzjpndk2jzUf7VfExd8","MsgID":"1864323726461255680","ErrorCode":"0","ErrorStatus":"success"}}`

	// sampleV1 is test vector V1 decrypted: a JSON debug event.
	sampleV1 = `{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY","CreateTime":1714112445,"MsgType":"event","Event":"debug_demo","debug_str":"hello world"}`

	// sampleV2 is test vector V2 decrypted: an XML text message.
	sampleV2 = "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>\n<CreateTime>1409735668</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[abcdteT]]></Content>\n<MsgId>6054768590064713728</MsgId>\n</xml>"

	// sampleJSONSentNumbers is sampleJSONSent as captured pushes send it: numbers as numbers.
	sampleJSONSentNumbers = `{"ToUserName":"gh_123456789abc","FromUserName":"o7esq5PHRGBQYmeNyfG064wEFVpQ","CreateTime":1620963428,"MsgType":"event","Event":"subscribe_msg_sent_event","List":{"TemplateId":"BEwX0BO-T3MqK3Uc5oTU3CGBqzjpndk2jzUf7VfExd8","MsgID":1864323726461255680,"ErrorCode":0,"ErrorStatus":"success"}}`

	// sampleJSONSentNested is sampleJSONSent with the XML-style wrapper one SDK has seen in JSON.
	sampleJSONSentNested = `{"ToUserName":"gh_123456789abc","FromUserName":"o7esq5PHRGBQYmeNyfG064wEFVpQ","CreateTime":"1620963428","MsgType":"event","Event":"subscribe_msg_sent_event","SubscribeMsgSentEvent":{"List":{"TemplateId":"BEwX0BO-T3MqK3Uc5oTU3CGBqzjpndk2jzUf7VfExd8","MsgID":"1864323726461255680","ErrorCode":"0","ErrorStatus":"success"}}}`

	// sampleXMLSent is sampleJSONSent in XML.
	sampleXMLSent = `<xml><ToUserName><![CDATA[gh_123456789abc]]></ToUserName><FromUserName><![CDATA[o7esq5PHRGBQYmeNyfG064wEFVpQ]]></FromUserName><CreateTime>1620963428</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe_msg_sent_event]]></Event><SubscribeMsgSentEvent><List><TemplateId><![CDATA[BEwX0BO-T3MqK3Uc5oTU3CGBqzjpndk2jzUf7VfExd8]]></TemplateId><MsgID>1864323726461255680</MsgID><ErrorCode>0</ErrorCode><ErrorStatus><![CDATA[success]]></ErrorStatus></List></SubscribeMsgSentEvent></xml>`

	// sampleJSONPopup is sampleXMLPopup in JSON: List as an array, PopupScene as numbers.
	sampleJSONPopup = `{"ToUserName":"gh_123456789abc","FromUserName":"otFpruAK8D-E6EfStSYonYSBZ8_4","CreateTime":1610969440,"MsgType":"event","Event":"subscribe_msg_popup_event","List":[{"TemplateId":"VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc","SubscribeStatusString":"accept","PopupScene":2},{"TemplateId":"9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI","SubscribeStatusString":"reject","PopupScene":"2"}]}`

	// sampleXMLChange is a change event: the user turned a template off in WeChat's settings.
	sampleXMLChange = `<xml><ToUserName><![CDATA[gh_123456789abc]]></ToUserName><FromUserName><![CDATA[otFpruAK8D-E6EfStSYonYSBZ8_4]]></FromUserName><CreateTime>1610968440</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe_msg_change_event]]></Event><SubscribeMsgChangeEvent><List><TemplateId><![CDATA[VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc]]></TemplateId><SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString></List></SubscribeMsgChangeEvent></xml>`

	// sampleJSONChange is sampleXMLChange in JSON.
	sampleJSONChange = `{"ToUserName":"gh_123456789abc","FromUserName":"otFpruAK8D-E6EfStSYonYSBZ8_4","CreateTime":1610968440,"MsgType":"event","Event":"subscribe_msg_change_event","List":{"TemplateId":"VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc","SubscribeStatusString":"reject"}}`
)

// popupItems are the items of sampleXMLPopup and sampleJSONPopup.
func popupItems() []Item {
	return []Item{
		{TemplateID: "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc", Status: StatusAccept, PopupScene: 2},
		{TemplateID: "9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI", Status: StatusReject, PopupScene: 2},
	}
}

// sentEvent is the Event of sampleJSONSent and its variants, without Raw.
func sentEvent(msgID string) Event {
	return Event{
		AppID: appSample, OpenID: "o7esq5PHRGBQYmeNyfG064wEFVpQ", ToUser: "gh_123456789abc",
		CreateTime: 1620963428, MsgType: "event", Event: EventSubscribeSent,
		Items: []Item{{TemplateID: "BEwX0BO-T3MqK3Uc5oTU3CGBqzjpndk2jzUf7VfExd8", MsgID: msgID, ErrorStatus: "success"}},
	}
}

func TestParseEvent(t *testing.T) {
	popup := Event{
		AppID: appSample, OpenID: "otFpruAK8D-E6EfStSYonYSBZ8_4", ToUser: "gh_123456789abc",
		CreateTime: 1610969440, MsgType: "event", Event: EventSubscribePopup, Items: popupItems(),
	}
	change := Event{
		AppID: appSample, OpenID: "otFpruAK8D-E6EfStSYonYSBZ8_4", ToUser: "gh_123456789abc",
		CreateTime: 1610968440, MsgType: "event", Event: EventSubscribeChange,
		Items: []Item{{TemplateID: "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc", Status: StatusReject}},
	}
	tests := []struct {
		name        string
		appID       string
		msg         string
		want        Event
		wantSubject string
		wantType    string
	}{
		{
			name: "xml_popup_two_items", appID: appSample, msg: sampleXMLPopup, want: popup,
			wantSubject: "wechat." + appSample + ".in.subscribe_msg_popup_event", wantType: "wechat.in.subscribe_msg_popup_event",
		},
		{
			name: "json_popup_array_list", appID: appSample, msg: sampleJSONPopup, want: popup,
			wantSubject: "wechat." + appSample + ".in.subscribe_msg_popup_event", wantType: "wechat.in.subscribe_msg_popup_event",
		},
		{
			name: "json_sent_object_list_string_numbers", appID: appSample, msg: sampleJSONSent, want: sentEvent("1864323726461255680"),
			wantSubject: "wechat." + appSample + ".in.subscribe_msg_sent_event", wantType: "wechat.in.subscribe_msg_sent_event",
		},
		{
			name: "json_sent_numbers", appID: appSample, msg: sampleJSONSentNumbers, want: sentEvent("1864323726461255680"),
			wantSubject: "wechat." + appSample + ".in.subscribe_msg_sent_event", wantType: "wechat.in.subscribe_msg_sent_event",
		},
		{
			name: "json_sent_nested_wrapper", appID: appSample, msg: sampleJSONSentNested, want: sentEvent("1864323726461255680"),
			wantSubject: "wechat." + appSample + ".in.subscribe_msg_sent_event", wantType: "wechat.in.subscribe_msg_sent_event",
		},
		{
			name: "xml_sent", appID: appSample, msg: sampleXMLSent, want: sentEvent("1864323726461255680"),
			wantSubject: "wechat." + appSample + ".in.subscribe_msg_sent_event", wantType: "wechat.in.subscribe_msg_sent_event",
		},
		{
			name:  "json_sent_msgid_max_uint64",
			appID: appSample,
			msg:   strings.Replace(sampleJSONSentNumbers, "1864323726461255680", "18446744073709551615", 1),
			want:  sentEvent("18446744073709551615"), wantSubject: "wechat." + appSample + ".in.subscribe_msg_sent_event",
			wantType: "wechat.in.subscribe_msg_sent_event",
		},
		{
			name:  "json_sent_msgid_alias_failed",
			appID: appSample,
			msg:   `{"ToUserName":"gh_123456789abc","FromUserName":"o7esq5PHRGBQYmeNyfG064wEFVpQ","CreateTime":1620963428,"MsgType":"event","Event":"subscribe_msg_sent_event","List":[{"TemplateId":"BEwX0BO-T3MqK3Uc5oTU3CGBqzjpndk2jzUf7VfExd8","MsgId":1864323726461255681,"ErrorCode":10001,"ErrorStatus":"fail"}]}`,
			want: func() Event {
				e := sentEvent("1864323726461255681")
				e.Items[0].ErrorCode = 10001
				e.Items[0].ErrorStatus = "fail"
				return e
			}(),
			wantSubject: "wechat." + appSample + ".in.subscribe_msg_sent_event", wantType: "wechat.in.subscribe_msg_sent_event",
		},
		{
			name: "xml_change", appID: appSample, msg: sampleXMLChange, want: change,
			wantSubject: "wechat." + appSample + ".in.subscribe_msg_change_event", wantType: "wechat.in.subscribe_msg_change_event",
		},
		{
			name: "json_change", appID: appSample, msg: sampleJSONChange, want: change,
			wantSubject: "wechat." + appSample + ".in.subscribe_msg_change_event", wantType: "wechat.in.subscribe_msg_change_event",
		},
		{
			name: "json_popup_nested_array", appID: appSample,
			msg:  `{"ToUserName":"gh_123456789abc","FromUserName":"otFpruAK8D-E6EfStSYonYSBZ8_4","CreateTime":"1610969440","MsgType":"event","Event":"subscribe_msg_popup_event","SubscribeMsgPopupEvent":{"List":[{"TemplateId":"VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc","SubscribeStatusString":"accept","PopupScene":"2"},{"TemplateId":"9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI","SubscribeStatusString":"reject","PopupScene":"2"}]}}`,
			want: popup, wantSubject: "wechat." + appSample + ".in.subscribe_msg_popup_event", wantType: "wechat.in.subscribe_msg_popup_event",
		},
		{
			name: "v1_json_unknown_event_kept", appID: appV1, msg: sampleV1,
			want: Event{
				AppID: appV1, OpenID: "o9AgO5Kd5ggOC-bXrbNODIiE3bGY", ToUser: "gh_97417a04a28d",
				CreateTime: 1714112445, MsgType: "event", Event: "debug_demo",
			},
			wantSubject: "wechat." + appV1 + ".in.debug_demo", wantType: "wechat.in.debug_demo",
		},
		{
			name: "v2_xml_text_message", appID: appV2, msg: sampleV2,
			want: Event{
				AppID: appV2, OpenID: "oyORnuP8q7ou2gfYjqLzSIWZf0rs", ToUser: "gh_10f6c3c3ac5a",
				CreateTime: 1409735668, MsgType: "text",
			},
			wantSubject: "wechat.wx2c2769f8efd9abc2.in.text", wantType: "wechat.in.text",
		},
		{
			name: "compatible_body_with_encrypt", appID: appV2,
			msg: "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName><CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[abcdteT]]></Content><MsgId>6054768590064713728</MsgId><Encrypt><![CDATA[hyzAe4Oz]]></Encrypt></xml>",
			want: Event{
				AppID: appV2, OpenID: "oyORnuP8q7ou2gfYjqLzSIWZf0rs", ToUser: "gh_10f6c3c3ac5a",
				CreateTime: 1409735668, MsgType: "text",
			},
			wantSubject: "wechat.wx2c2769f8efd9abc2.in.text", wantType: "wechat.in.text",
		},
		{
			name: "unknown_event_with_list_has_no_items", appID: appSample,
			msg: `{"ToUserName":"gh_1","FromUserName":"o1","CreateTime":1,"MsgType":"event","Event":"Future_Event","List":[{"TemplateId":"t","SubscribeStatusString":"maybe"}]}`,
			want: Event{
				AppID: appSample, OpenID: "o1", ToUser: "gh_1", CreateTime: 1, MsgType: "event", Event: "Future_Event",
			},
			wantSubject: "wechat." + appSample + ".in.future_event", wantType: "wechat.in.future_event",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEvent(tt.appID, []byte(tt.msg))
			if err != nil {
				t.Fatalf("ParseEvent(%q) error = %v", tt.msg, err)
			}
			want := tt.want
			want.Raw = tt.msg
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("ParseEvent(%q) = %+v, want %+v", tt.msg, *got, want)
			}
			if s := got.Subject(); s != tt.wantSubject {
				t.Errorf("Subject() = %q, want %q", s, tt.wantSubject)
			}
			if typ := got.Type(); typ != tt.wantType {
				t.Errorf("Type() = %q, want %q", typ, tt.wantType)
			}
			if err := Validate(got); err != nil {
				t.Errorf("Validate(ParseEvent(%q)) = %v, want nil", tt.msg, err)
			}
			checkGolden(t, filepath.Join("testdata", "events", tt.name+".json"), got)
		})
	}
}

// checkGolden compares v, marshalled as indented JSON, with a golden file,
// or rewrites the file under -update.
func checkGolden(t *testing.T, path string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatalf("json.MarshalIndent: %v", err)
	}
	got = append(got, '\n')
	if *updateGoldens {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden (run go test -update): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestParseEventMalformed(t *testing.T) {
	deep := strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40)
	tests := []struct {
		name  string
		appID string
		msg   string
	}{
		{name: "empty", msg: ""},
		{name: "white_space", msg: " \n\t "},
		{name: "junk", msg: "hello world"},
		{name: "truncated_xml", msg: sampleXMLPopup[:len(sampleXMLPopup)/2]},
		{name: "truncated_json", msg: sampleJSONSent[:len(sampleJSONSent)-1]},
		{name: "json_array_top_level", msg: `[` + sampleJSONSent + `]`},
		{name: "json_string_top_level", msg: `"x"`},
		{name: "missing_from_user_xml", msg: strings.Replace(sampleXMLPopup, "<FromUserName><![CDATA[otFpruAK8D-E6EfStSYonYSBZ8_4]]></FromUserName>", "", 1)},
		{name: "missing_from_user_json", msg: strings.Replace(sampleJSONSent, `"FromUserName":"o7esq5PHRGBQYmeNyfG064wEFVpQ",`, "", 1)},
		{name: "empty_from_user", msg: strings.Replace(sampleJSONSent, `"FromUserName":"o7esq5PHRGBQYmeNyfG064wEFVpQ"`, `"FromUserName":"  "`, 1)},
		{name: "missing_to_user", msg: strings.Replace(sampleJSONSent, `"ToUserName":"gh_123456789abc",`, "", 1)},
		{name: "missing_create_time", msg: strings.Replace(sampleJSONSent, `"CreateTime":"1620963428",`, "", 1)},
		{name: "create_time_not_integer", msg: strings.Replace(sampleJSONSent, `"1620963428"`, `"16209634.28"`, 1)},
		{name: "create_time_negative", msg: strings.Replace(sampleJSONSent, `"1620963428"`, `-5`, 1)},
		{name: "create_time_object", msg: strings.Replace(sampleJSONSent, `"1620963428"`, `{"v":1}`, 1)},
		{name: "missing_msg_type", msg: strings.Replace(sampleJSONSent, `"MsgType":"event",`, "", 1)},
		{name: "event_type_without_event", msg: strings.Replace(sampleJSONSent, `"Event":"subscribe_msg_sent_event",`, "", 1)},
		{name: "popup_status_maybe", msg: strings.Replace(sampleXMLPopup, "[reject]", "[maybe]", 1)},
		{name: "popup_status_ban", msg: strings.Replace(sampleXMLPopup, "[reject]", "[ban]", 1)},
		{name: "change_status_upper_case", msg: strings.Replace(sampleJSONChange, `"reject"`, `"REJECT"`, 1)},
		{name: "popup_without_items", msg: `{"ToUserName":"gh_1","FromUserName":"o1","CreateTime":1,"MsgType":"event","Event":"subscribe_msg_popup_event"}`},
		{name: "popup_empty_list", msg: `{"ToUserName":"gh_1","FromUserName":"o1","CreateTime":1,"MsgType":"event","Event":"subscribe_msg_popup_event","List":[]}`},
		{name: "popup_item_without_template", msg: strings.Replace(sampleJSONPopup, `"TemplateId":"VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc",`, "", 1)},
		{name: "popup_scene_not_integer", msg: strings.Replace(sampleJSONPopup, `"PopupScene":2`, `"PopupScene":"two"`, 1)},
		{name: "popup_item_not_object", msg: `{"ToUserName":"gh_1","FromUserName":"o1","CreateTime":1,"MsgType":"event","Event":"subscribe_msg_popup_event","List":["x"]}`},
		{name: "sent_without_msgid", msg: strings.Replace(sampleJSONSent, `"MsgID":"1864323726461255680",`, "", 1)},
		{name: "sent_error_code_overflow", msg: strings.Replace(sampleJSONSent, `"ErrorCode":"0"`, `"ErrorCode":"99999999999999999999999"`, 1)},
		{name: "sent_msgid_and_msgid_alias", msg: strings.Replace(sampleJSONSent, `"MsgID":"1864323726461255680",`, `"MsgID":"1","MsgId":"2",`, 1)},
		{name: "missing_appid", appID: "-", msg: sampleJSONSent},
		{name: "invalid_utf8", msg: strings.Replace(sampleJSONSent, "success", "succ\xffess", 1)},
		{name: "duplicate_json_key", msg: strings.Replace(sampleJSONSent, `"MsgType":"event",`, `"MsgType":"event","MsgType":"text",`, 1)},
		{name: "duplicate_xml_field", msg: strings.Replace(sampleXMLPopup, "<MsgType>", "<FromUserName>x</FromUserName><MsgType>", 1)},
		{name: "json_trailing_data", msg: sampleJSONSent + `{}`},
		{name: "xml_trailing_element", msg: sampleXMLPopup + `<xml></xml>`},
		{name: "xml_trailing_text", msg: sampleXMLPopup + `junk`},
		{name: "xml_root_not_xml", msg: strings.Replace(strings.Replace(sampleXMLPopup, "<xml>", "<msg>", 1), "</xml>", "</msg>", 1)},
		{name: "xml_doctype", msg: `<!DOCTYPE xml [<!ENTITY e "x">]>` + sampleXMLPopup},
		{name: "xml_unknown_entity", msg: strings.Replace(sampleXMLPopup, "<CreateTime>1610969440", "<CreateTime>&e;", 1)},
		{name: "xml_mixed_content", msg: strings.Replace(sampleXMLPopup, "<List>", "<List>text", 1)},
		{name: "xml_root_text_only", msg: `<xml>hello</xml>`},
		{name: "xml_empty_root", msg: `<xml></xml>`},
		{name: "json_empty_object", msg: `{}`},
		{name: "json_too_deep", msg: deep},
		{name: "too_large", msg: `{"ToUserName":"` + strings.Repeat("a", MaxMessageSize) + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			appID := tt.appID
			switch appID {
			case "":
				appID = appSample
			case "-":
				appID = ""
			}
			got, err := ParseEvent(appID, []byte(tt.msg))
			t.Logf("error: %v", err)
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseEvent(%q) = %+v, %v, want ErrMalformed", shortName(tt.msg), got, err)
			}
			if got != nil {
				t.Errorf("ParseEvent(%q) returned an event with an error", shortName(tt.msg))
			}
		})
	}
}

// TestParseEventErrorsHideValues checks that errors name fields, never their values.
func TestParseEventErrorsHideValues(t *testing.T) {
	const secret = "o7esq5PHRGBQYmeNyfG064wEFVpQ"
	msgs := []string{
		strings.Replace(sampleJSONSent, `"1620963428"`, `"`+secret+`"`, 1),
		strings.Replace(sampleJSONSent, `"success"`, `{"`+secret+`":1,"`+secret+`":2}`, 1),
		strings.Replace(sampleJSONSent, `"MsgID":"1864323726461255680",`, `"MsgID":"`+secret+`","MsgId":"`+secret+`",`, 1),
		strings.Replace(sampleJSONSent, `"MsgType":"event",`, "", 1),
		"<xml><" + secret + "></xml>",
	}
	for _, msg := range msgs {
		_, err := ParseEvent(appSample, []byte(msg))
		if err == nil {
			t.Fatalf("ParseEvent(%q) error = nil, want an error", msg)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "o7esq5") {
			t.Errorf("ParseEvent(%q) error %q repeats a value", msg, err)
		}
	}
}

func TestParseEventMsgIDExact(t *testing.T) {
	tests := []struct {
		name string
		id   string
	}{
		{name: "documented", id: "1864323726461255680"},
		{name: "max_uint64", id: "18446744073709551615"},
		{name: "beyond_uint64", id: "184467440737095516150"},
		{name: "two_pow_53_plus_one", id: "9007199254740993"},
	}
	for _, tt := range tests {
		for _, form := range []string{`"` + tt.id + `"`, tt.id} {
			msg := strings.Replace(sampleJSONSent, `"1864323726461255680"`, form, 1)
			e, err := ParseEvent(appSample, []byte(msg))
			if err != nil {
				t.Fatalf("ParseEvent(%q) error = %v", msg, err)
			}
			if got := e.Items[0].MsgID; got != tt.id {
				t.Errorf("%s: ParseEvent(%q).Items[0].MsgID = %q, want %q", tt.name, msg, got, tt.id)
			}
			b, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte(`"msg_id":"`+tt.id+`"`)) {
				t.Errorf("%s: json.Marshal(event) = %s, want msg_id %q as a string", tt.name, b, tt.id)
			}
		}
	}
}

func TestValidate(t *testing.T) {
	valid := func() *Event {
		e := sentEvent("1")
		e.Raw = "{}"
		return &e
	}
	tests := []struct {
		name    string
		mutate  func(*Event)
		wantErr bool
		// wantField is a field name the error must mention.
		wantField string
	}{
		{name: "valid_sent", mutate: func(*Event) {}},
		{name: "valid_plain_message", mutate: func(e *Event) { e.MsgType, e.Event, e.Items = "image", "", nil }},
		{name: "valid_unknown_event_lenient", mutate: func(e *Event) { e.Event = "something_new"; e.Items[0].Status = "whatever"; e.Items[0].MsgID = "" }},
		{name: "valid_change", mutate: func(e *Event) {
			e.Event = EventSubscribeChange
			e.Items = []Item{{TemplateID: "t", Status: StatusReject}}
		}},
		{name: "nil_items_sent", mutate: func(e *Event) { e.Items = nil }, wantErr: true, wantField: "items"},
		{name: "no_appid", mutate: func(e *Event) { e.AppID = "" }, wantErr: true, wantField: "appid"},
		{name: "no_openid", mutate: func(e *Event) { e.OpenID = "" }, wantErr: true, wantField: "openid"},
		{name: "no_to_user", mutate: func(e *Event) { e.ToUser = "" }, wantErr: true, wantField: "to_user"},
		{name: "zero_create_time", mutate: func(e *Event) { e.CreateTime = 0 }, wantErr: true, wantField: "create_time"},
		{name: "no_msg_type", mutate: func(e *Event) { e.MsgType = "" }, wantErr: true, wantField: "msg_type"},
		{name: "event_without_name", mutate: func(e *Event) { e.Event = ""; e.Items = nil }, wantErr: true, wantField: "event"},
		{name: "item_without_template", mutate: func(e *Event) { e.Items[0].TemplateID = "" }, wantErr: true, wantField: "items[0].template_id"},
		{name: "sent_without_msgid", mutate: func(e *Event) { e.Items[0].MsgID = "" }, wantErr: true, wantField: "items[0].msg_id"},
		{name: "popup_bad_status", mutate: func(e *Event) {
			e.Event = EventSubscribePopup
			e.Items = []Item{{TemplateID: "a", Status: StatusAccept}, {TemplateID: "b", Status: "filter"}}
		}, wantErr: true, wantField: "items[1].status"},
		{name: "many_errors_bounded", mutate: func(e *Event) {
			e.Event = EventSubscribePopup
			e.Items = make([]Item, 1000)
		}, wantErr: true, wantField: "more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := valid()
			tt.mutate(e)
			err := Validate(e)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate(%+v) = %v, want error %v", e, err, tt.wantErr)
			}
			if err == nil {
				return
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("Validate(%+v) = %v, want ErrMalformed", e, err)
			}
			if !strings.Contains(err.Error(), tt.wantField) {
				t.Errorf("Validate(%+v) = %q, want it to name %q", e, err, tt.wantField)
			}
			if len(err.Error()) > 400 {
				t.Errorf("Validate error is %d bytes long, want a bounded message", len(err.Error()))
			}
		})
	}
	if err := Validate(nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("Validate(nil) = %v, want ErrMalformed", err)
	}
}

func TestParseEventConcurrent(t *testing.T) {
	done := make(chan error)
	for range 8 {
		go func() {
			for range 50 {
				if _, err := ParseEvent(appSample, []byte(sampleXMLPopup)); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Errorf("ParseEvent = %v", err)
		}
	}
}

func BenchmarkParseEventJSON(b *testing.B) {
	msg := []byte(sampleJSONPopup)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseEvent(appSample, msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseEventXML(b *testing.B) {
	msg := []byte(sampleXMLPopup)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseEvent(appSample, msg); err != nil {
			b.Fatal(err)
		}
	}
}
