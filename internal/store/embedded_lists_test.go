//go:build !noembedded

package store

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/processor"
)

// TestListsUseIndexes checks, with SQLite's own query plan, that every list
// query the embedded store answers from SQLite finds its rows through one of
// the indexes ensureIndexes declares, in the order it returns them: no scan
// of the table and no sort.
func TestListsUseIndexes(t *testing.T) {
	emb, err := StartEmbedded(EmbeddedOptions{Listen: "127.0.0.1:0", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Close)
	ctx := context.Background()
	st, err := Open(ctx, emb.URI(), "wxgate", Options{Guard: NewGuard(), Embedded: emb})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(ctx) })
	if st.lists == nil {
		t.Fatal("the embedded store on SQLite has no list queries")
	}
	now := time.Now()
	page := processor.Page{Since: now.Add(-time.Hour), Until: now, Cursor: encodeCursor(now, "m1")}
	code := 43107
	tests := []struct {
		name      string
		coll      string
		filters   []eq
		timeField string
		page      processor.Page
	}{
		{"messages", collMessages, []eq{{"appid", "wx1"}}, "created_at", processor.Page{}},
		{"messages page", collMessages, []eq{{"appid", "wx1"}}, "created_at", page},
		{"messages of a user", collMessages, []eq{{"appid", "wx1"}, {"touser", "o1"}}, "created_at", page},
		{"messages by status", collMessages, []eq{{"appid", "wx1"}, {"status", "failed"}}, "created_at", page},
		{"messages by template", collMessages, []eq{{"appid", "wx1"}, {"template_id", "T"}}, "created_at", page},
		{"events", collEvents, []eq{{"appid", "wx1"}}, "received_at", page},
		{"events of a user", collEvents, []eq{{"appid", "wx1"}, {"openid", "o1"}}, "received_at", page},
		{"events by kind", collEvents, []eq{{"appid", "wx1"}, {"event", "subscribe_msg_popup_event"}}, "received_at", page},
		{"dead letters", collDLQ, nil, "at", page},
		{"dead letters of an app", collDLQ, []eq{{"appid", "wx1"}, {"errcode", code}}, "at", page},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, args, _, err := st.lists.listQuery(ctx, tt.coll, tt.filters, tt.timeField, tt.page)
			if err != nil {
				t.Fatal(err)
			}
			plan := explain(t, st.lists, q, args)
			if !strings.Contains(plan, "USING INDEX") && !strings.Contains(plan, "USING COVERING INDEX") {
				t.Errorf("plan of %s uses no index:\n%s", q, plan)
			}
			if strings.Contains(plan, "TEMP B-TREE") {
				t.Errorf("plan of %s sorts:\n%s", q, plan)
			}
		})
	}
}

// TestCountsPlans shows the plans of Counts's queries (go test -v).
func TestCountsPlans(t *testing.T) {
	emb, err := StartEmbedded(EmbeddedOptions{Listen: "127.0.0.1:0", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emb.Close)
	ctx := context.Background()
	st, err := Open(ctx, emb.URI(), "wxgate", Options{Guard: NewGuard(), Embedded: emb})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(ctx) })
	for _, c := range []struct {
		coll, q string
		args    []any
	}{
		{collMessages, countMessagesQuery, []any{`"wx1"`, `"sent"`, "1"}},
		{collEvents, countEventsQuery, []any{`"wx1"`, `"x"`, "1"}},
		{collEvents, nextKindQuery, []any{`"wx1"`, ""}},
		{collEvents, countAnswersQuery, []any{`"wx1"`, `"x"`, "1"}},
		{collDLQ, countWaitingQuery, []any{`"wx1"`, "0"}},
	} {
		tbl, err := st.lists.table(ctx, c.coll)
		if err != nil {
			t.Fatal(err)
		}
		q := strings.ReplaceAll(c.q, "{table}", sqliteIdent(tbl))
		t.Logf("%s\n%s", q, explain(t, st.lists, q, c.args))
	}
}

// explain returns SQLite's query plan of q, one step a line.
func explain(t *testing.T, l *sqliteLists, q string, args []any) string {
	t.Helper()
	rows, err := l.db.Query("EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatalf("EXPLAIN QUERY PLAN %s: %v", q, err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		b.WriteString(detail + "\n")
	}
	return b.String()
}
