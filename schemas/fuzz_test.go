package schemas

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// checkParsed holds the properties every ParseEvent result must have: a
// failure is ErrMalformed and nothing else; a success validates, survives a
// JSON round trip with its id, and makes a CloudEvent that decodes back.
func checkParsed(t *testing.T, msg []byte) {
	t.Helper()
	e, err := ParseEvent(appSample, msg)
	if err != nil {
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("ParseEvent(%q) error = %v, want ErrMalformed", msg, err)
		}
		if e != nil {
			t.Fatalf("ParseEvent(%q) returned an event with error %v", msg, err)
		}
		return
	}
	if err := Validate(e); err != nil {
		t.Fatalf("Validate(ParseEvent(%q)) = %v", msg, err)
	}
	if e.Raw != string(msg) {
		t.Fatalf("Raw = %q, want %q", e.Raw, msg)
	}
	id := e.ID()
	if len(id) != eventIDHexLen || e.ID() != id {
		t.Fatalf("ID() = %q, not a stable 32-digit id", id)
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatalf("json.Marshal(%+v) = %v", e, err)
	}
	var back Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("json.Unmarshal(%s) = %v", b, err)
	}
	if !reflect.DeepEqual(&back, e) {
		t.Fatalf("JSON round trip = %+v, want %+v", back, *e)
	}
	if back.ID() != id {
		t.Fatalf("ID after JSON round trip = %q, want %q", back.ID(), id)
	}
	bb, err := bson.Marshal(e)
	if err != nil {
		t.Fatalf("bson.Marshal(%+v) = %v", e, err)
	}
	var bback Event
	if err := bson.Unmarshal(bb, &bback); err != nil {
		t.Fatalf("bson.Unmarshal(%v) = %v", bson.Raw(bb), err)
	}
	if !reflect.DeepEqual(&bback, e) {
		t.Fatalf("BSON round trip = %+v, want %+v", bback, *e)
	}
	checkItemKeys(t, e, "json", jsonItemKeys(t, b))
	checkItemKeys(t, e, "bson", bsonItemKeys(t, bb))
	if s := e.Subject(); !strings.HasPrefix(s, "wechat."+appSample+".in.") || strings.ContainsAny(s[len("wechat."+appSample+".in."):], ".*> ") {
		t.Fatalf("Subject() = %q, not one token under wechat.{appid}.in", s)
	}
	ce, err := InboundCloudEvent(e, time.Unix(1, 0))
	if err != nil {
		t.Fatalf("InboundCloudEvent = %v", err)
	}
	cb, err := json.Marshal(ce)
	if err != nil {
		t.Fatalf("json.Marshal(CloudEvent) = %v", err)
	}
	if _, err := DecodeCloudEvent(cb); err != nil {
		t.Fatalf("DecodeCloudEvent(%s) = %v", cb, err)
	}
	// The gateway reads the envelope of a plaintext body first: it must agree.
	if _, err := ParseEnvelope(msg); err != nil {
		t.Fatalf("ParseEnvelope(%q) = %v, but ParseEvent accepted it", msg, err)
	}
}

// checkItemKeys checks the keys of the written items of e: popup_scene on
// every popup item, error_code on every sent item, and elsewhere only when
// not 0.
func checkItemKeys(t *testing.T, e *Event, format string, keys [][]string) {
	t.Helper()
	if len(keys) != len(e.Items) {
		t.Fatalf("%s: %d items written, want %d", format, len(keys), len(e.Items))
	}
	for i, k := range keys {
		it := e.Items[i]
		if got, want := slices.Contains(k, "popup_scene"), e.Event == EventSubscribePopup || it.PopupScene != 0; got != want {
			t.Fatalf("%s: %s items[%d] %+v written with keys %q: popup_scene present = %v, want %v", format, e.Event, i, it, k, got, want)
		}
		if got, want := slices.Contains(k, "error_code"), e.Event == EventSubscribeSent || it.ErrorCode != 0; got != want {
			t.Fatalf("%s: %s items[%d] %+v written with keys %q: error_code present = %v, want %v", format, e.Event, i, it, k, got, want)
		}
	}
}

func FuzzParseEventXML(f *testing.F) {
	for _, s := range []string{
		sampleXMLPopup, sampleXMLSent, sampleXMLChange, sampleV2,
		indentXML(sampleXMLPopup),
		`<?xml version="1.0"?><xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><CreateTime>1</CreateTime><MsgType>image</MsgType></xml>`,
		`<xml><List/></xml>`, `<xml>`, `<xml></xml>`, `<!DOCTYPE x><xml/>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(checkParsed)
}

func FuzzParseEventJSON(f *testing.F) {
	for _, s := range []string{
		sampleJSONSent, sampleJSONSentNumbers, sampleJSONSentNested, sampleJSONPopup, sampleJSONChange, sampleV1,
		`{"ToUserName":"a","FromUserName":"b","CreateTime":1,"MsgType":"event","Event":"x","List":[[{"a":null}],true,1e5]}`,
		`{}`, `{"List":`, `{"a":1,"a":2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(checkParsed)
}

func FuzzParseEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"ToUserName":"gh_97417a04a28d","Encrypt":"` + v1Encrypt + `"}`,
		"<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><Encrypt><![CDATA[" + v2Encrypt + "]]></Encrypt></xml>",
		sampleXMLPopup, sampleJSONSent, ``, `<xml><Encrypt>a</Encrypt><Encrypt>b</Encrypt></xml>`, `{"Encrypt":{}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		env, err := ParseEnvelope(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseEnvelope(%q) error = %v, want ErrMalformed", body, err)
			}
			return
		}
		f, ferr := DetectFormat(body)
		if ferr != nil || f != env.Format {
			t.Fatalf("ParseEnvelope(%q).Format = %v, DetectFormat = %v, %v", body, env.Format, f, ferr)
		}
		if strings.TrimSpace(env.Encrypt) != env.Encrypt || strings.TrimSpace(env.ToUserName) != env.ToUserName {
			t.Fatalf("ParseEnvelope(%q) = %+v, want trimmed fields", body, env)
		}
	})
}
