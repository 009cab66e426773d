package schemas

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/go-playground/validator/v10"
)

// sendTestTemplate is a one-time meeting template with an enum keyword.
func sendTestTemplate() Template {
	return Template{
		ID: "9Aw5ZV1j9xdWTFEkqCpZ7mIBbSC34khK55OtzUPl0rU", Title: "会议提醒", Type: TemplateOneTime,
		Keywords: []Keyword{
			{Key: "date2", Type: "date"},
			{Key: "thing3", Type: "thing"},
			{Key: "phrase4", Type: "phrase"},
			{Key: "enum5", Type: "enum", Enum: []string{"进行中", "已结束"}},
			{Key: "name6", Type: "name"},
		},
	}
}

// validSendRequest returns a request that satisfies sendTestTemplate.
func validSendRequest() SendRequest {
	return SendRequest{
		ToUser:     "o9AgO5Kd5ggOC-bXrbNODIiE3bGY",
		TemplateID: "9Aw5ZV1j9xdWTFEkqCpZ7mIBbSC34khK55OtzUPl0rU",
		Page:       "pages/meeting/detail?id=42",
		Data: map[string]string{
			"date2": "2019年10月1日 15:01", "thing3": "TIT会议室", "phrase4": "已开始", "enum5": "进行中", "name6": "张三",
		},
	}
}

func TestCheckWithTemplate(t *testing.T) {
	v := NewValidator()
	tmpl := sendTestTemplate()
	tests := []struct {
		name   string
		modify func(r *SendRequest)
		want   FieldErrors
	}{
		{name: "valid", modify: func(*SendRequest) {}},
		{
			name: "valid with every optional field",
			modify: func(r *SendRequest) {
				r.MiniprogramState, r.Lang = "developer", "zh_HK"
			},
		},
		{
			name:   "missing keyword",
			modify: func(r *SendRequest) { delete(r.Data, "phrase4") },
			want:   FieldErrors{{Field: "data.phrase4", Rule: "required", Message: "data.phrase4 is required by the template"}},
		},
		{
			name:   "keyword outside the template",
			modify: func(r *SendRequest) { r.Data["thing9"] = "额外" },
			want: FieldErrors{{Field: "data.thing9", Rule: "unknown_keyword",
				Message: "data.thing9 is not a keyword of template 9Aw5ZV1j9xdWTFEkqCpZ7mIBbSC34khK55OtzUPl0rU"}},
		},
		{
			name:   "value outside the enum",
			modify: func(r *SendRequest) { r.Data["enum5"] = "已取消" },
			want: FieldErrors{{Field: "data.enum5", Rule: "enum",
				Message: `data.enum5 must be one of the template's values: "进行中", "已结束"`}},
		},
		{
			name:   "bad value",
			modify: func(r *SendRequest) { r.Data["thing3"] = strings.Repeat("会", 21) },
			want:   FieldErrors{{Field: "data.thing3", Rule: "thing", Message: "data.thing3 must be at most 20 characters"}},
		},
		{
			name: "many errors at once, all listed",
			modify: func(r *SendRequest) {
				r.ToUser = ""
				r.TemplateID = "模板"
				r.Page = strings.Repeat("p", 1025)
				r.MiniprogramState = "beta"
				r.Lang = "fr_FR"
				r.Data["date2"] = "2019-02-30"
				r.Data["thing3"] = "a\nb"
				r.Data["enum5"] = "未知"
				r.Data["thing9"] = "额外"
				delete(r.Data, "phrase4")
				delete(r.Data, "name6")
			},
			want: FieldErrors{
				{Field: "touser", Rule: "required", Message: "touser is required"},
				{Field: "template_id", Rule: "printascii", Message: "template_id must contain printable ASCII characters only"},
				{Field: "page", Rule: "max", Message: "page must have at most 1024 characters"},
				{Field: "miniprogram_state", Rule: "oneof", Message: "miniprogram_state must be one of: developer, trial, formal"},
				{Field: "lang", Rule: "oneof", Message: "lang must be one of: zh_CN, en_US, zh_HK, zh_TW"},
				{Field: "data.date2", Rule: "date", Message: "data.date2 must be a real calendar date and time"},
				{Field: "data.enum5", Rule: "enum", Message: `data.enum5 must be one of the template's values: "进行中", "已结束"`},
				{Field: "data.name6", Rule: "required", Message: "data.name6 is required by the template"},
				{Field: "data.phrase4", Rule: "required", Message: "data.phrase4 is required by the template"},
				{Field: "data.thing3", Rule: "thing", Message: "data.thing3 must not contain line breaks, control or invisible characters"},
				{Field: "data.thing9", Rule: "unknown_keyword", Message: "data.thing9 is not a keyword of template 9Aw5ZV1j9xdWTFEkqCpZ7mIBbSC34khK55OtzUPl0rU"},
			},
		},
		{
			name:   "empty data reports data and every keyword",
			modify: func(r *SendRequest) { r.Data = map[string]string{} },
			want: FieldErrors{
				{Field: "data", Rule: "min", Message: "data must have at least 1 keyword"},
				{Field: "data.date2", Rule: "required", Message: "data.date2 is required by the template"},
				{Field: "data.enum5", Rule: "required", Message: "data.enum5 is required by the template"},
				{Field: "data.name6", Rule: "required", Message: "data.name6 is required by the template"},
				{Field: "data.phrase4", Rule: "required", Message: "data.phrase4 is required by the template"},
				{Field: "data.thing3", Rule: "required", Message: "data.thing3 is required by the template"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validSendRequest()
			tt.modify(&r)
			got := v.Check(&r, &tmpl)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Check(%+v) =\n%s\nwant\n%s", r, formatFieldErrors(got), formatFieldErrors(tt.want))
			}
		})
	}
}

func TestCheckWithoutTemplate(t *testing.T) {
	v := NewValidator()
	tests := []struct {
		name string
		data map[string]string
		want FieldErrors
	}{
		{
			name: "valid, enum accepted",
			data: map[string]string{"thing1": "会议", "number2": "3.5", "enum3": "任意值", "character_string4": "A-1"},
		},
		{
			name: "unknown type prefix",
			data: map[string]string{"thing1": "会议", "foo2": "x"},
			want: FieldErrors{{Field: "data.foo2", Rule: "unknown_keyword", Message: "data.foo2 is not a keyword type followed by digits"}},
		},
		{
			name: "key without digits",
			data: map[string]string{"thing": "会议"},
			want: FieldErrors{{Field: "data.thing", Rule: "unknown_keyword", Message: "data.thing is not a keyword type followed by digits"}},
		},
		{
			name: "rules applied by prefix",
			data: map[string]string{"thing1": strings.Repeat("a", 21), "number2": "-1", "enum3": strings.Repeat("a", 21)},
			want: FieldErrors{
				{Field: "data.enum3", Rule: "enum", Message: "data.enum3 must be at most 20 characters"},
				{Field: "data.number2", Rule: "number", Message: "data.number2 must be digits with at most one decimal point"},
				{Field: "data.thing1", Rule: "thing", Message: "data.thing1 must be at most 20 characters"},
			},
		},
		{
			name: "no data",
			want: FieldErrors{{Field: "data", Rule: "required", Message: "data is required"}},
		},
		{
			name: "too many keywords reported once",
			data: manyKeywords(maxDataKeywords + 1),
			want: FieldErrors{{Field: "data", Rule: "max", Message: "data must have at most 64 keywords"}},
		},
		{
			name: "64 keywords accepted",
			data: manyKeywords(maxDataKeywords),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := SendRequest{ToUser: "o1", TemplateID: "t1", Data: tt.data}
			got := v.Check(&r, nil)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Check(%v) =\n%s\nwant\n%s", tt.data, formatFieldErrors(got), formatFieldErrors(tt.want))
			}
		})
	}
}

func TestCheckRequestFields(t *testing.T) {
	v := NewValidator()
	tests := []struct {
		name   string
		modify func(r *SendRequest)
		want   FieldErrors
	}{
		{
			name:   "touser too long",
			modify: func(r *SendRequest) { r.ToUser = strings.Repeat("o", 129) },
			want:   FieldErrors{{Field: "touser", Rule: "max", Message: "touser must have at most 128 characters"}},
		},
		{
			name:   "touser with a control character",
			modify: func(r *SendRequest) { r.ToUser = "o1\n" },
			want:   FieldErrors{{Field: "touser", Rule: "printascii", Message: "touser must contain printable ASCII characters only"}},
		},
		{
			name:   "template id missing",
			modify: func(r *SendRequest) { r.TemplateID = "" },
			want:   FieldErrors{{Field: "template_id", Rule: "required", Message: "template_id is required"}},
		},
		{
			name:   "page of 1024 accepted",
			modify: func(r *SendRequest) { r.Page = strings.Repeat("p", 1024) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validSendRequest()
			tt.modify(&r)
			got := v.Check(&r, nil)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Check(%+v) =\n%s\nwant\n%s", r, formatFieldErrors(got), formatFieldErrors(tt.want))
			}
		})
	}
}

func TestCheckNilRequest(t *testing.T) {
	got := NewValidator().Check(nil, nil)
	if len(got) != 1 || got[0].Rule != RuleRequired {
		t.Errorf("Check(nil) = %v, want one required error", got)
	}
}

func TestCheckNeverRepeatsValues(t *testing.T) {
	v := NewValidator()
	tmpl := sendTestTemplate()
	const secret = "PRIVATE13800138000"
	r := validSendRequest()
	r.ToUser = secret + "\u00e9"
	for _, key := range []string{"date2", "thing3", "phrase4", "enum5", "name6"} {
		r.Data[key] = secret + strings.Repeat("x", 30)
	}
	got := v.Check(&r, &tmpl)
	if len(got) != 6 {
		t.Fatalf("Check = %s, want 6 errors", formatFieldErrors(got))
	}
	if strings.Contains(got.Error(), "PRIVATE") {
		t.Errorf("Check errors %q repeat a value", got.Error())
	}
}

func TestFieldErrorsError(t *testing.T) {
	errs := FieldErrors{
		{Field: "touser", Rule: "required", Message: "touser is required"},
		{Field: "data.thing1", Rule: "thing", Message: "data.thing1 must not be empty"},
	}
	var err error = errs
	if got, want := err.Error(), "touser is required; data.thing1 must not be empty"; got != want {
		t.Errorf("FieldErrors.Error() = %q, want %q", got, want)
	}
	var back FieldErrors
	if !errors.As(err, &back) || len(back) != 2 {
		t.Errorf("errors.As(FieldErrors) = %v, want the list back", back)
	}
}

func TestValidatorKeywordTags(t *testing.T) {
	type card struct {
		Title string `json:"title" validate:"thing"`
		When  string `json:"when" validate:"date"`
		Count string `json:"count" validate:"number"`
		Fee   string `json:"fee" validate:"omitempty,amount"`
	}
	tests := []struct {
		name string
		in   card
		want []string // failing fields
	}{
		{name: "valid", in: card{Title: "会议", When: "2019-10-01", Count: "3", Fee: "¥5"}},
		{name: "omitempty", in: card{Title: "会议", When: "10月1日", Count: "3.5"}},
		{
			name: "every tag fails",
			in:   card{Title: strings.Repeat("会", 21), When: "2019-02-30", Count: "-3", Fee: "5美元"},
			want: []string{"title", "when", "count", "fee"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := validatorFields(checker().Struct(tt.in))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Struct(%+v) failed on %v, want %v", tt.in, got, tt.want)
			}
		})
	}
	for _, typ := range keywordTags() {
		if err := checker().Var("\n", typ); err == nil {
			t.Errorf("Var(%q, %q) = nil, want an error", "\n", typ)
		}
	}
}

func TestValidatorConcurrent(t *testing.T) {
	v := NewValidator()
	tmpl := sendTestTemplate()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			r := validSendRequest()
			if i%2 == 1 {
				r.Data["thing3"] = ""
			}
			for range 100 {
				got := v.Check(&r, &tmpl)
				if (i%2 == 1) != (len(got) == 1) {
					t.Errorf("goroutine %d: Check = %v", i, got)
					return
				}
			}
		})
	}
	wg.Wait()
}

func manyKeywords(n int) map[string]string {
	data := make(map[string]string, n)
	for i := range n {
		data["thing"+strconv.Itoa(i+1)] = "值"
	}
	return data
}

func formatFieldErrors(errs FieldErrors) string {
	var b strings.Builder
	for _, fe := range errs {
		b.WriteString("  " + fe.Field + " [" + fe.Rule + "] " + fe.Message + "\n")
	}
	if b.Len() == 0 {
		return "  (none)\n"
	}
	return b.String()
}

// validatorFields lists the JSON names of the fields a validator error names.
func validatorFields(err error) []string {
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return nil
	}
	names := make([]string, len(verrs))
	for i, fe := range verrs {
		names[i] = fe.Field()
	}
	return names
}

func BenchmarkCheck(b *testing.B) {
	v := NewValidator()
	tmpl := sendTestTemplate()
	r := validSendRequest()
	b.Run("template", func(b *testing.B) {
		for b.Loop() {
			if errs := v.Check(&r, &tmpl); errs != nil {
				b.Fatal(errs)
			}
		}
	})
	b.Run("no_template", func(b *testing.B) {
		for b.Loop() {
			if errs := v.Check(&r, nil); errs != nil {
				b.Fatal(errs)
			}
		}
	})
}
