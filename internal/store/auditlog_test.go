package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/admin"
	"github.com/wxgate/wxgate/internal/store/storetest"
	"github.com/wxgate/wxgate/processor"
)

func TestAuditLog(t *testing.T) {
	st := storetest.Start(t).Open("wxgate")
	ctx := context.Background()
	t0 := time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)
	// Five records, two of them at the same instant, inserted out of order.
	for _, i := range []int{3, 0, 4, 1, 2} {
		at := t0.Add(time.Duration(min(i, 3)) * time.Minute)
		r := &admin.AuditRecord{
			ID: fmt.Sprintf("a%d", i), At: at, TokenName: "ci", Method: "POST", Route: "/v1/apps/{appid}/messages",
			AppID: "wxba5fad812f8e6fb9", Targets: map[string]string{"id": fmt.Sprintf("m%d", i)}, Status: 202,
		}
		if err := st.InsertAudit(ctx, r); err != nil {
			t.Fatalf("InsertAudit(%s) = %v", r.ID, err)
		}
	}
	if err := st.InsertAudit(ctx, &admin.AuditRecord{ID: "a0", At: t0}); !errors.Is(err, processor.ErrDuplicate) {
		t.Errorf("InsertAudit(a0 again) = %v, want ErrDuplicate", err)
	}

	tests := []struct {
		name string
		page processor.Page
		want []string
	}{
		{"all, newest first, ties by id", processor.Page{}, []string{"a4", "a3", "a2", "a1", "a0"}},
		{"since", processor.Page{Since: t0.Add(2 * time.Minute)}, []string{"a4", "a3", "a2"}},
		{"until", processor.Page{Until: t0.Add(2 * time.Minute)}, []string{"a1", "a0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			p := tt.page
			p.Limit = 2
			for range 10 {
				rs, next, err := st.Audit(ctx, admin.AuditQuery{Page: p})
				if err != nil {
					t.Fatalf("Audit = %v", err)
				}
				for _, r := range rs {
					got = append(got, r.ID)
				}
				if next == "" {
					break
				}
				p.Cursor = next
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("Audit pages = %v, want %v", got, tt.want)
			}
		})
	}

	rs, _, err := st.Audit(ctx, admin.AuditQuery{Page: processor.Page{Limit: 1}})
	if err != nil || len(rs) != 1 {
		t.Fatalf("Audit(limit 1) = %v, %v", rs, err)
	}
	want := admin.AuditRecord{
		ID: "a4", At: t0.Add(3 * time.Minute), TokenName: "ci", Method: "POST", Route: "/v1/apps/{appid}/messages",
		AppID: "wxba5fad812f8e6fb9", Targets: map[string]string{"id": "m4"}, Status: 202,
	}
	got := rs[0]
	got.At = got.At.UTC()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("record = %+v, want %+v", got, want)
	}
	if _, _, err := st.Audit(ctx, admin.AuditQuery{Page: processor.Page{Cursor: "!!"}}); !errors.Is(err, processor.ErrBadCursor) {
		t.Errorf("Audit(bad cursor) = %v, want ErrBadCursor", err)
	}
}
