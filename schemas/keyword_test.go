package schemas

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestKeywordType(t *testing.T) {
	tests := []struct {
		name   string
		key    string
		want   string
		wantOK bool
	}{
		{name: "thing", key: "thing1", want: "thing", wantOK: true},
		{name: "two digits with a zero", key: "number01", want: "number", wantOK: true},
		{name: "underscore type", key: "character_string2", want: "character_string", wantOK: true},
		{name: "phone number", key: "phone_number12", want: "phone_number", wantOK: true},
		{name: "car number", key: "car_number3", want: "car_number", wantOK: true},
		{name: "enum", key: "enum5", want: "enum", wantOK: true},
		{name: "every type: letter", key: "letter7", want: "letter", wantOK: true},
		{name: "every type: symbol", key: "symbol7", want: "symbol", wantOK: true},
		{name: "every type: time", key: "time7", want: "time", wantOK: true},
		{name: "every type: date", key: "date7", want: "date", wantOK: true},
		{name: "every type: amount", key: "amount7", want: "amount", wantOK: true},
		{name: "every type: name", key: "name7", want: "name", wantOK: true},
		{name: "every type: phrase", key: "phrase7", want: "phrase", wantOK: true},
		{name: "no digits", key: "thing"},
		{name: "digits only", key: "12"},
		{name: "empty", key: ""},
		{name: "unknown type", key: "string1"},
		{name: "upper case", key: "Thing1"},
		{name: "digit in the middle", key: "thing1a"},
		{name: "partial type", key: "character1"},
		{name: "oversized", key: "thing" + strings.Repeat("1", maxKeywordKeyLen)},
		{name: "space", key: "thing 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := KeywordType(tt.key)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("KeywordType(%q) = %q, %v, want %q, %v", tt.key, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// keywordCase is one value checked against one keyword type.
type keywordCase struct {
	name  string
	value string
	ok    bool
}

// runKeywordCases checks every case against key and fails on a wrong verdict.
func runKeywordCases(t *testing.T, key string, cases []keywordCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckKeyword(key, tt.value)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckKeyword(%q, %q) = %v, want ok=%v", key, tt.value, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidKeyword) {
				t.Errorf("CheckKeyword(%q, %q) = %v, want it to wrap ErrInvalidKeyword", key, tt.value, err)
			}
		})
	}
}

// commonInvalid are values every keyword type rejects.
func commonInvalid() []keywordCase {
	return []keywordCase{
		{name: "common: empty", value: ""},
		{name: "common: newline", value: "12\n34"},
		{name: "common: carriage return", value: "12\r"},
		{name: "common: tab", value: "1\t2"},
		{name: "common: NUL", value: "1\x002"},
		{name: "common: invalid UTF-8", value: "12\xff"},
		{name: "common: huge", value: strings.Repeat("1", 10000)},
	}
}

func TestCheckKeywordThing(t *testing.T) {
	runKeywordCases(t, "thing1", append([]keywordCase{
		{name: "Chinese", value: "会议室", ok: true},
		{name: "20 Chinese characters", value: strings.Repeat("测", 20), ok: true},
		{name: "21 Chinese characters", value: strings.Repeat("测", 21)},
		{name: "20 ASCII letters", value: strings.Repeat("a", 20), ok: true},
		{name: "21 ASCII letters", value: strings.Repeat("a", 21)},
		{name: "mixed with symbols and spaces", value: "订单 #123 已发货!", ok: true},
		{name: "one character", value: "a", ok: true},
		{name: "emoji counts as one", value: strings.Repeat("测", 19) + "🎉", ok: true},
		{name: "full-width punctuation", value: "会议（线上）：开始", ok: true},
		{name: "blank", value: "   "},
		{name: "ideographic space only", value: "\u3000"},
		{name: "zero-width space", value: "会\u200b议"},
		{name: "zero-width joiner", value: "👨\u200d👩"},
		{name: "line separator", value: "a\u2028b"},
		{name: "DEL", value: "a\x7f"},
		{name: "C1 control", value: "a\u0085"},
	}, commonInvalid()...))
}

func TestCheckKeywordNumber(t *testing.T) {
	runKeywordCases(t, "number01", append([]keywordCase{
		{name: "zero", value: "0", ok: true},
		{name: "integer", value: "12345", ok: true},
		{name: "decimal", value: "3.14", ok: true},
		{name: "32 digits", value: strings.Repeat("9", 32), ok: true},
		{name: "33 digits", value: strings.Repeat("9", 33)},
		{name: "32 digits and a point", value: strings.Repeat("1", 16) + "." + strings.Repeat("2", 16), ok: true},
		{name: "33 digits and a point", value: strings.Repeat("1", 16) + "." + strings.Repeat("2", 17)},
		{name: "negative is rejected", value: "-1"},
		{name: "plus sign", value: "+1"},
		{name: "two points", value: "1.2.3"},
		{name: "leading point", value: ".5"},
		{name: "trailing point", value: "5."},
		{name: "point only", value: "."},
		{name: "thousands separator", value: "1,000"},
		{name: "exponent", value: "1e5"},
		{name: "full-width digits", value: "１２"},
		{name: "space", value: " 1"},
	}, commonInvalid()...))
}

func TestCheckKeywordLetter(t *testing.T) {
	runKeywordCases(t, "letter2", append([]keywordCase{
		{name: "lower", value: "abc", ok: true},
		{name: "mixed case", value: "ABCxyz", ok: true},
		{name: "32 letters", value: strings.Repeat("a", 32), ok: true},
		{name: "33 letters", value: strings.Repeat("a", 33)},
		{name: "digit", value: "abc1"},
		{name: "space", value: "ab c"},
		{name: "accented", value: "é"},
		{name: "Chinese", value: "中"},
		{name: "full-width letter", value: "ａ"},
	}, commonInvalid()...))
}

func TestCheckKeywordSymbol(t *testing.T) {
	runKeywordCases(t, "symbol3", append([]keywordCase{
		{name: "one", value: "!", ok: true},
		{name: "five ASCII", value: "@#$%^", ok: true},
		{name: "full-width punctuation", value: "，。", ok: true},
		{name: "currency", value: "¥", ok: true},
		{name: "arrow", value: "→", ok: true},
		{name: "five Chinese punctuation", value: "《》、？！", ok: true},
		{name: "six", value: "!!!!!!"},
		{name: "letter", value: "a"},
		{name: "digit", value: "1"},
		{name: "space inside", value: "! !"},
		{name: "Chinese", value: "中"},
	}, commonInvalid()...))
}

func TestCheckKeywordCharacterString(t *testing.T) {
	runKeywordCases(t, "character_string1", append([]keywordCase{
		{name: "order number", value: "A1B2-C3_D4", ok: true},
		{name: "with slash and hash", value: "ORDER#2024/01", ok: true},
		{name: "32 digits", value: strings.Repeat("1", 32), ok: true},
		{name: "33 digits", value: strings.Repeat("1", 33)},
		{name: "32 mixed with symbols", value: strings.Repeat("a-", 16), ok: true},
		{name: "Chinese", value: "订单123"},
		{name: "space", value: "a b"},
		{name: "accented letter", value: "café"},
	}, commonInvalid()...))
}

func TestCheckKeywordTime(t *testing.T) {
	runKeywordCases(t, "time4", append([]keywordCase{
		{name: "hour minute", value: "15:01", ok: true},
		{name: "with seconds", value: "15:01:02", ok: true},
		{name: "one-digit hour", value: "9:05", ok: true},
		{name: "midnight", value: "0:00", ok: true},
		{name: "last second", value: "23:59:59", ok: true},
		{name: "Chinese date", value: "2019年10月1日 15:01", ok: true},
		{name: "Chinese date without space", value: "2019年10月1日15:01", ok: true},
		{name: "dashed date", value: "2019-10-01 15:01", ok: true},
		{name: "slashed date and seconds", value: "2019/10/01 15:01:02", ok: true},
		{name: "dotted date", value: "2019.10.01 15:01", ok: true},
		{name: "month and day", value: "10月1日 15:01", ok: true},
		{name: "numeric month and day", value: "01-01 08:00", ok: true},
		{name: "two spaces", value: "2019-10-01  15:01", ok: true},
		{name: "range", value: "15:01~16:00", ok: true},
		{name: "range with spaces", value: "15:01 ~ 16:00", ok: true},
		{name: "range of date times", value: "2019-10-01 15:01~2019-10-02 09:00", ok: true},
		{name: "range ending in a time", value: "2019年10月1日 15:01~16:00", ok: true},
		{name: "leap day", value: "2020-02-29 12:00", ok: true},
		{name: "hour 24", value: "24:00"},
		{name: "minute 60", value: "15:60"},
		{name: "second 60", value: "15:01:60"},
		{name: "one-digit minute", value: "15:1"},
		{name: "three-digit hour", value: "115:01"},
		{name: "no colon", value: "1501"},
		{name: "date only", value: "2019-10-01"},
		{name: "Chinese date only", value: "2019年10月1日"},
		{name: "year-month then time", value: "2018-01 15:00"},
		{name: "dashed date without space", value: "2019-10-0115:01"},
		{name: "open range", value: "15:01~"},
		{name: "range without start", value: "~15:01"},
		{name: "three points", value: "15:01~16:00~17:00"},
		{name: "no such day", value: "2019-02-29 10:00"},
		{name: "ISO T", value: "2019-10-01T15:01"},
		{name: "words", value: "下午3点"},
		{name: "trailing space", value: "15:01 "},
		{name: "leading space", value: " 15:01"},
		{name: "full-width tilde", value: "15:01～16:00"},
		{name: "full-width colon", value: "15：01"},
	}, commonInvalid()...))
}

func TestCheckKeywordDate(t *testing.T) {
	runKeywordCases(t, "date2", append([]keywordCase{
		{name: "Chinese", value: "2019年10月1日", ok: true},
		{name: "dashed", value: "2018-01-01", ok: true},
		{name: "slashed", value: "2018/01/01", ok: true},
		{name: "dotted", value: "2018.01.01", ok: true},
		{name: "year-month", value: "2018-01", ok: true},
		{name: "month-day", value: "01-01", ok: true},
		{name: "Chinese month-day", value: "10月1日", ok: true},
		{name: "Chinese year-month", value: "2019年10月", ok: true},
		{name: "one-digit fields", value: "2018-1-1", ok: true},
		{name: "leap day", value: "2020-02-29", ok: true},
		{name: "leap day of 2000", value: "2000-02-29", ok: true},
		{name: "leap day without year", value: "02-29", ok: true},
		{name: "with time", value: "2019年10月1日 15:01", ok: true},
		{name: "with seconds", value: "2018-01-01 15:01:02", ok: true},
		{name: "range", value: "2018-01-01~2018-01-31", ok: true},
		{name: "range with spaces", value: "2018-01-01 ~ 2018-02-01", ok: true},
		{name: "range with times", value: "2019年10月1日 15:00~16:00", ok: true},
		{name: "Chinese range", value: "10月1日~10月7日", ok: true},
		{name: "no leap day", value: "2019-02-29"},
		{name: "no leap day in 1900", value: "1900-02-29"},
		{name: "month 13", value: "2018-13-01"},
		{name: "month 0", value: "2018-00-10"},
		{name: "April 31", value: "2018-04-31"},
		{name: "day 0", value: "2018-04-00"},
		{name: "Chinese February 30", value: "2018年2月30日"},
		{name: "Chinese month 13", value: "13月1日"},
		{name: "mixed separators", value: "2018-01/01"},
		{name: "two-digit year", value: "18-01-01"},
		{name: "three-digit month", value: "2018-001-01"},
		{name: "three-digit day", value: "2018-01-011"},
		{name: "year 0", value: "0000-01-01"},
		{name: "time only", value: "15:01"},
		{name: "bad time", value: "2018-01-01 25:00"},
		{name: "open range", value: "2018-01-01~"},
		{name: "range starting with a time", value: "15:00~2018-01-01"},
		{name: "range of bare times", value: "2018-01-01~16:00"},
		{name: "words", value: "明天"},
		{name: "year only", value: "2018"},
	}, commonInvalid()...))
}

func TestCheckKeywordAmount(t *testing.T) {
	runKeywordCases(t, "amount5", append([]keywordCase{
		{name: "yuan sign", value: "¥100", ok: true},
		{name: "full-width yuan sign with cents", value: "￥8.00", ok: true},
		{name: "dollar", value: "$9.99", ok: true},
		{name: "euro one decimal", value: "€0.5", ok: true},
		{name: "pound 10 digits", value: "£1234567890", ok: true},
		{name: "yuan suffix without symbol", value: "100元", ok: true},
		{name: "symbol and suffix", value: "¥100元", ok: true},
		{name: "plain digits", value: "100", ok: true},
		{name: "decimal with suffix", value: "100.5元", ok: true},
		{name: "won", value: "₩5000", ok: true},
		{name: "11 digits", value: "¥12345678901"},
		{name: "3 decimals", value: "¥1.234"},
		{name: "symbol only", value: "¥"},
		{name: "suffix only", value: "元"},
		{name: "negative before symbol", value: "-¥5"},
		{name: "negative after symbol", value: "¥-5"},
		{name: "thousands separator", value: "¥1,000"},
		{name: "space after symbol", value: "¥ 100"},
		{name: "two symbols", value: "¥¥100"},
		{name: "other suffix", value: "100美元"},
		{name: "trailing point", value: "1."},
		{name: "leading point", value: "¥.5"},
		{name: "letters", value: "abc"},
		{name: "currency code", value: "USD100"},
	}, commonInvalid()...))
}

func TestCheckKeywordPhoneNumber(t *testing.T) {
	runKeywordCases(t, "phone_number6", append([]keywordCase{
		{name: "WeChat example, 17 characters", value: "+86-0766-66888866", ok: true},
		{name: "mobile", value: "13800138000", ok: true},
		{name: "parentheses and space", value: "(020) 1234-5678", ok: true},
		{name: "international 17", value: "+1 (555) 010-9999", ok: true},
		{name: "18 characters", value: "+86-0766-668888661"},
		{name: "letters", value: "abc"},
		{name: "symbols only", value: "+-()"},
		{name: "hash", value: "138#1234"},
		{name: "full-width digits", value: "１３８"},
	}, commonInvalid()...))
}

func TestCheckKeywordCarNumber(t *testing.T) {
	runKeywordCases(t, "car_number7", append([]keywordCase{
		{name: "Guangdong plate", value: "粤A12345", ok: true},
		{name: "Chinese last", value: "粤B1234学", ok: true},
		{name: "new energy, 8 characters", value: "京AD12345", ok: true},
		{name: "ASCII only", value: "ABC123", ok: true},
		{name: "Hong Kong suffix", value: "粤Z1234港", ok: true},
		{name: "9 characters", value: "粤A123456学"},
		{name: "Chinese in the middle", value: "A粤1234"},
		{name: "dash", value: "粤A-12345"},
		{name: "space", value: "粤A 12345"},
		{name: "middle dot", value: "粤A·12345"},
	}, commonInvalid()...))
}

func TestCheckKeywordName(t *testing.T) {
	runKeywordCases(t, "name8", append([]keywordCase{
		{name: "Chinese", value: "张三", ok: true},
		{name: "10 Chinese", value: strings.Repeat("张", 10), ok: true},
		{name: "11 Chinese", value: strings.Repeat("张", 11)},
		{name: "Western with space", value: "John Smith", ok: true},
		{name: "accented", value: "José", ok: true},
		{name: "20 letters", value: strings.Repeat("a", 20), ok: true},
		{name: "21 letters", value: strings.Repeat("a", 21)},
		{name: "hyphen and apostrophe", value: "Mary-Jane O'Neil", ok: true},
		{name: "mixed within 10", value: "李Lee", ok: true},
		{name: "mixed over 10", value: "张三abcdefghi"},
		{name: "middle dot", value: "阿卜杜·热合曼", ok: true},
		{name: "digit", value: "John2"},
		{name: "blank", value: " "},
	}, commonInvalid()...))
}

func TestCheckKeywordPhrase(t *testing.T) {
	runKeywordCases(t, "phrase4", append([]keywordCase{
		{name: "three", value: "已完成", ok: true},
		{name: "five", value: "一二三四五", ok: true},
		{name: "one", value: "好", ok: true},
		{name: "six", value: "一二三四五六"},
		{name: "letters", value: "OK"},
		{name: "punctuation", value: "完成!"},
		{name: "space", value: "已 完成"},
	}, commonInvalid()...))
}

func TestCheckKeywordEnumWithoutTemplate(t *testing.T) {
	runKeywordCases(t, "enum9", append([]keywordCase{
		{name: "label", value: "已发货", ok: true},
		{name: "20 characters", value: strings.Repeat("a", 20), ok: true},
		{name: "21 characters", value: strings.Repeat("a", 21)},
	}, commonInvalid()...))
}

func TestCheckKeywordUnknownKey(t *testing.T) {
	for _, key := range []string{"foo1", "thing", "", "1", "thing1a", strings.Repeat("k", 5000) + "1"} {
		err := CheckKeyword(key, "value")
		if !errors.Is(err, ErrUnknownKeyword) {
			t.Errorf("CheckKeyword(%q) = %v, want ErrUnknownKeyword", shortForTest(key), err)
			continue
		}
		if n := len(err.Error()); n > 200 {
			t.Errorf("CheckKeyword(%q) error is %d bytes, want a bounded message", shortForTest(key), n)
		}
	}
}

func TestKeywordErrorDoesNotRepeatValue(t *testing.T) {
	const value = "SECRET-Phone-13800138000-with-extra-text"
	err := CheckKeyword("thing1", value)
	var kerr *KeywordError
	if !errors.As(err, &kerr) {
		t.Fatalf("CheckKeyword = %v, want a *KeywordError", err)
	}
	if kerr.Key != "thing1" || kerr.Type != "thing" || !errors.Is(err, ErrInvalidKeyword) {
		t.Errorf("KeywordError = %+v, want key thing1, type thing, ErrInvalidKeyword", kerr)
	}
	if strings.Contains(err.Error(), "SECRET") {
		t.Errorf("error %q repeats the value", err)
	}
}

func shortForTest(s string) string {
	if len(s) > 20 {
		return s[:20] + "..."
	}
	return s
}

func FuzzCheckKeyword(f *testing.F) {
	for _, seed := range []struct{ key, value string }{
		{"thing1", "会议室"}, {"number01", "3.14"}, {"letter2", "abc"}, {"symbol3", "!"},
		{"character_string4", "A-1"}, {"time5", "2019年10月1日 15:01~16:00"}, {"date6", "2018-01-01~2018-02-01"},
		{"amount7", "¥100.5元"}, {"phone_number8", "+86-0766-66888866"}, {"car_number9", "粤A12345"},
		{"name10", "张三"}, {"phrase11", "已完成"}, {"enum12", "a"}, {"foo1", "x"}, {"thing1", "a\nb"},
	} {
		f.Add(seed.key, seed.value)
	}
	f.Fuzz(func(t *testing.T, key, value string) {
		err1 := CheckKeyword(key, value)
		err2 := CheckKeyword(key, value)
		if (err1 == nil) != (err2 == nil) || err1 != nil && err1.Error() != err2.Error() {
			t.Fatalf("CheckKeyword(%q, %q) not deterministic: %v then %v", key, value, err1, err2)
		}
		if err1 != nil {
			if !errors.Is(err1, ErrUnknownKeyword) && !errors.Is(err1, ErrInvalidKeyword) {
				t.Fatalf("CheckKeyword(%q, %q) = %v, wraps no sentinel", key, value, err1)
			}
			if len(value) > 8 && strings.Contains(err1.Error(), value) {
				t.Fatalf("CheckKeyword(%q, %q) = %v, repeats the value", key, value, err1)
			}
			return
		}
		if value == "" || !utf8.ValidString(value) {
			t.Fatalf("CheckKeyword(%q, %q) = nil for empty or invalid UTF-8", key, value)
		}
		if utf8.RuneCountInString(value) > maxOtherKeywordLen {
			t.Fatalf("CheckKeyword(%q, %q) = nil for %d characters", key, value, utf8.RuneCountInString(value))
		}
		for _, r := range value {
			if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
				t.Fatalf("CheckKeyword(%q, %q) = nil with control character %U", key, value, r)
			}
		}
	})
}

func BenchmarkCheckKeyword(b *testing.B) {
	values := map[string]string{
		"thing1": "TIT会议室 3楼", "date2": "2019年10月1日 15:01~16:00", "amount3": "¥100.50",
		"name4": "欧阳娜娜", "character_string5": "ORDER-2024-000123",
	}
	for b.Loop() {
		for k, v := range values {
			if err := CheckKeyword(k, v); err != nil {
				b.Fatal(err)
			}
		}
	}
}
