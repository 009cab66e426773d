package admin

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
)

// FuzzQuery checks that any query string is either accepted within bounds or
// refused with field errors that name a parameter and repeat none of its value.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{
		"", "limit=10&since=2024-05-01T08:00:00Z&until=1714550400", "status=sent&touser=o1",
		"limit=0", "limit=-5&status=x", "cursor=" + strings.Repeat("A", 1100), "since=%00", "until=1e9",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u := &url.URL{RawQuery: raw}
		q := newQuery(u)
		touser, status, p := q.id("touser"), q.status("status"), q.page()
		if err := q.err(); err != nil {
			for _, fe := range q.errs {
				if fe.Field == "" || fe.Rule == "" || !strings.HasPrefix(fe.Message, fe.Field+" ") {
					t.Fatalf("field error %+v: want a field, a rule and a message naming the field", fe)
				}
				// Messages are fixed sentences: a long one would be repeating the value.
				if len(fe.Message) > 200 {
					t.Fatalf("field error %+v: message of %d bytes", fe, len(fe.Message))
				}
			}
			return
		}
		if len(touser) > maxID || len(p.Cursor) > maxCursor || p.Limit < 0 || p.Limit > processor.MaxLimit {
			t.Fatalf("accepted out-of-bounds query %q: touser %d bytes, cursor %d bytes, limit %d", raw, len(touser), len(p.Cursor), p.Limit)
		}
		if status != "" && !slices.Contains(statuses, status) {
			t.Fatalf("accepted status %q", status)
		}
		if !p.Since.IsZero() && !p.Until.IsZero() && !p.Until.After(p.Since) {
			t.Fatalf("accepted until %v not after since %v", p.Until, p.Since)
		}
	})
}

// FuzzMemberPath checks that a reported field path is bounded and printable.
func FuzzMemberPath(f *testing.F) {
	f.Add("plain.touser")
	f.Add("results.T1")
	f.Add("a.b\x00.c")
	f.Fuzz(func(t *testing.T, path string) {
		got := memberPath(nil, path)
		for _, seg := range strings.Split(got, ".") {
			if len(seg) > schemas.MaxKeyShown {
				t.Fatalf("memberPath(%q) has a segment of %d bytes", path, len(seg))
			}
		}
		for i := 0; i < len(got); i++ {
			if got[i] < 0x20 || got[i] > 0x7e {
				t.Fatalf("memberPath(%q) = %q, not printable", path, got)
			}
		}
	})
}
