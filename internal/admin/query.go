package admin

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
)

// Bounds of identifiers in paths, query parameters and bodies. WeChat's openids
// and template ids are under 64 characters; the rest are wxgate's own ids.
const (
	maxID     = 128
	maxCursor = 1024
)

// statuses are the message statuses of the contract, in lifecycle order.
var statuses = []string{
	processor.StatusQueued, processor.StatusSending, processor.StatusSent, processor.StatusDelivered,
	processor.StatusFailed, processor.StatusRejected, processor.StatusInvalid, processor.StatusDead, processor.StatusUnknown,
}

// query reads a request's query parameters and collects every bad one, so that
// a caller learns all of them from one answer.
type query struct {
	values url.Values
	errs   schemas.FieldErrors
}

func newQuery(u *url.URL) *query {
	return &query{values: u.Query()}
}

// err returns the collected problems as an invalid-query error, or nil.
func (q *query) err() error {
	if len(q.errs) == 0 {
		return nil
	}
	return invalidQuery(q.errs...)
}

func (q *query) fail(name, rule, format string, args ...any) {
	q.errs = append(q.errs, schemas.FieldError{Field: name, Rule: rule, Message: name + " " + fmt.Sprintf(format, args...)})
}

// id reads an optional identifier: printable ASCII, at most maxID characters.
func (q *query) id(name string) string {
	v := q.values.Get(name)
	if reason, rule := checkID(v); reason != "" {
		q.fail(name, rule, "%s", reason)
		return ""
	}
	return v
}

// checkID returns why v is not a well-formed identifier, and the rule it breaks.
func checkID(v string) (reason, rule string) {
	if len(v) > maxID {
		return fmt.Sprintf("must have at most %d characters", maxID), "max"
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return "must contain printable ASCII characters only", "printascii"
		}
	}
	return "", ""
}

// errcode reads an optional WeChat errcode (an integer, -1 included).
func (q *query) errcode(name string) *int {
	v := q.values.Get(name)
	if v == "" {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < -1 || n > 999999 {
		q.fail(name, "number", "must be a WeChat errcode: a whole number from -1 to 999999")
		return nil
	}
	return &n
}

// status reads an optional message status.
func (q *query) status(name string) string {
	v := q.values.Get(name)
	if v != "" && !slices.Contains(statuses, v) {
		q.fail(name, "oneof", "must be one of: %s", strings.Join(statuses, ", "))
		return ""
	}
	return v
}

// page reads since, until, limit and cursor.
func (q *query) page() processor.Page {
	var p processor.Page
	p.Since = q.time("since")
	p.Until = q.time("until")
	if !p.Since.IsZero() && !p.Until.IsZero() && !p.Until.After(p.Since) {
		q.fail("until", "gtfield", "must be after since")
	}
	if v := q.values.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > processor.MaxLimit {
			q.fail("limit", "range", "must be a whole number from 1 to %d", processor.MaxLimit)
		}
		p.Limit = n
	}
	p.Cursor = q.values.Get("cursor")
	if len(p.Cursor) > maxCursor {
		q.fail("cursor", "cursor", "is not one this API issued")
		p.Cursor = ""
	}
	return p
}

// time reads an optional instant as RFC 3339 or unix seconds.
func (q *query) time(name string) time.Time {
	v := q.values.Get(name)
	if v == "" {
		return time.Time{}
	}
	t, ok := parseTime(v)
	if !ok {
		q.fail(name, "datetime", "must be an RFC 3339 time (2024-05-01T08:00:00Z) or unix seconds")
	}
	return t
}

// maxUnix bounds unix seconds to years 1970 to 9999, which RFC 3339 can express.
const maxUnix = 253402300799

// parseTime parses RFC 3339 or unix seconds (digits only, so that a typo is not
// read as a number).
func parseTime(v string) (time.Time, bool) {
	if v != "" && len(v) <= 12 && strings.Trim(v, "0123456789") == "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n > maxUnix {
			return time.Time{}, false
		}
		return time.Unix(n, 0).UTC(), true
	}
	if len(v) > 64 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}
