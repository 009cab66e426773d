package sim

import (
	"slices"
	"strings"
	"testing"
)

func TestTemplateKeys(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []string
	}{
		{"official sample", "会议时间:{{date2.DATA}}\n地点:{{thing3.DATA}}", []string{"date2", "thing3"}},
		{"underscored type", "单号:{{character_string01.DATA}}", []string{"character_string01"}},
		{"repeated key once", "{{thing1.DATA}}{{thing1.DATA}}", []string{"thing1"}},
		{"no digits", "{{thing.DATA}}", nil},
		{"not DATA", "{{thing1.VALUE}}", nil},
		{"unclosed", "{{thing1.DATA", nil},
		{"upper case", "{{Thing1.DATA}}", nil},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := templateKeys(tt.content); !slices.Equal(got, tt.want) {
				t.Fatalf("templateKeys(%q) = %v, want %v", tt.content, got, tt.want)
			}
		})
	}
}

func TestValidValue(t *testing.T) {
	enums := map[string][]string{"enum1": {"已发货"}}
	tests := []struct {
		name, key, value string
		want             bool
	}{
		{"thing 20", "thing1", strings.Repeat("字", 20), true},
		{"thing 21", "thing1", strings.Repeat("字", 21), false},
		{"thing newline", "thing1", "a\nb", false},
		{"empty", "thing1", "", false},
		{"invalid utf8", "thing1", "\xff", false},
		{"number decimal", "number01", "3.14", true},
		{"number letters", "number01", "3a", false},
		{"number two dots", "number01", "1.2.3", false},
		{"letter", "letter2", "abc", true},
		{"letter digit", "letter2", "ab1", false},
		{"symbol", "symbol3", "%$", true},
		{"symbol letter", "symbol3", "a", false},
		{"character_string", "character_string4", "A-1024_x", true},
		{"character_string chinese", "character_string4", "中", false},
		{"time", "time5", "15:01", true},
		{"time no digit", "time5", "noon", false},
		{"date", "date6", "2019年10月1日", true},
		{"amount", "amount7", "¥100.00元", true},
		{"phone", "phone_number8", "+86-0766-66888866", true},
		{"phone letters", "phone_number8", "call me", false},
		{"car", "car_number9", "粤A8Z888挂", true},
		{"name chinese 10", "name1", strings.Repeat("张", 10), true},
		{"name chinese 11", "name1", strings.Repeat("张", 11), false},
		{"name latin 20", "name1", strings.Repeat("a", 20), true},
		{"phrase", "phrase3", "已受理", true},
		{"phrase long", "phrase3", "已经受理完毕了", false},
		{"enum listed", "enum1", "已发货", true},
		{"enum unlisted", "enum1", "丢了", false},
		{"enum without list", "enum2", "任意", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := validValue(tt.key, tt.value, enums); got != tt.want {
				t.Fatalf("validValue(%q, %q) = %v, want %v", tt.key, tt.value, got, tt.want)
			}
		})
	}
}
