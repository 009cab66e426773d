package schemas

import (
	"errors"
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
	return eventChecker().check(e)
}

// eventChecker returns the one validator the package uses, built on first
// use: validator caches struct metadata per instance, so it is built once.
var eventChecker = sync.OnceValue(newEventValidation)

// eventValidation wraps a validator configured for Event.
type eventValidation struct {
	v *validator.Validate
}

func newEventValidation() eventValidation {
	v := validator.New(validator.WithRequiredStructEnabled())
	// Report fields by the names consumers see in the JSON.
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		return name
	})
	v.RegisterStructValidation(checkEventRules, Event{})
	return eventValidation{v: v}
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

func (ev eventValidation) check(e *Event) error {
	err := ev.v.Struct(e)
	if err == nil {
		return nil
	}
	var fields validator.ValidationErrors
	if !errors.As(err, &fields) {
		return malformedf("invalid event")
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
		b.WriteString(strings.TrimPrefix(fe.Namespace(), "Event."))
		b.WriteString(" ")
		b.WriteString(ruleText(fe.Tag(), fe.Param()))
	}
	return malformedf("%s", b.String())
}

// ruleText words a failed validator tag for an error message.
func ruleText(tag, param string) string {
	switch tag {
	case "required":
		return "is required"
	case "required_if":
		return "is required for this msg_type"
	case "gt":
		return "must be greater than " + param
	case "oneof":
		return "must be one of: " + param
	case "min_items":
		return "needs at least " + param + " item"
	}
	return "fails rule " + tag
}
