package admin

import (
	"slices"
	"strings"

	"github.com/wxgate/wxgate/schemas"
)

// check validates a decoded body and returns every bad field, or nil.
func (a *API) check(body any) error {
	fields := schemas.CheckStruct(body)
	if len(fields) == 0 {
		return nil
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
