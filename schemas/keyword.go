package schemas

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Keyword value rules of subscription-message template data.
//
// WeChat refuses a send whose data breaks its keyword's rule with errcode
// 47003, so wxgate checks every value when the send is requested. The rules
// follow WeChat's published table; where it is silent the choice made here is
// documented on the rule and leans towards the documented shape, since a value
// rejected here costs the caller a 400 they can fix at once, while a value
// refused by WeChat turns an accepted request into an invalid message later.
//
// Characters are Unicode code points. Every type rejects an empty or blank
// value, invalid UTF-8, and anything that is not a graphic character: control
// characters, line and paragraph separators, and invisible format characters
// such as zero-width joiners, which WeChat would count but the user cannot see.

// Keyword types: the prefix of a template key before its trailing digits.
const (
	KeywordThing           = "thing"
	KeywordNumber          = "number"
	KeywordLetter          = "letter"
	KeywordSymbol          = "symbol"
	KeywordCharacterString = "character_string"
	KeywordTime            = "time"
	KeywordDate            = "date"
	KeywordAmount          = "amount"
	KeywordPhoneNumber     = "phone_number"
	KeywordCarNumber       = "car_number"
	KeywordName            = "name"
	KeywordPhrase          = "phrase"
	KeywordEnum            = "enum"
)

// Sentinel errors of keyword checks; a *KeywordError wraps one of them.
var (
	// ErrUnknownKeyword means a data key is not a known keyword type followed
	// by digits.
	ErrUnknownKeyword = errors.New("unknown keyword")
	// ErrInvalidKeyword means a value breaks the rule of its keyword's type.
	ErrInvalidKeyword = errors.New("invalid keyword value")
)

// Bounds of keys and values, checked before any per-character work.
const (
	// maxKeywordKeyLen bounds a data key; real keys ("character_string12") are far shorter.
	maxKeywordKeyLen = 64
	// maxEnumKeywordLen bounds an enum value when the template's list is
	// unknown: enum values are short status labels, like thing values.
	maxEnumKeywordLen = 20
	// maxOtherKeywordLen bounds a value of a keyword type newer than this package:
	// the type's rule is unknown, so only the common text rule applies.
	maxOtherKeywordLen = 100
	// maxDateTimeLen bounds a time or date value in bytes; the longest legal
	// form, a range of two full Chinese dates with seconds, is about 55 bytes.
	maxDateTimeLen = 96
	// maxKeywordShownLen bounds how much of a key or template id an error message repeats.
	maxKeywordShownLen = 64
)

// KeywordError is the error of CheckKeyword: which key failed and why.
// The reason never repeats the value, which may be personal data.
type KeywordError struct {
	// Key is the data key, cut to a bounded prefix.
	Key string
	// Type is the key's keyword type, empty when the key has none.
	Type string
	// Reason says what is wrong, as a phrase following the key ("must be ...").
	Reason string
	// Err is ErrUnknownKeyword or ErrInvalidKeyword.
	Err error
}

// Error returns "keyword KEY: REASON".
func (e *KeywordError) Error() string {
	return fmt.Sprintf("keyword %s: %s", e.Key, e.Reason)
}

// Unwrap returns the sentinel the error wraps.
func (e *KeywordError) Unwrap() error { return e.Err }

// KeywordType returns the type prefix of a key: "thing1" -> "thing",
// "number01" -> "number", "character_string2" -> "character_string".
// It reports ok=false when the key is not a known type followed by at least one digit.
func KeywordType(key string) (typ string, ok bool) {
	prefix, ok := splitKeywordKey(key)
	if !ok || !knownKeywordType(prefix) {
		return "", false
	}
	return prefix, true
}

// splitKeywordKey returns the part of key before its trailing ASCII digits, and
// whether key is bounded, has a non-empty prefix and at least one digit.
func splitKeywordKey(key string) (string, bool) {
	if len(key) == 0 || len(key) > maxKeywordKeyLen {
		return "", false
	}
	i := len(key)
	for i > 0 && key[i-1] >= '0' && key[i-1] <= '9' {
		i--
	}
	if i == 0 || i == len(key) {
		return "", false
	}
	return key[:i], true
}

func knownKeywordType(typ string) bool {
	switch typ {
	case KeywordThing, KeywordNumber, KeywordLetter, KeywordSymbol, KeywordCharacterString,
		KeywordTime, KeywordDate, KeywordAmount, KeywordPhoneNumber, KeywordCarNumber,
		KeywordName, KeywordPhrase, KeywordEnum:
		return true
	}
	return false
}

// CheckKeyword validates one value against the rule of its key's type. It
// returns nil when the value is acceptable, or a *KeywordError wrapping
// ErrUnknownKeyword (the key has no known type) or ErrInvalidKeyword.
// An enum key accepts any text of at most 20 characters, since the allowed
// values live in the template; Validator.Check applies the template's list.
// It is safe for concurrent use.
func CheckKeyword(key, value string) error {
	typ, ok := KeywordType(key)
	if !ok {
		return &KeywordError{Key: kwShown(key), Reason: "is not a keyword type followed by digits", Err: ErrUnknownKeyword}
	}
	if reason := keywordRule(typ, value); reason != "" {
		return &KeywordError{Key: key, Type: typ, Reason: reason, Err: ErrInvalidKeyword}
	}
	return nil
}

// keywordRule applies the rule of keyword type typ and returns why value breaks
// it, or "" when it does not. A type unknown to this package gets the common
// text rule only, so templates using a newer WeChat type still work.
func keywordRule(typ, value string) string {
	switch typ {
	case KeywordThing:
		return kwThing(value)
	case KeywordNumber:
		return kwNumber(value)
	case KeywordLetter:
		return kwLetters(value)
	case KeywordSymbol:
		return kwSymbols(value)
	case KeywordCharacterString:
		return kwCharacterString(value)
	case KeywordTime:
		return kwTime(value)
	case KeywordDate:
		return kwDate(value)
	case KeywordAmount:
		return kwAmount(value)
	case KeywordPhoneNumber:
		return kwPhoneNumber(value)
	case KeywordCarNumber:
		return kwCarNumber(value)
	case KeywordName:
		return kwName(value)
	case KeywordPhrase:
		return kwPhrase(value)
	case KeywordEnum:
		return kwText(value, maxEnumKeywordLen)
	default:
		return kwText(value, maxOtherKeywordLen)
	}
}

// Reasons shared by several rules.
const (
	kwReasonEmpty    = "must not be empty"
	kwReasonBlank    = "must not be blank"
	kwReasonUTF8     = "must be valid UTF-8"
	kwReasonControl  = "must not contain line breaks, control or invisible characters"
	kwReasonTooLongF = "must be at most %d characters"
)

// kwText is the common text rule: non-empty, valid UTF-8, graphic
// characters only, not only spaces, at most max code points. The byte length
// is checked first so an oversized value costs no per-character work.
func kwText(s string, max int) string {
	if s == "" {
		return kwReasonEmpty
	}
	if len(s) > max*utf8.UTFMax {
		return fmt.Sprintf(kwReasonTooLongF, max)
	}
	n, blank := 0, true
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return kwReasonUTF8
			}
		}
		if !unicode.IsGraphic(r) {
			return kwReasonControl
		}
		if !unicode.IsSpace(r) {
			blank = false
		}
		n++
	}
	if blank {
		return kwReasonBlank
	}
	if n > max {
		return fmt.Sprintf(kwReasonTooLongF, max)
	}
	return ""
}

// kwThing: up to 20 characters of Chinese, digits, letters or symbols.
// Spaces inside the text are accepted, as WeChat's own examples contain them.
func kwThing(s string) string {
	return kwText(s, 20)
}

// kwNumber: up to 32 ASCII digits with at most one decimal point between
// digits. The point does not count towards the 32. A sign is rejected: WeChat's
// rule mentions only digits and a decimal point.
func kwNumber(s string) string {
	if s == "" {
		return kwReasonEmpty
	}
	if len(s) > 33 {
		return "must be at most 32 digits"
	}
	digits, point := 0, -1
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && point < 0:
			point = i
		default:
			return "must be digits with at most one decimal point"
		}
	}
	if point == 0 || point == len(s)-1 {
		return "must have digits on both sides of the decimal point"
	}
	if digits > 32 {
		return "must be at most 32 digits"
	}
	return ""
}

// kwLetters: up to 32 ASCII letters.
func kwLetters(s string) string {
	if s == "" {
		return kwReasonEmpty
	}
	if len(s) > 32 {
		return fmt.Sprintf(kwReasonTooLongF, 32)
	}
	for i := 0; i < len(s); i++ {
		if !isKwLetter(s[i]) {
			return "must be ASCII letters only"
		}
	}
	return ""
}

// kwSymbols: up to 5 punctuation or symbol characters (ASCII or not);
// letters, digits and spaces are not symbols.
func kwSymbols(s string) string {
	if reason := kwText(s, 5); reason != "" {
		return reason
	}
	for _, r := range s {
		if !isKwSymbol(r) {
			return "must be punctuation or symbol characters only"
		}
	}
	return ""
}

// kwCharacterString: up to 32 ASCII digits, ASCII letters or symbols
// (punctuation and symbols, ASCII or not). Chinese and spaces are rejected:
// the type exists for codes such as order numbers.
func kwCharacterString(s string) string {
	if reason := kwText(s, 32); reason != "" {
		return reason
	}
	for _, r := range s {
		if r < utf8.RuneSelf && (isKwLetter(byte(r)) || isKwDigit(byte(r))) {
			continue
		}
		if !isKwSymbol(r) {
			return "must be ASCII letters, digits or symbols only"
		}
	}
	return ""
}

// kwAmount: an optional currency symbol, 1 to 10 integer digits, an
// optional decimal part of 1 or 2 digits, and an optional trailing 元.
//
// WeChat's rule reads "one currency symbol + up to 10 digits, may have
// decimals, may end with 元". Values such as "100元" carry their currency in
// the suffix, so the symbol is optional here. The symbol is any Unicode
// currency symbol (¥ ￥ $ € £ ₩ ...), immediately before the digits. Decimals
// are limited to 2 because the values are money amounts; signs, spaces and
// thousands separators are rejected.
func kwAmount(s string) string {
	if s == "" {
		return kwReasonEmpty
	}
	if len(s) > 32 {
		return "must be a currency symbol, at most 10 digits and 2 decimals"
	}
	if r, size := utf8.DecodeRuneInString(s); unicode.Is(unicode.Sc, r) {
		s = s[size:]
	}
	if r, size := utf8.DecodeLastRuneInString(s); r == '元' {
		s = s[:len(s)-size]
	}
	intPart, frac, hasPoint := strings.Cut(s, ".")
	if n := kwLeadingDigits(intPart); n == 0 || n != len(intPart) || n > 10 {
		return "must be an optional currency symbol and 1 to 10 digits, optionally ending with 元"
	}
	if hasPoint {
		if n := kwLeadingDigits(frac); n == 0 || n != len(frac) || n > 2 {
			return "must have 1 or 2 digits after the decimal point"
		}
	}
	return ""
}

// kwPhoneNumber: up to 17 characters of ASCII digits and the symbols
// + - ( ) and space, with at least one digit ("+86-0766-66888866").
func kwPhoneNumber(s string) string {
	if s == "" {
		return kwReasonEmpty
	}
	if len(s) > 17 {
		return fmt.Sprintf(kwReasonTooLongF, 17)
	}
	digits := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case isKwDigit(c):
			digits++
		case c == '+' || c == '-' || c == '(' || c == ')' || c == ' ':
		default:
			return "must be digits and + - ( ) or spaces only"
		}
	}
	if digits == 0 {
		return "must contain a digit"
	}
	return ""
}

// kwCarNumber: up to 8 characters; the first and the last may be Chinese,
// every other one is an ASCII letter or digit ("粤A12345", "粤B1234学").
func kwCarNumber(s string) string {
	if reason := kwText(s, 8); reason != "" {
		return reason
	}
	n := utf8.RuneCountInString(s)
	i := 0
	for _, r := range s {
		edge := i == 0 || i == n-1
		i++
		if r < utf8.RuneSelf && (isKwLetter(byte(r)) || isKwDigit(byte(r))) {
			continue
		}
		if edge && unicode.Is(unicode.Han, r) {
			continue
		}
		return "must be letters or digits, with Chinese allowed only first or last"
	}
	return ""
}

// kwName: up to 10 characters when any is Chinese, otherwise up to 20
// letters or symbols. Letters are any script's (so "José" is a name), spaces
// between words are accepted since Western names need them, and digits are
// rejected. A name mixing Chinese and other letters counts as Chinese.
func kwName(s string) string {
	if reason := kwText(s, 20); reason != "" {
		return reason
	}
	n, han := 0, false
	for _, r := range s {
		switch {
		case unicode.Is(unicode.Han, r):
			han = true
		case unicode.IsLetter(r), unicode.IsMark(r), isKwSymbol(r), r == ' ':
		default:
			return "must be letters or symbols only"
		}
		n++
	}
	if han && n > 10 {
		return "must be at most 10 characters when it contains Chinese"
	}
	return ""
}

// kwPhrase: up to 5 Chinese characters and nothing else.
func kwPhrase(s string) string {
	if reason := kwText(s, 5); reason != "" {
		return reason
	}
	for _, r := range s {
		if !unicode.Is(unicode.Han, r) {
			return "must be Chinese characters only"
		}
	}
	return ""
}

// isKwSymbol reports whether r is punctuation or a symbol: not a letter,
// digit, mark or space.
func isKwSymbol(r rune) bool {
	return unicode.IsPunct(r) || unicode.IsSymbol(r)
}

func isKwLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isKwDigit(c byte) bool { return c >= '0' && c <= '9' }

// kwLeadingDigits returns how many ASCII digits s starts with.
func kwLeadingDigits(s string) int {
	n := 0
	for n < len(s) && isKwDigit(s[n]) {
		n++
	}
	return n
}

// kwShown returns at most maxKeywordShownLen bytes of s, cut at a character boundary,
// so error messages stay bounded whatever the caller sent.
func kwShown(s string) string { return Truncate(s, maxKeywordShownLen) }
