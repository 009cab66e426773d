package schemas

import (
	"reflect"
	"slices"
	"strings"
	"testing"

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

func TestEventBSONNames(t *testing.T) {
	tests := []struct {
		name      string
		event     *Event
		wantKeys  []string
		wantItems [][]string
	}{
		{
			name: "popup", event: mustParse(t, appSample, sampleXMLPopup),
			wantKeys:  []string{"appid", "openid", "to_user", "create_time", "msg_type", "event", "items", "raw"},
			wantItems: [][]string{{"template_id", "status", "popup_scene"}, {"template_id", "status", "popup_scene"}},
		},
		{
			name: "change", event: mustParse(t, appSample, sampleJSONChange),
			wantKeys:  []string{"appid", "openid", "to_user", "create_time", "msg_type", "event", "items", "raw"},
			wantItems: [][]string{{"template_id", "status"}},
		},
		{
			name: "sent_failed", event: mustParse(t, appSample, strings.Replace(sampleJSONSent, `"ErrorCode":"0","ErrorStatus":"success"`, `"ErrorCode":"10001","ErrorStatus":"fail"`, 1)),
			wantKeys:  []string{"appid", "openid", "to_user", "create_time", "msg_type", "event", "items", "raw"},
			wantItems: [][]string{{"template_id", "msg_id", "error_code", "error_status"}},
		},
		{
			name: "plain_message", event: mustParse(t, appV2, sampleV2),
			wantKeys: []string{"appid", "openid", "to_user", "create_time", "msg_type", "raw"},
		},
		{
			name: "hand_built_empty", event: &Event{AppID: appSample, Items: []Item{}},
			wantKeys: []string{"appid"},
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
