package schemas

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// gettemplateBody is a gettemplate response as WeChat sends it: a one-time
// meeting template and a long-term order template with an enum keyword.
const gettemplateBody = `{
  "errcode": 0,
  "errmsg": "ok",
  "data": [
    {
      "priTmplId": "9Aw5ZV1j9xdWTFEkqCpZ7mIBbSC34khK55OtzUPl0rU",
      "title": "会议提醒",
      "content": "会议时间:{{date2.DATA}}\n地点:{{thing3.DATA}}\n状态:{{phrase4.DATA}}\n",
      "example": "会议时间:2016年8月8日\n地点:TIT会议室\n状态:已开始\n",
      "type": 2
    },
    {
      "priTmplId": "cy_DfOZL7lypxHh3ja3DyAUbn1GYQRGwezuy5LBTFME",
      "title": "订单状态通知",
      "content": "订单号:{{character_string1.DATA}}\n订单状态:{{enum2.DATA}}\n金额:{{amount3.DATA}}\n",
      "example": "订单号:A1001\n订单状态:已发货\n金额:¥100\n",
      "type": 3,
      "keywordEnumValueList": [
        {"keywordCode": "enum2.DATA", "enumValueList": ["已发货", "已签收", "已取消"]}
      ]
    }
  ]
}`

// wantGettemplate is what ParseTemplates makes of gettemplateBody.
func wantGettemplate() []Template {
	return []Template{
		{
			ID: "9Aw5ZV1j9xdWTFEkqCpZ7mIBbSC34khK55OtzUPl0rU", Title: "会议提醒", Type: TemplateOneTime,
			Keywords: []Keyword{{Key: "date2", Type: "date"}, {Key: "thing3", Type: "thing"}, {Key: "phrase4", Type: "phrase"}},
		},
		{
			ID: "cy_DfOZL7lypxHh3ja3DyAUbn1GYQRGwezuy5LBTFME", Title: "订单状态通知", Type: TemplateLongTerm,
			Keywords: []Keyword{
				{Key: "character_string1", Type: "character_string"},
				{Key: "enum2", Type: "enum", Enum: []string{"已发货", "已签收", "已取消"}},
				{Key: "amount3", Type: "amount"},
			},
		},
	}
}

func TestParseTemplates(t *testing.T) {
	got, err := ParseTemplates([]byte(gettemplateBody))
	if err != nil {
		t.Fatalf("ParseTemplates = %v", err)
	}
	if want := wantGettemplate(); !reflect.DeepEqual(got, want) {
		t.Errorf("ParseTemplates =\n%+v\nwant\n%+v", got, want)
	}
	if got[0].LongTerm() || !got[1].LongTerm() {
		t.Errorf("LongTerm = %v, %v, want false, true", got[0].LongTerm(), got[1].LongTerm())
	}
	if kw, ok := got[1].Lookup("enum2"); !ok || len(kw.Enum) != 3 {
		t.Errorf("Lookup(enum2) = %+v, %v, want the enum keyword", kw, ok)
	}
	if _, ok := got[0].Lookup("enum2"); ok {
		t.Errorf("Lookup(enum2) on the meeting template found a keyword")
	}
}

func TestParseTemplatesShapes(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []Template
	}{
		{
			name: "keywordCode without .DATA",
			body: `{"errcode":0,"data":[{"priTmplId":"t1","title":"x","content":"状态:{{enum1.DATA}}","type":2,
				"keywordEnumValueList":[{"keywordCode":"enum1","enumValueList":["开","关"]}]}]}`,
			want: []Template{{ID: "t1", Title: "x", Type: 2, Keywords: []Keyword{{Key: "enum1", Type: "enum", Enum: []string{"开", "关"}}}}},
		},
		{
			name: "type as a string, no errcode",
			body: `{"data":[{"priTmplId":"t1","title":"x","content":"{{thing1.DATA}}","type":"3"}]}`,
			want: []Template{{ID: "t1", Title: "x", Type: 3, Keywords: []Keyword{{Key: "thing1", Type: "thing"}}}},
		},
		{
			name: "repeated placeholder and stray braces",
			body: `{"errcode":0,"data":[{"priTmplId":"t1","content":"{{ {{thing1.DATA}} {{thing1.DATA}} {{x}} {{number2.DATA}}","type":2}]}`,
			want: []Template{{ID: "t1", Type: 2, Keywords: []Keyword{{Key: "thing1", Type: "thing"}, {Key: "number2", Type: "number"}}}},
		},
		{
			name: "unknown keyword type keeps its prefix",
			body: `{"errcode":0,"data":[{"priTmplId":"t1","content":"{{sys_time1.DATA}}{{weird.DATA}}","type":2}]}`,
			want: []Template{{ID: "t1", Type: 2, Keywords: []Keyword{{Key: "sys_time1", Type: "sys_time"}, {Key: "weird", Type: "weird"}}}},
		},
		{
			name: "enum list of a key not in the content is ignored",
			body: `{"errcode":0,"data":[{"priTmplId":"t1","content":"{{thing1.DATA}}","type":2,
				"keywordEnumValueList":[{"keywordCode":"enum9.DATA","enumValueList":["a"]}]}]}`,
			want: []Template{{ID: "t1", Type: 2, Keywords: []Keyword{{Key: "thing1", Type: "thing"}}}},
		},
		{
			name: "no templates",
			body: `{"errcode":0,"errmsg":"ok","data":[]}`,
			want: []Template{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTemplates([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParseTemplates(%q) = %v", tt.body, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseTemplates(%q) = %+v, want %+v", tt.body, got, tt.want)
			}
		})
	}
}

func TestParseTemplatesErrors(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantErr  error
		contains string
	}{
		{
			name:     "errcode",
			body:     `{"errcode":40001,"errmsg":"invalid credential, access_token is invalid or not latest rid: 6650a1b2-1c2d3e4f-5a6b7c8d"}`,
			wantErr:  ErrTemplateAPI,
			contains: "errcode 40001: invalid credential",
		},
		{name: "errcode as a string", body: `{"errcode":"-1","errmsg":"system error"}`, wantErr: ErrTemplateAPI, contains: "errcode -1"},
		{name: "not JSON", body: `<xml/>`, wantErr: ErrTemplateResponse},
		{name: "data not an array", body: `{"errcode":0,"data":{}}`, wantErr: ErrTemplateResponse},
		{name: "missing id", body: `{"errcode":0,"data":[{"title":"x","content":"{{thing1.DATA}}"}]}`, wantErr: ErrTemplateResponse},
		{name: "bad type", body: `{"errcode":0,"data":[{"priTmplId":"t","type":"two"}]}`, wantErr: ErrTemplateResponse},
		{name: "oversized", body: `{"errmsg":"` + strings.Repeat("x", maxTemplateBody) + `"}`, wantErr: ErrTemplateResponse},
		{
			name:    "too many keywords",
			body:    `{"errcode":0,"data":[{"priTmplId":"t","content":"` + manyPlaceholders(maxTemplateKeywords+1) + `"}]}`,
			wantErr: ErrTemplateResponse,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTemplates([]byte(tt.body))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseTemplates(%q) = %v, %v, want %v", shortForTest(tt.body), got, err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("ParseTemplates(%q) = %q, want it to contain %q", shortForTest(tt.body), err, tt.contains)
			}
			if len(err.Error()) > 400 {
				t.Errorf("ParseTemplates(%q) error is %d bytes, want a bounded message", shortForTest(tt.body), len(err.Error()))
			}
		})
	}
}

func manyPlaceholders(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("{{thing" + strconv.Itoa(i+1) + ".DATA}}")
	}
	return b.String()
}

func FuzzParseTemplates(f *testing.F) {
	f.Add([]byte(gettemplateBody))
	f.Add([]byte(`{"errcode":40001,"errmsg":"invalid credential"}`))
	f.Add([]byte(`{"data":[{"priTmplId":"t","content":"{{enum1.DATA}}","type":"2","keywordEnumValueList":[{"keywordCode":"enum1","enumValueList":["a"]}]}]}`))
	f.Add([]byte(`{"data":[{"priTmplId":"t","content":"{{{{x.DATA}}}}{{.DATA}}"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		templates, err := ParseTemplates(body)
		if err != nil {
			if !errors.Is(err, ErrTemplateResponse) && !errors.Is(err, ErrTemplateAPI) {
				t.Fatalf("ParseTemplates = %v, wraps no sentinel", err)
			}
			return
		}
		for _, tmpl := range templates {
			if tmpl.ID == "" {
				t.Fatalf("template without id: %+v", tmpl)
			}
			if len(tmpl.Keywords) > maxTemplateKeywords {
				t.Fatalf("template with %d keywords", len(tmpl.Keywords))
			}
			seen := map[string]bool{}
			for _, kw := range tmpl.Keywords {
				if !validTemplateKey(kw.Key) || seen[kw.Key] || kw.Type == "" {
					t.Fatalf("bad or repeated keyword %+v in %+v", kw, tmpl)
				}
				seen[kw.Key] = true
				if typ, ok := KeywordType(kw.Key); ok && typ != kw.Type {
					t.Fatalf("keyword %q has type %q, want %q", kw.Key, kw.Type, typ)
				}
			}
		}
	})
}
