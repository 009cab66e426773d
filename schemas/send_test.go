package schemas

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestSendRequestUnmarshal(t *testing.T) {
	tests := []struct {
		name string
		body string
		want SendRequest
	}{
		{
			name: "string values",
			body: `{"touser":"o1","template_id":"t1","page":"pages/index?id=1","data":{"thing1":"会议室","date2":"2019-10-01"},"miniprogram_state":"trial","lang":"en_US"}`,
			want: SendRequest{ToUser: "o1", TemplateID: "t1", Page: "pages/index?id=1",
				Data: map[string]string{"thing1": "会议室", "date2": "2019-10-01"}, MiniprogramState: "trial", Lang: "en_US"},
		},
		{
			name: "WeChat value objects",
			body: `{"touser":"o1","template_id":"t1","data":{"thing1":{"value":"会议室"},"date2":{"value":"2019-10-01"}}}`,
			want: SendRequest{ToUser: "o1", TemplateID: "t1", Data: map[string]string{"thing1": "会议室", "date2": "2019-10-01"}},
		},
		{
			name: "mixed, with a retired color member and spaces",
			body: `{"touser":"o1","template_id":"t1","data":{"thing1": "a" ,"date2": { "value" : "b", "color": "#173177" }}}`,
			want: SendRequest{ToUser: "o1", TemplateID: "t1", Data: map[string]string{"thing1": "a", "date2": "b"}},
		},
		{
			name: "empty value kept for validation to report",
			body: `{"touser":"o1","template_id":"t1","data":{"thing1":""}}`,
			want: SendRequest{ToUser: "o1", TemplateID: "t1", Data: map[string]string{"thing1": ""}},
		},
		{
			name: "no data",
			body: `{"touser":"o1","template_id":"t1"}`,
			want: SendRequest{ToUser: "o1", TemplateID: "t1"},
		},
		{
			name: "null data",
			body: `{"touser":"o1","template_id":"t1","data":null}`,
			want: SendRequest{ToUser: "o1", TemplateID: "t1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got SendRequest
			if err := json.Unmarshal([]byte(tt.body), &got); err != nil {
				t.Fatalf("Unmarshal(%q) = %v", tt.body, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Unmarshal(%q) = %+v, want %+v", tt.body, got, tt.want)
			}
		})
	}
}

func TestSendRequestUnmarshalRejects(t *testing.T) {
	tests := []struct {
		name string
		body string
		want FieldErrors // nil: any non-FieldErrors error
	}{
		{
			name: "array value",
			body: `{"data":{"thing1":["a"]}}`,
			want: FieldErrors{{Field: "data.thing1", Rule: "type", Message: `data.thing1 must be a string or {"value": string}`}},
		},
		{
			name: "number value",
			body: `{"data":{"number1":5}}`,
			want: FieldErrors{{Field: "data.number1", Rule: "type", Message: `data.number1 must be a string or {"value": string}`}},
		},
		{
			name: "null value",
			body: `{"data":{"thing1":null}}`,
			want: FieldErrors{{Field: "data.thing1", Rule: "type", Message: `data.thing1 must be a string or {"value": string}`}},
		},
		{
			name: "value object with a number",
			body: `{"data":{"number1":{"value":5}}}`,
			want: FieldErrors{{Field: "data.number1", Rule: "type", Message: `data.number1 must be a string or {"value": string}`}},
		},
		{
			name: "value object without value",
			body: `{"data":{"thing1":{"text":"a"}}}`,
			want: FieldErrors{{Field: "data.thing1", Rule: "type", Message: `data.thing1 must be a string or {"value": string}`}},
		},
		{
			name: "several bad keys, sorted, good ones ignored",
			body: `{"data":{"thing2":true,"thing1":"ok","date1":[]}}`,
			want: FieldErrors{
				{Field: "data.date1", Rule: "type", Message: `data.date1 must be a string or {"value": string}`},
				{Field: "data.thing2", Rule: "type", Message: `data.thing2 must be a string or {"value": string}`},
			},
		},
		{
			name: "data is an array",
			body: `{"data":[{"thing1":"a"}]}`,
			want: FieldErrors{{Field: "data", Rule: "type", Message: "data must be an object of keyword values"}},
		},
		{
			name: "data is a string",
			body: `{"data":"thing1=a"}`,
			want: FieldErrors{{Field: "data", Rule: "type", Message: "data must be an object of keyword values"}},
		},
		{name: "touser is a number", body: `{"touser":5,"data":{"thing1":"a"}}`},
		{name: "not JSON", body: `{"data":`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got SendRequest
			err := json.Unmarshal([]byte(tt.body), &got)
			if err == nil {
				t.Fatalf("Unmarshal(%q) = nil, want an error", tt.body)
			}
			var ferrs FieldErrors
			isField := errors.As(err, &ferrs)
			if tt.want == nil {
				if isField {
					t.Errorf("Unmarshal(%q) = %v, want a JSON error", tt.body, err)
				}
				return
			}
			if !isField || !reflect.DeepEqual(ferrs, tt.want) {
				t.Errorf("Unmarshal(%q) = %#v, want %#v", tt.body, err, tt.want)
			}
		})
	}
}

func TestSendRequestUnmarshalBoundsKey(t *testing.T) {
	key := strings.Repeat("k", 10000)
	var r SendRequest
	err := json.Unmarshal([]byte(`{"data":{"`+key+`":1}}`), &r)
	var ferrs FieldErrors
	if !errors.As(err, &ferrs) || len(ferrs) != 1 {
		t.Fatalf("Unmarshal = %v, want one field error", err)
	}
	if n := len(ferrs[0].Field) + len(ferrs[0].Message); n > 300 {
		t.Errorf("field error is %d bytes, want it bounded", n)
	}
}

func TestWeChatBody(t *testing.T) {
	tests := []struct {
		name string
		req  SendRequest
		want string
	}{
		{
			name: "defaults filled, keys sorted, HTML not escaped",
			req: SendRequest{
				ToUser:     "o9AgO5Kd5ggOC-bXrbNODIiE3bGY",
				TemplateID: "9Aw5ZV1j9xdWTFEkqCpZ7mIBbSC34khK55OtzUPl0rU",
				Page:       "pages/meeting/detail?id=42&from=notice",
				Data:       map[string]string{"thing3": "TIT会议室 <A>", "date2": "2019年10月1日 15:01", "phrase4": "已开始"},
			},
			want: `{"touser":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY","template_id":"9Aw5ZV1j9xdWTFEkqCpZ7mIBbSC34khK55OtzUPl0rU",` +
				`"page":"pages/meeting/detail?id=42&from=notice",` +
				`"data":{"date2":{"value":"2019年10月1日 15:01"},"phrase4":{"value":"已开始"},"thing3":{"value":"TIT会议室 <A>"}},` +
				`"miniprogram_state":"formal","lang":"zh_CN"}`,
		},
		{
			name: "explicit state and lang, no page",
			req: SendRequest{
				ToUser: "o1", TemplateID: "t1", Data: map[string]string{"thing1": `say "hi"`},
				MiniprogramState: "developer", Lang: "en_US",
			},
			want: `{"touser":"o1","template_id":"t1","data":{"thing1":{"value":"say \"hi\""}},"miniprogram_state":"developer","lang":"en_US"}`,
		},
		{
			name: "no data is an empty object",
			req:  SendRequest{ToUser: "o1", TemplateID: "t1"},
			want: `{"touser":"o1","template_id":"t1","data":{},"miniprogram_state":"formal","lang":"zh_CN"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.req.WeChatBody()
			if err != nil {
				t.Fatalf("WeChatBody(%+v) = %v", tt.req, err)
			}
			if string(got) != tt.want {
				t.Errorf("WeChatBody(%+v) =\n%s\nwant\n%s", tt.req, got, tt.want)
			}
		})
	}
}

func TestWeChatBodyRoundTrip(t *testing.T) {
	req := SendRequest{
		ToUser: "o1", TemplateID: "t1", Page: "p?a=1",
		Data:             map[string]string{"thing1": "会议", "amount2": "¥1.00"},
		MiniprogramState: "trial", Lang: "zh_TW",
	}
	body, err := req.WeChatBody()
	if err != nil {
		t.Fatalf("WeChatBody = %v", err)
	}
	var back SendRequest
	if err := json.Unmarshal(body, &back); err != nil {
		t.Fatalf("Unmarshal(%s) = %v", body, err)
	}
	if !reflect.DeepEqual(back, req) {
		t.Errorf("Unmarshal(WeChatBody()) = %+v, want %+v", back, req)
	}
}

func TestWeChatBodyNil(t *testing.T) {
	var r *SendRequest
	if _, err := r.WeChatBody(); err == nil {
		t.Errorf("(*SendRequest)(nil).WeChatBody() = nil error, want an error")
	}
}

func FuzzSendRequestUnmarshal(f *testing.F) {
	f.Add([]byte(`{"touser":"o1","template_id":"t1","data":{"thing1":"会议室","date2":{"value":"2019-10-01"}}}`))
	f.Add([]byte(`{"data":{"thing1":["a"],"number1":5,"x":null}}`))
	f.Add([]byte(`{"data":[]}`))
	f.Add([]byte(`{"touser":"o1","template_id":"t1","data":{"enum1":{"value":"a","color":"#fff"}},"lang":"en_US"}`))
	v := NewValidator()
	tmpl := sendTestTemplate()
	f.Fuzz(func(t *testing.T, body []byte) {
		var r SendRequest
		if err := json.Unmarshal(body, &r); err != nil {
			return
		}
		// Whatever decoded must validate without panicking, deterministically.
		e1, e2 := v.Check(&r, nil), v.Check(&r, &tmpl)
		if !reflect.DeepEqual(e1, v.Check(&r, nil)) || !reflect.DeepEqual(e2, v.Check(&r, &tmpl)) {
			t.Fatalf("Check(%q) not deterministic", body)
		}
		out, err := r.WeChatBody()
		if err != nil {
			t.Fatalf("WeChatBody of %q = %v", body, err)
		}
		var back SendRequest
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("Unmarshal(WeChatBody()) of %q = %v", body, err)
		}
		if len(back.Data) != len(r.Data) {
			t.Fatalf("round trip of %q: %d keywords, want %d", body, len(back.Data), len(r.Data))
		}
		for k, val := range r.Data {
			if back.Data[k] != strings.ToValidUTF8(val, "\uFFFD") {
				t.Fatalf("round trip of %q: data[%q] = %q, want %q", body, k, back.Data[k], val)
			}
		}
	})
}
