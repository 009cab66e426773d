package admin

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/go-playground/validator/v10"

	"github.com/wxgate/wxgate/schemas"
)

// newValidator returns a validator that names fields by their JSON names.
func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		return name
	})
	return v
}

// check validates a decoded body and returns every bad field, or nil.
func (a *API) check(body any) error {
	err := a.validator.Struct(body)
	if err == nil {
		return nil
	}
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return fmt.Errorf("validating the request: %w", err)
	}
	fields := make(schemas.FieldErrors, 0, len(verrs))
	for _, fe := range verrs {
		fields = append(fields, fieldError(fe))
	}
	sortEntries(fields)
	return invalidRequest(fields...)
}

// sortEntries sorts each run of errors about one map's entries by field, since
// the validator visits a map in random order; fields stay in struct order.
func sortEntries(fields schemas.FieldErrors) {
	member := func(f string) string { m, _, _ := strings.Cut(f, "."); return m }
	for i := 0; i < len(fields); {
		j := i + 1
		for j < len(fields) && member(fields[j].Field) == member(fields[i].Field) {
			j++
		}
		slices.SortFunc(fields[i:j], func(a, b schemas.FieldError) int { return strings.Compare(a.Field, b.Field) })
		i = j
	}
}

// maxKeyShown bounds how much of a map key a field error repeats.
const maxKeyShown = 64

// fieldError turns one validator error into a FieldError that never repeats a
// submitted value. A map entry is named "results.KEY", as send data is
// named "data.thing1", with the key bounded and made printable.
func fieldError(fe validator.FieldError) schemas.FieldError {
	field, tag, param := fe.Field(), fe.Tag(), fe.Param()
	name, key, isEntry := strings.Cut(field, "[")
	if isEntry {
		key = strings.TrimSuffix(key, "]")
		field = name + "." + shownKey(key)
		if key == "" {
			field = name
		}
	}
	var msg string
	switch {
	case tag == "required" && isEntry && key == "":
		msg = field + " has an empty key"
	case tag == "required":
		msg = field + " is required"
	case tag == "printascii":
		msg = field + " must contain printable ASCII characters only"
	case tag == "oneof":
		msg = field + " must be one of: " + strings.Join(strings.Fields(param), ", ")
	case tag == "max" || tag == "min":
		bound := map[string]string{"max": "at most", "min": "at least"}[tag]
		unit := "characters"
		if fe.Kind() == reflect.Map {
			unit = "entries"
		}
		msg = fmt.Sprintf("%s must have %s %s %s", field, bound, param, unit)
	default:
		msg = fmt.Sprintf("%s breaks the %s rule", field, tag)
	}
	return schemas.FieldError{Field: field, Rule: tag, Message: msg}
}

// shownKey bounds a key and replaces anything but printable ASCII, so that a
// field name is safe to show and to log.
func shownKey(k string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, schemas.Truncate(k, maxKeyShown))
}
