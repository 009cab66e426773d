package sim

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxKeywordRunes bounds a value of a keyword type the rules below do not know.
const maxKeywordRunes = 200

// template is a configured template with its keywords parsed once.
type template struct {
	Template
	keys []string // in order of appearance, each once
}

// templateKeys returns the keywords of a template content such as
// "会议时间:{{date2.DATA}}\n地点:{{thing3.DATA}}": ["date2", "thing3"].
// Malformed placeholders are skipped.
func templateKeys(content string) []string {
	var keys []string
	rest := content
	for {
		open := strings.Index(rest, "{{")
		if open < 0 {
			return keys
		}
		rest = rest[open+2:]
		end := strings.Index(rest, "}}")
		if end < 0 {
			return keys
		}
		inner := rest[:end]
		rest = rest[end+2:]
		key, ok := strings.CutSuffix(inner, ".DATA")
		if !ok || !validKeyword(key) || slices.Contains(keys, key) {
			continue
		}
		keys = append(keys, key)
	}
}

// validKeyword reports whether key looks like "thing1" or "character_string02":
// lower-case letters and underscores, then at least one digit.
func validKeyword(key string) bool {
	if key == "" || len(key) > 64 {
		return false
	}
	prefix := keywordType(key)
	if prefix == "" || prefix == key {
		return false
	}
	for _, r := range prefix {
		if (r < 'a' || r > 'z') && r != '_' {
			return false
		}
	}
	return true
}

// keywordType strips the trailing digits of a key: "thing01" -> "thing".
func keywordType(key string) string {
	return strings.TrimRight(key, "0123456789")
}

// validValue reports whether value obeys WeChat's rule for the keyword key.
// Lengths count Unicode code points. Rules with fuzzy official wording (time,
// date, amount) check only what every valid value shares, so the simulator
// never refuses what WeChat accepts.
func validValue(key, value string, enums map[string][]string) bool {
	if value == "" || !utf8.ValidString(value) {
		return false
	}
	for _, r := range value {
		if unicode.IsControl(r) {
			return false
		}
	}
	n := utf8.RuneCountInString(value)
	switch keywordType(key) {
	case "thing":
		return n <= 20
	case "number":
		return n <= 32 && isNumber(value)
	case "letter":
		return n <= 32 && all(value, func(r rune) bool { return r < utf8.RuneSelf && unicode.IsLetter(r) })
	case "symbol":
		return n <= 5 && all(value, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	case "character_string":
		return n <= 32 && all(value, func(r rune) bool { return r >= 0x20 && r < 0x7f })
	case "time", "date":
		return n <= 64 && strings.ContainsAny(value, "0123456789")
	case "amount":
		return n <= 32 && strings.ContainsAny(value, "0123456789")
	case "phone_number":
		return n <= 17 && all(value, func(r rune) bool { return r < utf8.RuneSelf && !unicode.IsLetter(r) })
	case "car_number":
		return n <= 8
	case "name":
		if all(value, func(r rune) bool { return r < utf8.RuneSelf }) {
			return n <= 20
		}
		return n <= 10
	case "phrase":
		return n <= 5
	case "enum":
		allowed, ok := enums[key]
		return !ok || slices.Contains(allowed, value)
	default:
		return n <= maxKeywordRunes
	}
}

// isNumber accepts digits with at most one decimal point inside them.
func isNumber(s string) bool {
	digits, dot := 0, false
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '.' && !dot && i > 0 && i < len(s)-1:
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}

func all(s string, ok func(rune) bool) bool {
	for _, r := range s {
		if !ok(r) {
			return false
		}
	}
	return true
}
