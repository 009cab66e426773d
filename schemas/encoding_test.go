package schemas

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// eventRecord is how the store keeps an Event: inside a document of its own.
type eventRecord struct {
	ID   string `bson:"_id"`
	Data Event  `bson:"data"`
}

// bsonKeys returns the keys of a BSON document, in order.
func bsonKeys(t *testing.T, doc bson.Raw) []string {
	t.Helper()
	elems, err := doc.Elements()
	if err != nil {
		t.Fatalf("bson document %v: %v", doc, err)
	}
	keys := make([]string, 0, len(elems))
	for _, e := range elems {
		keys = append(keys, e.Key())
	}
	return keys
}

// bsonItemKeys returns the keys of each item of a BSON event document.
func bsonItemKeys(t *testing.T, doc bson.Raw) [][]string {
	t.Helper()
	v, err := doc.LookupErr("items")
	if err != nil {
		return nil
	}
	arr, ok := v.ArrayOK()
	if !ok {
		t.Fatalf("items is BSON %v, want an array", v.Type)
	}
	vals, err := arr.Values()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for i, v := range vals {
		d, ok := v.DocumentOK()
		if !ok {
			t.Fatalf("items[%d] is BSON %v, want a document", i, v.Type)
		}
		out = append(out, bsonKeys(t, d))
	}
	return out
}

// TestEventBSONTagsMatchJSON checks that every field of Event and Item has
// the same name in BSON as in JSON, and is left out of BSON when empty.
func TestEventBSONTagsMatchJSON(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeFor[Event](), reflect.TypeFor[Item]()} {
		for i := range typ.NumField() {
			f := typ.Field(i)
			jsonName, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			bsonName, bsonOpts, _ := strings.Cut(f.Tag.Get("bson"), ",")
			if bsonName != jsonName {
				t.Errorf("%s.%s: bson name %q, json name %q, want equal", typ.Name(), f.Name, bsonName, jsonName)
			}
			if !slices.Contains(strings.Split(bsonOpts, ","), "omitempty") {
				t.Errorf("%s.%s: bson tag %q, want omitempty", typ.Name(), f.Name, f.Tag.Get("bson"))
			}
		}
	}
}

// jsonKeys returns the keys of a JSON object, in order, and its values.
func jsonKeys(t *testing.T, b []byte) ([]string, []json.RawMessage) {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("%s is not a JSON object", b)
	}
	var (
		keys []string
		vals []json.RawMessage
	)
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		vals = append(vals, v)
	}
	return keys, vals
}

// jsonItemKeys returns the keys of each item of a JSON event object.
func jsonItemKeys(t *testing.T, b []byte) [][]string {
	t.Helper()
	keys, vals := jsonKeys(t, b)
	i := slices.Index(keys, "items")
	if i < 0 {
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(vals[i], &items); err != nil {
		t.Fatalf("items = %s, want an array: %v", vals[i], err)
	}
	var out [][]string
	for _, it := range items {
		k, _ := jsonKeys(t, it)
		out = append(out, k)
	}
	return out
}

// TestEventKeys checks the keys an Event is written with, in BSON and in
// JSON: every field under its snake_case name, empty fields left out of BSON,
// and popup_scene and error_code written even when 0 on the items of the
// events that define them, and only there.
func TestEventKeys(t *testing.T) {
	var (
		all   = []string{"appid", "openid", "to_user", "create_time", "msg_type", "event", "items", "raw"}
		popup = []string{"template_id", "status", "popup_scene"}
		sent  = []string{"template_id", "msg_id", "error_code", "error_status"}
	)
	tests := []struct {
		name      string
		event     *Event
		wantKeys  []string
		wantItems [][]string
		// wantJSONKeys are the JSON keys when they differ from the BSON keys:
		// JSON always has the fields the schema requires.
		wantJSONKeys []string
	}{
		{
			name: "popup", event: mustParse(t, appSample, sampleXMLPopup),
			wantKeys: all, wantItems: [][]string{popup, popup},
		},
		{
			name: "popup_scene_0", event: mustParse(t, appSample, strings.Replace(sampleJSONPopup, `"PopupScene":2`, `"PopupScene":0`, 1)),
			wantKeys: all, wantItems: [][]string{popup, popup},
		},
		{
			name: "popup_scene_absent", event: mustParse(t, appSample, strings.ReplaceAll(sampleXMLPopup, "<PopupScene>2</PopupScene>", "")),
			wantKeys: all, wantItems: [][]string{popup, popup},
		},
		{
			name: "change", event: mustParse(t, appSample, sampleJSONChange),
			wantKeys: all, wantItems: [][]string{{"template_id", "status"}},
		},
		{
			name: "sent_delivered", event: mustParse(t, appSample, sampleXMLSent),
			wantKeys: all, wantItems: [][]string{sent},
		},
		{
			name: "sent_failed", event: mustParse(t, appSample, strings.Replace(sampleJSONSent, `"ErrorCode":"0","ErrorStatus":"success"`, `"ErrorCode":"10001","ErrorStatus":"fail"`, 1)),
			wantKeys: all, wantItems: [][]string{sent},
		},
		{
			name: "sent_without_error_fields", event: mustParse(t, appSample, strings.Replace(sampleJSONSent, `,"ErrorCode":"0","ErrorStatus":"success"`, "", 1)),
			wantKeys: all, wantItems: [][]string{{"template_id", "msg_id", "error_code"}},
		},
		{
			name: "plain_message", event: mustParse(t, appV2, sampleV2),
			wantKeys: []string{"appid", "openid", "to_user", "create_time", "msg_type", "raw"},
		},
		{
			name: "other_event_zero_values", event: &Event{
				AppID: appSample, OpenID: "o1", ToUser: "gh_1", CreateTime: 1, MsgType: "event", Event: "future_event",
				Items: []Item{{TemplateID: "t"}},
			},
			wantKeys:     []string{"appid", "openid", "to_user", "create_time", "msg_type", "event", "items"},
			wantItems:    [][]string{{"template_id"}},
			wantJSONKeys: all,
		},
		{
			name: "other_event_values_kept", event: &Event{
				AppID: appSample, OpenID: "o1", ToUser: "gh_1", CreateTime: 1, MsgType: "event", Event: EventSubscribeChange,
				Items: []Item{{TemplateID: "t", Status: StatusReject, PopupScene: 1, ErrorCode: 2}},
			},
			wantKeys:     []string{"appid", "openid", "to_user", "create_time", "msg_type", "event", "items"},
			wantItems:    [][]string{{"template_id", "status", "popup_scene", "error_code"}},
			wantJSONKeys: all,
		},
		{
			name: "hand_built_empty", event: &Event{AppID: appSample, Items: []Item{}},
			wantKeys:     []string{"appid"},
			wantJSONKeys: []string{"appid", "openid", "to_user", "create_time", "msg_type", "raw"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := bson.Marshal(tt.event)
			if err != nil {
				t.Fatalf("bson.Marshal(%+v) = %v", tt.event, err)
			}
			if got := bsonKeys(t, b); !slices.Equal(got, tt.wantKeys) {
				t.Errorf("bson.Marshal(%s) keys = %q, want %q", tt.name, got, tt.wantKeys)
			}
			if got := bsonItemKeys(t, b); !reflect.DeepEqual(got, tt.wantItems) {
				t.Errorf("bson.Marshal(%s) item keys = %q, want %q", tt.name, got, tt.wantItems)
			}

			j, err := json.Marshal(tt.event)
			if err != nil {
				t.Fatalf("json.Marshal(%+v) = %v", tt.event, err)
			}
			wantJSON := tt.wantJSONKeys
			if wantJSON == nil {
				wantJSON = tt.wantKeys
			}
			if got, _ := jsonKeys(t, j); !slices.Equal(got, wantJSON) {
				t.Errorf("json.Marshal(%s) keys = %q, want %q", tt.name, got, wantJSON)
			}
			if got := jsonItemKeys(t, j); !reflect.DeepEqual(got, tt.wantItems) {
				t.Errorf("json.Marshal(%s) item keys = %q, want %q", tt.name, got, tt.wantItems)
			}
		})
	}
}

// TestEventZeroCodesQueryable checks the values behind the keys: a consumer
// of the stream or of the store that asks for error_code 0 finds a delivered
// message, and popup_scene 0 a popup inside the mini program, whether the
// Event is marshalled by value, by pointer or inside another document.
func TestEventZeroCodesQueryable(t *testing.T) {
	sentEv := mustParse(t, appSample, sampleJSONSentNumbers)
	popupEv := mustParse(t, appSample, strings.Replace(sampleJSONPopup, `"PopupScene":2`, `"PopupScene":0`, 1))
	tests := []struct {
		name  string
		event *Event
		key   string
	}{
		{name: "sent", event: sentEv, key: "error_code"},
		{name: "popup", event: popupEv, key: "popup_scene"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range []any{tt.event, *tt.event} {
				b, err := bson.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				if got, err := bson.Raw(b).LookupErr("items", "0", tt.key); err != nil || got.Type != bson.TypeInt32 || got.Int32() != 0 {
					t.Errorf("bson.Marshal(%T) items.0.%s = %v, %v, want int32 0", v, tt.key, got, err)
				}
			}
			rb, err := bson.Marshal(eventRecord{ID: "x", Data: *tt.event})
			if err != nil {
				t.Fatal(err)
			}
			if got, err := bson.Raw(rb).LookupErr("data", "items", "0", tt.key); err != nil || got.Int32() != 0 {
				t.Errorf("record data.items.0.%s = %v, %v, want 0", tt.key, got, err)
			}

			// The stream: the CloudEvent's data, decoded as any consumer would.
			ce, err := InboundCloudEvent(tt.event, time.Unix(1700000000, 0))
			if err != nil {
				t.Fatal(err)
			}
			var data struct {
				Items []map[string]any `json:"items"`
			}
			if err := json.Unmarshal(ce.Data, &data); err != nil {
				t.Fatal(err)
			}
			if got, ok := data.Items[0][tt.key]; !ok || got != float64(0) {
				t.Errorf("CloudEvent data items[0].%s = %v (present %v), want 0: %s", tt.key, got, ok, ce.Data)
			}
			var rec struct {
				Data Event `json:"data"`
			}
			rec.Data = *tt.event
			j, err := json.Marshal(rec)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(j, []byte(`"`+tt.key+`":0`)) {
				t.Errorf("json.Marshal(record) = %s, want %s 0", j, tt.key)
			}
		})
	}
}

// TestEventBSONRoundTrip checks that an Event survives the store: on its own
// and inside a record, by value and by pointer.
func TestEventBSONRoundTrip(t *testing.T) {
	for _, msg := range []string{
		sampleXMLPopup, sampleJSONPopup, sampleJSONSent, sampleJSONSentNumbers, sampleXMLSent,
		sampleXMLChange, sampleJSONChange, sampleV1, sampleV2,
		strings.Replace(sampleJSONSentNumbers, `"ErrorCode":0`, `"ErrorCode":-1`, 1),
		strings.Replace(sampleJSONPopup, `"PopupScene":2`, `"PopupScene":0`, 1),
	} {
		e := mustParse(t, appSample, msg)
		b, err := bson.Marshal(e)
		if err != nil {
			t.Fatalf("bson.Marshal(%+v) = %v", e, err)
		}
		var back Event
		if err := bson.Unmarshal(b, &back); err != nil {
			t.Fatalf("bson.Unmarshal(%v) = %v", bson.Raw(b), err)
		}
		if !reflect.DeepEqual(&back, e) {
			t.Errorf("BSON round trip of %q = %+v, want %+v", msg, back, *e)
		}

		rb, err := bson.Marshal(eventRecord{ID: "x", Data: *e})
		if err != nil {
			t.Fatalf("bson.Marshal(record) = %v", err)
		}
		var rec eventRecord
		if err := bson.Unmarshal(rb, &rec); err != nil {
			t.Fatalf("bson.Unmarshal(record %v) = %v", bson.Raw(rb), err)
		}
		if !reflect.DeepEqual(&rec.Data, e) {
			t.Errorf("BSON round trip of a record of %q = %+v, want %+v", msg, rec.Data, *e)
		}
	}
}

// TestEventBSONLegacyNames checks that events stored before Event had bson
// tags, under the driver's default names, still decode.
func TestEventBSONLegacyNames(t *testing.T) {
	// legacyItem and legacyEvent are Item and Event as they were: no bson tags.
	type legacyItem struct {
		TemplateID  string
		Status      string
		PopupScene  int
		MsgID       string
		ErrorCode   int
		ErrorStatus string
	}
	type legacyEvent struct {
		AppID      string
		OpenID     string
		ToUser     string
		CreateTime int64
		MsgType    string
		Event      string
		Items      []legacyItem
		Raw        string
	}
	type legacyRecord struct {
		ID   string `bson:"_id"`
		Data legacyEvent
	}
	for _, msg := range []string{sampleXMLPopup, sampleJSONSent, sampleXMLChange, sampleV2,
		strings.Replace(sampleJSONSentNumbers, `"ErrorCode":0,"ErrorStatus":"success"`, `"ErrorCode":10001,"ErrorStatus":"fail"`, 1),
	} {
		e := mustParse(t, appSample, msg)
		old := legacyEvent{
			AppID: e.AppID, OpenID: e.OpenID, ToUser: e.ToUser, CreateTime: e.CreateTime,
			MsgType: e.MsgType, Event: e.Event, Raw: e.Raw,
		}
		for _, it := range e.Items {
			old.Items = append(old.Items, legacyItem(it))
		}
		b, err := bson.Marshal(legacyRecord{ID: "x", Data: old})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bson.Raw(b).LookupErr("data", "createtime"); err != nil {
			t.Fatalf("legacy record %v has no data.createtime: the test does not build the old shape", bson.Raw(b))
		}
		var rec eventRecord
		if err := bson.Unmarshal(b, &rec); err != nil {
			t.Fatalf("bson.Unmarshal(legacy %v) = %v", bson.Raw(b), err)
		}
		if !reflect.DeepEqual(&rec.Data, e) {
			t.Errorf("legacy record of %q decodes to %+v, want %+v", msg, rec.Data, *e)
		}
	}
}

// TestEventWireMatchesEvent keeps the written form in step with the types: a
// field added to Event or Item and not to eventWire or itemWire would never
// be written.
func TestEventWireMatchesEvent(t *testing.T) {
	pairs := []struct{ typ, wire reflect.Type }{
		{reflect.TypeFor[Event](), reflect.TypeFor[eventWire]()},
		{reflect.TypeFor[Item](), reflect.TypeFor[itemWire]()},
	}
	// written maps a field's type to the type it is written as, where they differ.
	written := map[reflect.Type]reflect.Type{
		reflect.TypeFor[[]Item](): reflect.TypeFor[[]itemWire](),
		reflect.TypeFor[int]():    reflect.TypeFor[*int](),
	}
	for _, p := range pairs {
		if p.typ.NumField() != p.wire.NumField() {
			t.Errorf("%s has %d fields, %s has %d", p.typ, p.typ.NumField(), p.wire, p.wire.NumField())
			continue
		}
		for i := range p.typ.NumField() {
			f, w := p.typ.Field(i), p.wire.Field(i)
			if f.Name != w.Name || f.Tag.Get("json") != w.Tag.Get("json") || f.Tag.Get("bson") != w.Tag.Get("bson") {
				t.Errorf("%s.%s `%s` and %s.%s `%s` differ", p.typ, f.Name, f.Tag, p.wire, w.Name, w.Tag)
			}
			if w.Type != f.Type && w.Type != written[f.Type] {
				t.Errorf("%s.%s is %s, written as %s", p.typ, f.Name, f.Type, w.Type)
			}
		}
	}
}
