// Package derrors is wxgate's error vocabulary: the few kinds of failure that
// callers branch on, whatever package the failure comes from.
//
// A package wraps its errors in one of the kinds (fmt.Errorf("...: %w", derrors.NotFound),
// or an error type whose Is method answers for a kind), and each edge turns a
// kind into its outcome in one table: the admin API into an HTTP status
// (internal/admin/errors.go), the gateway into a status for WeChat
// (gateway/callback.go), the processor into an ack decision
// (processor/ack.go). WeChat's errcode travels as data on the error (ErrCode).
package derrors

//lint:file-ignore ST1012 the kinds read as derrors.NotFound, derrors.Conflict, ... at every use, as in pkgsite's derrors.

import (
	"errors"
	"fmt"
)

// The kinds of failure.
var (
	// Invalid: the input is wrong; the caller must change it. Never retried.
	Invalid = errors.New("invalid input")
	// NotFound: no such document, message or dead letter.
	NotFound = errors.New("not found")
	// Conflict: a compare-and-set lost, the document changed since it was read;
	// read it again and retry.
	Conflict = errors.New("concurrent update")
	// Duplicate: a document with that unique key exists already.
	Duplicate = errors.New("duplicate key")
	// Unavailable: a dependency (the store, the stream, WeChat) did not do the
	// work and may later; retry after a while.
	Unavailable = errors.New("unavailable")
	// Permanent: the work can never succeed; do not retry.
	Permanent = errors.New("permanent failure")
	// Ambiguous: the work may or may not have been done (a call whose answer
	// was lost or could not be read); retrying could do it twice.
	Ambiguous = errors.New("outcome unknown")
)

// kinds lists the kinds, in the order KindOf tries them: an error that wraps
// Permanent on purpose around a passing cause (retries exhausted) is permanent.
var kinds = []error{Ambiguous, Permanent, Invalid, NotFound, Conflict, Duplicate, Unavailable}

// KindOf returns the kind err wraps, or nil when it wraps none.
func KindOf(err error) error {
	for _, k := range kinds {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}

// Wrap adds context to *errp when it is not nil, keeping what it wraps; it is
// meant to be deferred: defer derrors.Wrap(&err, "consent %s", id).
func Wrap(errp *error, format string, args ...any) {
	if *errp != nil {
		*errp = fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), *errp)
	}
}

// ErrCode returns WeChat's errcode and errmsg carried by err, if any.
func ErrCode(err error) (code int, msg string, ok bool) {
	var we interface {
		ErrCode() int
		ErrMsg() string
	}
	if errors.As(err, &we) {
		return we.ErrCode(), we.ErrMsg(), true
	}
	return 0, "", false
}
