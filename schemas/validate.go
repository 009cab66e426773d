package schemas

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/go-playground/validator/v10"
)

// Validate checks an Event: the field rules in its struct tags, plus the rules
// that depend on the event. It is strict on the subscription events and
// lenient on everything else:
//
//   - subscribe_msg_popup_event and subscribe_msg_change_event carry at least
//     one item, each with a status of "accept" or "reject" (the client-side
//     "ban" and "filter" results are never pushed);
//   - subscribe_msg_sent_event carries at least one item, each with a MsgID;
//   - other events and plain messages need only the common fields.
//
// Every failure wraps ErrMalformed and names the failing fields by their JSON
// names, never their values. Validate is safe for concurrent use.
func Validate(e *Event) error {
	if e == nil {
		return malformedf("no event")
	}
	return checkEvent(e)
}

// checker is the project's one validator, built on first use (validator
// caches struct metadata per instance): it names fields by their JSON names,
// knows the keyword types as tags ("thing", "date", ...; "number" thereby
// replaces validator's built-in tag of that name) and the rules that depend on
// the event. Send requests, admin request bodies and events all go through it,
// and CheckStruct is its one translation into FieldErrors.
var checker = sync.OnceValue(newChecker)

func newChecker() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(jsonFieldName)
	for _, typ := range keywordTags() {
		err := v.RegisterValidation(typ, func(fl validator.FieldLevel) bool {
			f := fl.Field()
			return f.Kind() == reflect.String && keywordRule(typ, f.String()) == ""
		})
		if err != nil {
			// The tags are constants of this package; failing to register one is a bug.
			panic(fmt.Sprintf("schemas: register keyword tag %q: %v", typ, err))
		}
	}
	v.RegisterStructValidation(checkEventRules, Event{})
	return v
}

// jsonFieldName names fields by their JSON name in validation errors.
func jsonFieldName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	switch name {
	case "-":
		return ""
	case "":
		return f.Name
	}
	return name
}

// CheckStruct validates a struct with the struct tags of its fields and
// returns every bad field, or nil. Fields are named by their JSON path
// ("items[0].status"); a map entry is named "map.KEY" (as send data is named
// "data.thing1"), with the key bounded and made printable. No message repeats
// a submitted value. CheckStruct is safe for concurrent use.
func CheckStruct(v any) FieldErrors {
	err := checker().Struct(v)
	if err == nil {
		return nil
	}
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return FieldErrors{{Field: "", Rule: "invalid", Message: "the request could not be validated"}}
	}
	out := make(FieldErrors, 0, len(verrs))
	for _, fe := range verrs {
		out = append(out, fieldError(fe))
	}
	return out
}

// MaxKeyShown bounds how much of a map key a field name repeats.
const MaxKeyShown = 64

// fieldError words one validator error.
func fieldError(fe validator.FieldError) FieldError {
	tag, param := fe.Tag(), fe.Param()
	_, field, _ := strings.Cut(fe.Namespace(), ".") // without the struct's own name
	name, key, isEntry := strings.Cut(field, "[")
	isEntry = isEntry && strings.HasSuffix(key, "]") && !strings.Contains(key, "][")
	if isEntry {
		key = strings.TrimSuffix(key, "]")
		field = name
		if key != "" {
			field = name + "." + ShownKey(key)
		}
	}
	var msg string
	switch {
	case tag == "required" && isEntry && key == "":
		msg = field + " has an empty key"
	case tag == "required":
		msg = field + " is required"
	case tag == "required_if":
		msg = field + " is required for this msg_type"
	case tag == "printascii":
		msg = field + " must contain printable ASCII characters only"
	case tag == "oneof":
		msg = field + " must be one of: " + strings.Join(strings.Fields(param), ", ")
	case tag == "gt":
		msg = field + " must be greater than " + param
	case tag == "min_items":
		msg = field + " needs at least " + param + " item"
	case tag == "max" || tag == "min":
		bound := map[string]string{"max": "at most", "min": "at least"}[tag]
		unit, one := "characters", "character"
		switch {
		case fe.Kind() == reflect.Map && field == "data":
			unit, one = "keywords", "keyword" // a send's template data
		case fe.Kind() == reflect.Map:
			unit, one = "entries", "entry"
		}
		if param == "1" {
			unit = one
		}
		msg = fmt.Sprintf("%s must have %s %s %s", field, bound, param, unit)
	default:
		msg = fmt.Sprintf("%s breaks the %s rule", field, tag)
	}
	return FieldError{Field: field, Rule: tag, Message: msg}
}

// ShownKey bounds a key from outside to MaxKeyShown bytes and replaces
// anything but printable ASCII, so that a field name is safe to show and to log.
func ShownKey(k string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, Truncate(k, MaxKeyShown))
}

// checkEventRules holds the rules that depend on which event an Event is.
func checkEventRules(sl validator.StructLevel) {
	e, ok := sl.Current().Interface().(Event)
	if !ok {
		return
	}
	switch e.Event {
	case EventSubscribePopup, EventSubscribeChange:
		if len(e.Items) == 0 {
			sl.ReportError(e.Items, "items", "Items", "min_items", "1")
		}
		for i, it := range e.Items {
			if it.Status != StatusAccept && it.Status != StatusReject {
				sl.ReportError(it.Status, "items["+strconv.Itoa(i)+"].status", "Status", "oneof", StatusAccept+" "+StatusReject)
			}
		}
	case EventSubscribeSent:
		if len(e.Items) == 0 {
			sl.ReportError(e.Items, "items", "Items", "min_items", "1")
		}
		for i, it := range e.Items {
			if it.MsgID == "" {
				sl.ReportError(it.MsgID, "items["+strconv.Itoa(i)+"].msg_id", "MsgID", "required", "")
			}
		}
	}
}

// maxReportedFields bounds how many failing fields one error lists; a message
// with thousands of bad items still gives a short error.
const maxReportedFields = 5

func checkEvent(e *Event) error {
	fields := CheckStruct(e)
	if len(fields) == 0 {
		return nil
	}
	var b strings.Builder
	for i, fe := range fields {
		if i == maxReportedFields {
			b.WriteString("; and " + strconv.Itoa(len(fields)-i) + " more")
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(fe.Message)
	}
	return malformedf("%s", b.String())
}
