package admin

import (
	"errors"
	"net/http"

	"github.com/wxgate/wxgate/internal/derrors"
	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
)

// Errors the API maps to statuses, besides the processor's and store's sentinels.
var (
	errUnknownApp = errors.New("unknown appid")
	errTooLarge   = errors.New("request body too large")
)

// invalidError is a request the caller must fix: what names the part at fault
// ("query" or "request") and fields lists every bad field.
type invalidError struct {
	what   string
	fields schemas.FieldErrors
}

func (e *invalidError) Error() string { return "invalid " + e.what + ": " + e.fields.Error() }

// invalidQuery returns an error listing bad query parameters.
func invalidQuery(fields ...schemas.FieldError) error {
	return &invalidError{what: "query", fields: fields}
}

// invalidRequest returns an error listing bad fields of a request body or header.
func invalidRequest(fields ...schemas.FieldError) error {
	return &invalidError{what: "request", fields: fields}
}

// errorBody is every error response: a short fixed text and, for a request the
// caller must fix, the fields at fault, or for a token without the scope a
// route needs, that scope.
type errorBody struct {
	Error        string              `json:"error"`
	Fields       schemas.FieldErrors `json:"fields,omitempty"`
	MissingScope string              `json:"missing_scope,omitempty"`
}

type response struct {
	status int
	body   errorBody
}

// classify maps an error to its status and body. Only fixed texts and field
// errors (which never repeat submitted values) reach the caller.
func classify(err error) response {
	var inv *invalidError
	var fes schemas.FieldErrors
	var forbidden *forbiddenError
	switch {
	case errors.As(err, &forbidden):
		return response{http.StatusForbidden, errorBody{Error: "forbidden", MissingScope: forbidden.scope()}}
	case errors.As(err, &inv):
		return response{http.StatusBadRequest, errorBody{Error: "invalid " + inv.what, Fields: inv.fields}}
	case errors.As(err, &fes):
		return response{http.StatusBadRequest, errorBody{Error: "invalid request", Fields: fes}}
	case errors.Is(err, processor.ErrBadCursor):
		return response{http.StatusBadRequest, errorBody{Error: "invalid query", Fields: schemas.FieldErrors{
			{Field: "cursor", Rule: "cursor", Message: "cursor is not one this API issued"},
		}}}
	case errors.Is(err, errUnknownApp):
		return response{http.StatusNotFound, errorBody{Error: "unknown appid"}}
	case errors.Is(err, errTooLarge):
		return response{http.StatusRequestEntityTooLarge, errorBody{Error: "request body too large"}}
	}
	// Everything else by its kind (internal/derrors).
	switch derrors.KindOf(err) {
	case derrors.Invalid:
		return response{http.StatusBadRequest, errorBody{Error: "invalid request"}}
	case derrors.NotFound:
		return response{http.StatusNotFound, errorBody{Error: "not found"}}
	case derrors.Conflict, derrors.Duplicate:
		return response{http.StatusConflict, errorBody{Error: "conflict, retry"}}
	case derrors.Unavailable:
		return response{http.StatusServiceUnavailable, errorBody{Error: "unavailable, retry later"}}
	}
	// Permanent, Ambiguous or none: the API's own failure.
	return response{http.StatusInternalServerError, errorBody{Error: "internal error"}}
}
