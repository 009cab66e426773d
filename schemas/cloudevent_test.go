package schemas

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestInboundCloudEvent(t *testing.T) {
	received := time.Date(2024, 4, 26, 8, 0, 0, 0, time.FixedZone("CST", 8*3600))
	// The envelope's time is when the push was received, never its CreateTime.
	wantTime := received.UTC()
	tests := []struct {
		name     string
		appID    string
		msg      string
		wantType string
	}{
		{name: "xml_popup", appID: appSample, msg: sampleXMLPopup, wantType: "wechat.in.subscribe_msg_popup_event"},
		{name: "json_sent", appID: appSample, msg: sampleJSONSent, wantType: "wechat.in.subscribe_msg_sent_event"},
		{name: "v2_text", appID: appV2, msg: sampleV2, wantType: "wechat.in.text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := mustParse(t, tt.appID, tt.msg)
			ce, err := InboundCloudEvent(e, received)
			if err != nil {
				t.Fatalf("InboundCloudEvent error = %v", err)
			}
			want := CloudEvent{
				SpecVersion: "1.0", ID: e.ID(), Source: "/wechat/" + tt.appID, Type: tt.wantType,
				Subject: e.OpenID, Time: wantTime, DataContentType: "application/json",
			}
			got := ce
			got.Data = nil
			if !reflect.DeepEqual(got, want) {
				t.Errorf("InboundCloudEvent(%q) = %+v, want %+v", tt.msg, got, want)
			}
			if ce.Time.Location() != time.UTC {
				t.Errorf("time zone = %v, want UTC", ce.Time.Location())
			}

			// The document on the stream decodes back to the same envelope and event.
			b, err := json.Marshal(ce)
			if err != nil {
				t.Fatal(err)
			}
			back, err := DecodeCloudEvent(b)
			if err != nil {
				t.Fatalf("DecodeCloudEvent(%s) error = %v", b, err)
			}
			var data Event
			if err := json.Unmarshal(back.Data, &data); err != nil {
				t.Fatalf("data: %v", err)
			}
			if !reflect.DeepEqual(&data, e) {
				t.Errorf("data = %+v, want %+v", data, *e)
			}
			if data.ID() != back.ID {
				t.Errorf("data.ID() = %q, envelope id %q, want equal", data.ID(), back.ID)
			}
			if !back.Time.Equal(ce.Time) || back.ID != ce.ID || back.Type != ce.Type || back.Subject != ce.Subject {
				t.Errorf("DecodeCloudEvent(Marshal(%+v)) = %+v", ce, back)
			}
			if !strings.Contains(string(b), `"time":"`+wantTime.Format(time.RFC3339)+`"`) {
				t.Errorf("json = %s, want time %s", b, wantTime.Format(time.RFC3339))
			}
			if data.CreateTime != e.CreateTime || data.CreateTime == wantTime.Unix() {
				t.Errorf("data create_time = %d, want the push's CreateTime %d", data.CreateTime, e.CreateTime)
			}
		})
	}
}

func TestInboundCloudEventTimeIsReceived(t *testing.T) {
	received := time.Date(2024, 4, 26, 8, 0, 0, 123456789, time.FixedZone("CST", 8*3600))
	tests := []struct {
		name       string
		createTime int64
	}{
		{name: "no_create_time", createTime: 0},
		{name: "create_time_in_the_past", createTime: 1610969440},
		{name: "create_time_in_the_future", createTime: received.Add(time.Hour).Unix()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &Event{AppID: appSample, OpenID: "o1", ToUser: "gh_1", CreateTime: tt.createTime, MsgType: "text"}
			id := e.ID()
			ce, err := InboundCloudEventWithID(e, id, received)
			if err != nil {
				t.Fatal(err)
			}
			if !ce.Time.Equal(received) || ce.Time.Location() != time.UTC {
				t.Errorf("InboundCloudEventWithID(CreateTime %d, %v).Time = %v, want %v in UTC", tt.createTime, received, ce.Time, received)
			}
			if ce.ID != id {
				t.Errorf("InboundCloudEventWithID id = %q, want %q", ce.ID, id)
			}
		})
	}
	e := &Event{AppID: appSample, OpenID: "o1", ToUser: "gh_1", CreateTime: 1, MsgType: "text"}
	if _, err := InboundCloudEvent(e, time.Time{}); !errors.Is(err, ErrMalformed) {
		t.Errorf("InboundCloudEvent(zero time) error = %v, want ErrMalformed", err)
	}
	if _, err := InboundCloudEvent(nil, received); err == nil {
		t.Errorf("InboundCloudEvent(nil) error = nil, want an error")
	}
}

// TestInboundCloudEventIDStable checks that the envelope's id depends on the
// push alone: a retry received later, re-encrypted or in the other format,
// keeps it.
func TestInboundCloudEventIDStable(t *testing.T) {
	first := time.Date(2024, 4, 26, 8, 0, 0, 0, time.UTC)
	var ids []string
	for i, msg := range []string{sampleXMLSent, sampleJSONSent, sampleJSONSentNumbers, sampleJSONSentNested} {
		e, id, err := ParseEventWithID(appSample, []byte(msg))
		if err != nil {
			t.Fatalf("ParseEventWithID(%q) = %v", msg, err)
		}
		ce, err := InboundCloudEventWithID(e, id, first.Add(time.Duration(i)*5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ce.ID)
	}
	for _, id := range ids[1:] {
		if id != ids[0] {
			t.Errorf("ids of one push received at different times = %q, want all equal", ids)
			break
		}
	}
}

func TestNewCloudEvent(t *testing.T) {
	now := time.Unix(1700000000, 0)
	tests := []struct {
		name    string
		id      string
		appID   string
		typ     string
		t       time.Time
		data    any
		wantErr bool
	}{
		{name: "ok", id: "1", appID: "wxa", typ: "wxgate.send", t: now, data: map[string]string{"a": "b"}},
		{name: "raw_data", id: "1", appID: "wxa", typ: "wxgate.send", t: now, data: json.RawMessage(`{"a": 1}`)},
		{name: "no_id", appID: "wxa", typ: "x", t: now, wantErr: true},
		{name: "no_appid", id: "1", typ: "x", t: now, wantErr: true},
		{name: "no_type", id: "1", appID: "wxa", t: now, wantErr: true},
		{name: "zero_time", id: "1", appID: "wxa", typ: "x", wantErr: true},
		{name: "unmarshalable_data", id: "1", appID: "wxa", typ: "x", t: now, data: func() {}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ce, err := NewCloudEvent(tt.id, tt.appID, tt.typ, "o1", tt.t, tt.data)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NewCloudEvent error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if ce.SpecVersion != "1.0" || ce.Source != "/wechat/"+tt.appID || ce.DataContentType != "application/json" || !json.Valid(ce.Data) {
				t.Errorf("NewCloudEvent = %+v", ce)
			}
		})
	}
	if got := CloudEventSource("wx/../a b"); got != "/wechat/wx%2F..%2Fa%20b" {
		t.Errorf("CloudEventSource = %q, want the appid path-escaped", got)
	}
}

func TestDecodeCloudEventMalformed(t *testing.T) {
	const ok = `{"specversion":"1.0","id":"x","source":"/wechat/wxa","type":"wechat.in.text","time":"2024-01-01T00:00:00Z","datacontenttype":"application/json","data":{}}`
	if _, err := DecodeCloudEvent([]byte(ok)); err != nil {
		t.Fatalf("DecodeCloudEvent(%s) = %v, want nil", ok, err)
	}
	extension := strings.Replace(ok, `"data"`, `"traceparent":"00-abc","data"`, 1)
	if _, err := DecodeCloudEvent([]byte(extension)); err != nil {
		t.Errorf("DecodeCloudEvent(%s) = %v, want extensions allowed", extension, err)
	}
	charset := strings.Replace(ok, `"application/json"`, `"application/json; charset=utf-8"`, 1)
	if _, err := DecodeCloudEvent([]byte(charset)); err != nil {
		t.Errorf("DecodeCloudEvent(%s) = %v, want nil", charset, err)
	}
	tests := []struct {
		name string
		in   string
	}{
		{name: "empty", in: ""},
		{name: "array", in: "[" + ok + "]"},
		{name: "null", in: "null"},
		{name: "spec_0_3", in: strings.Replace(ok, `"1.0"`, `"0.3"`, 1)},
		{name: "no_specversion", in: strings.Replace(ok, `"specversion":"1.0",`, "", 1)},
		{name: "no_id", in: strings.Replace(ok, `"id":"x",`, "", 1)},
		{name: "no_source", in: strings.Replace(ok, `"source":"/wechat/wxa",`, "", 1)},
		{name: "no_type", in: strings.Replace(ok, `"type":"wechat.in.text",`, "", 1)},
		{name: "id_number", in: strings.Replace(ok, `"id":"x"`, `"id":1`, 1)},
		{name: "bad_time", in: strings.Replace(ok, `2024-01-01T00:00:00Z`, `yesterday`, 1)},
		{name: "xml_data", in: strings.Replace(ok, `"application/json"`, `"application/xml"`, 1)},
		{name: "data_base64", in: strings.Replace(ok, `"data":{}`, `"data_base64":"e30="`, 1)},
		{name: "trailing", in: ok + "{}"},
		{name: "truncated", in: ok[:len(ok)-3]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeCloudEvent([]byte(tt.in))
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("DecodeCloudEvent(%q) = %+v, %v, want ErrMalformed", tt.in, got, err)
			}
		})
	}
}
