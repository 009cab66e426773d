package admin

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/wxgate/wxgate/internal/derrors"
	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantError  string
		wantFields int
	}{
		{"not found", fmt.Errorf("message m1: %w", processor.ErrNotFound), http.StatusNotFound, "not found", 0},
		{"unknown app", errUnknownApp, http.StatusNotFound, "unknown appid", 0},
		{"store down", fmt.Errorf("store: %w: dial tcp 10.0.0.7:27017", processor.ErrUnavailable), http.StatusServiceUnavailable, "unavailable, retry later", 0},
		{"stream down", fmt.Errorf("publishing: %w", derrors.Unavailable), http.StatusServiceUnavailable, "unavailable, retry later", 0},
		{"conflict", fmt.Errorf("consent: %w after 16 attempts", processor.ErrConflict), http.StatusConflict, "conflict, retry", 0},
		{"invalid input", fmt.Errorf("%w: result for template T", derrors.Invalid), http.StatusBadRequest, "invalid request", 0},
		{"permanent is ours", fmt.Errorf("%w: message m1: errcode 43107", processor.ErrPermanent), http.StatusInternalServerError, "internal error", 0},
		{"duplicate", fmt.Errorf("insert: %w", derrors.Duplicate), http.StatusConflict, "conflict, retry", 0},
		{"ambiguous", fmt.Errorf("send: %w", derrors.Ambiguous), http.StatusInternalServerError, "internal error", 0},
		{"field errors", schemas.FieldErrors{{Field: "touser", Rule: "required"}}, http.StatusBadRequest, "invalid request", 1},
		{"bad query", invalidQuery(schemas.FieldError{Field: "limit"}, schemas.FieldError{Field: "since"}), http.StatusBadRequest, "invalid query", 2},
		{"bad cursor", fmt.Errorf("listing: %w", processor.ErrBadCursor), http.StatusBadRequest, "invalid query", 1},
		{"too large", errTooLarge, http.StatusRequestEntityTooLarge, "request body too large", 0},
		{"forbidden", &forbiddenError{role: RoleSend, appID: "wx1"}, http.StatusForbidden, "forbidden", 0},
		{"anything else", errors.New("mongo: secret detail"), http.StatusInternalServerError, "internal error", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classify(tt.err)
			if got.status != tt.wantStatus || got.body.Error != tt.wantError || len(got.body.Fields) != tt.wantFields {
				t.Errorf("classify(%q) = %d %q with %d fields, want %d %q with %d", tt.err, got.status, got.body.Error, len(got.body.Fields), tt.wantStatus, tt.wantError, tt.wantFields)
			}
		})
	}
}

func TestForbiddenNamesTheScope(t *testing.T) {
	for _, tt := range []struct {
		err  *forbiddenError
		want string
	}{
		{&forbiddenError{role: RoleSend, appID: "wxba5fad812f8e6fb9"}, "send on wxba5fad812f8e6fb9"},
		{&forbiddenError{role: RoleAdmin, appID: AllApps}, "admin on *"},
		{&forbiddenError{role: RoleRead, appID: "wx\x00"}, "read on the appid in the path"},
		{&forbiddenError{role: RoleRead, appID: ""}, "read on the appid in the path"},
	} {
		if got := classify(tt.err).body.MissingScope; got != tt.want {
			t.Errorf("missing_scope of %#v = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		want   string
		wantOK bool
	}{
		{"RFC 3339 UTC", "2024-05-01T08:00:00Z", "2024-05-01T08:00:00Z", true},
		{"RFC 3339 with offset", "2024-05-01T16:00:00+08:00", "2024-05-01T08:00:00Z", true},
		{"fractional seconds", "2024-05-01T08:00:00.5Z", "2024-05-01T08:00:00.5Z", true},
		{"unix seconds", "1714550400", "2024-05-01T08:00:00Z", true},
		{"unix zero", "0", "1970-01-01T00:00:00Z", true},
		{"negative", "-1", "", false},
		{"date only", "2024-05-01", "", false},
		{"words", "yesterday", "", false},
		{"beyond year 9999", "253402300800", "", false},
		{"too many digits", "99999999999999999999", "", false},
		{"empty", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseTime(tt.in)
			if ok != tt.wantOK || (ok && got.Format("2006-01-02T15:04:05.999999999Z07:00") != tt.want) {
				t.Errorf("parseTime(%q) = %v, %v, want %s, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
