package schemas

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// FieldError is one bad field of a send request. Field is the JSON path
// ("touser", "data.thing1"), Rule a short machine word ("required", "thing",
// "unknown_keyword", "enum", ...) and Message a human sentence. A Message never
// repeats a submitted value, which may be personal data; it may repeat a
// bounded prefix of a key.
type FieldError struct {
	Field   string `json:"field"`
	Rule    string `json:"rule"`
	Message string `json:"message"`
}

// FieldErrors lists every bad field of a request; it is the error returned by
// SendRequest.UnmarshalJSON for malformed data and by Validator.Check.
type FieldErrors []FieldError

// Error joins the messages.
func (e FieldErrors) Error() string {
	msgs := make([]string, len(e))
	for i, fe := range e {
		msgs[i] = fe.Message
	}
	return strings.Join(msgs, "; ")
}

// Rules of FieldError beyond the validator tags and keyword types.
const (
	// RuleRequired marks a missing field or template keyword.
	RuleRequired = "required"
	// RuleUnknownKeyword marks a data key without a keyword type, or outside the template.
	RuleUnknownKeyword = "unknown_keyword"
	// RuleEnum marks a value outside its template keyword's enum list.
	RuleEnum = "enum"
)

// keywordTags are the keyword types registered as validator tags; enum is
// absent because its rule needs the template.
func keywordTags() [12]string {
	return [12]string{
		KeywordThing, KeywordNumber, KeywordLetter, KeywordSymbol, KeywordCharacterString,
		KeywordTime, KeywordDate, KeywordAmount, KeywordPhoneNumber, KeywordCarNumber,
		KeywordName, KeywordPhrase,
	}
}

// Validator validates send requests: the request's fields with
// go-playground/validator struct tags, and the data against the keyword rules
// and, when known, the template. Each keyword type is also registered as a
// validator tag of the same name ("thing", "date", ...); "number" thereby
// replaces validator's built-in tag of that name within this Validator.
// Build one with NewValidator and share it: it is safe for concurrent use.
type Validator struct{}

// NewValidator returns a Validator.
func NewValidator() *Validator { return &Validator{} }

// Check returns every bad field of r, or nil when r is valid.
//
// Fields come first in struct order, then data keys sorted by path. When tmpl
// is nil the template is unknown: each data key must be a known keyword type
// followed by digits and its value must satisfy that type's rule; enum values
// are accepted when they are text of at most 20 characters. When tmpl is
// given, every template keyword must be present (rule "required"), no key may
// lie outside the template ("unknown_keyword"), each value must satisfy its
// keyword's type, and a keyword with an enum list accepts only those values
// ("enum"). Data with more than 64 keys is reported once and its keys are not
// checked one by one.
//
// Check returns FieldErrors rather than error so that a valid request gives a
// nil slice; convert it to an error only when it is not empty.
func (v *Validator) Check(r *SendRequest, tmpl *Template) FieldErrors {
	if r == nil {
		return FieldErrors{{Field: "", Rule: RuleRequired, Message: "the request body is required"}}
	}
	errs := CheckStruct(r)
	if len(r.Data) > maxDataKeywords {
		return errs
	}
	dataErrs := checkData(r.Data, tmpl)
	sort.SliceStable(dataErrs, func(i, j int) bool { return dataErrs[i].Field < dataErrs[j].Field })
	errs = append(errs, dataErrs...)
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// checkData checks every data key and, with a template, its missing keywords.
func checkData(data map[string]string, tmpl *Template) FieldErrors {
	var errs FieldErrors
	for key, value := range data {
		field := "data." + kwShown(key)
		if tmpl == nil {
			typ, ok := KeywordType(key)
			if !ok {
				errs = append(errs, FieldError{Field: field, Rule: RuleUnknownKeyword,
					Message: field + " is not a keyword type followed by digits"})
				continue
			}
			if reason := keywordRule(typ, value); reason != "" {
				errs = append(errs, FieldError{Field: field, Rule: typ, Message: field + " " + reason})
			}
			continue
		}
		kw, ok := tmpl.Lookup(key)
		if !ok {
			errs = append(errs, FieldError{Field: field, Rule: RuleUnknownKeyword,
				Message: fmt.Sprintf("%s is not a keyword of template %s", field, kwShown(tmpl.ID))})
			continue
		}
		if len(kw.Enum) > 0 {
			if !slices.Contains(kw.Enum, value) {
				errs = append(errs, FieldError{Field: field, Rule: RuleEnum, Message: field + " must be one of the template's values: " + enumList(kw.Enum)})
			}
			continue
		}
		if reason := keywordRule(kw.Type, value); reason != "" {
			errs = append(errs, FieldError{Field: field, Rule: kwShown(kw.Type), Message: field + " " + reason})
		}
	}
	if tmpl != nil {
		for _, kw := range tmpl.Keywords {
			if _, ok := data[kw.Key]; !ok {
				field := "data." + kwShown(kw.Key)
				errs = append(errs, FieldError{Field: field, Rule: RuleRequired, Message: field + " is required by the template"})
			}
		}
	}
	return errs
}

// maxEnumShown bounds how many enum values a message lists.
const maxEnumShown = 10

// enumList quotes the template's enum values, at most maxEnumShown of them;
// they come from WeChat, not from the caller.
func enumList(values []string) string {
	n := min(len(values), maxEnumShown)
	quoted := make([]string, n)
	for i, v := range values[:n] {
		quoted[i] = fmt.Sprintf("%q", kwShown(v))
	}
	list := strings.Join(quoted, ", ")
	if len(values) > n {
		list += fmt.Sprintf(" and %d more", len(values)-n)
	}
	return list
}
