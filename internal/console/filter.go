package console

import (
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/wxgate/wxgate/processor"
)

// statuses are the message statuses of the contract, in lifecycle order.
var statuses = []string{
	processor.StatusQueued, processor.StatusSending, processor.StatusSent, processor.StatusDelivered,
	processor.StatusFailed, processor.StatusRejected, processor.StatusInvalid, processor.StatusDead, processor.StatusUnknown,
}

// Bounds of what a filter form may hold.
const (
	maxID     = 128
	maxCursor = 1024
	pageSize  = 50
)

// filter is a search form as submitted: every value as typed, so that the
// form shows it again, and the problems found, each next to its field.
type filter struct {
	Values url.Values
	Errors map[string]string
}

// newFilter reads the form fields named in fields from a query string.
func newFilter(q url.Values, fields ...string) *filter {
	f := &filter{Values: url.Values{}, Errors: map[string]string{}}
	for _, name := range fields {
		if v := strings.TrimSpace(q.Get(name)); v != "" {
			f.Values.Set(name, v)
		}
	}
	return f
}

// Get returns a field as typed.
func (f *filter) Get(name string) string { return f.Values.Get(name) }

// Error returns the problem with a field, or "".
func (f *filter) Error(name string) string { return f.Errors[name] }

// ok reports whether every field was valid.
func (f *filter) ok() bool { return len(f.Errors) == 0 }

// id reads an optional identifier: printable ASCII, at most maxID characters.
func (f *filter) id(name string) string {
	v := f.Get(name)
	if reason := checkID(v); reason != "" {
		f.Errors[name] = reason
		return ""
	}
	return v
}

// checkID returns why v is not a well-formed identifier, or "".
func checkID(v string) string {
	if len(v) > maxID {
		return "At most 128 characters."
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return "Printable ASCII characters only."
		}
	}
	return ""
}

// status reads an optional message status.
func (f *filter) status(name string) string {
	v := f.Get(name)
	if v != "" && !slices.Contains(statuses, v) {
		f.Errors[name] = "Not a message status."
		return ""
	}
	return v
}

// cursor reads an optional page cursor; the store rejects one it did not issue.
func (f *filter) cursor(name string) string {
	v := f.Get(name)
	if len(v) > maxCursor {
		f.Errors[name] = "Not a page link of this console."
		return ""
	}
	return v
}

// time reads an optional instant: the value of a datetime-local field,
// "2024-05-01T08:00" (seconds optional), in the operator's zone, or RFC 3339.
func (f *filter) time(name string, zone *time.Location) time.Time {
	v := f.Get(name)
	if v == "" {
		return time.Time{}
	}
	t, ok := parseTime(v, zone)
	if !ok {
		f.Errors[name] = "A date and time, such as 2024-05-01T08:00."
	}
	return t
}

// parseTime parses a datetime-local value in zone, or RFC 3339.
func parseTime(v string, zone *time.Location) (time.Time, bool) {
	if len(v) > 64 {
		return time.Time{}, false
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, zone); err == nil {
			return t.UTC(), true
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), true
	}
	return time.Time{}, false
}

// page reads since, until and the cursor into a processor.Page.
func (f *filter) page(zone *time.Location, cursorField string) processor.Page {
	p := processor.Page{Limit: pageSize, Since: f.time("since", zone), Until: f.time("until", zone), Cursor: f.cursor(cursorField)}
	if !p.Since.IsZero() && !p.Until.IsZero() && !p.Until.After(p.Since) {
		f.Errors["until"] = "Must be after From."
	}
	return p
}

// next returns the query string of the page after this one: the same fields
// with cursorField set to next.
func (f *filter) next(cursorField, next string) string {
	if next == "" {
		return ""
	}
	v := url.Values{}
	for k, vs := range f.Values {
		v[k] = vs
	}
	v.Set(cursorField, next)
	return v.Encode()
}

// cloneWithout copies v without the named fields.
func cloneWithout(v url.Values, names ...string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		if !slices.Contains(names, k) {
			out[k] = vs
		}
	}
	return out
}
