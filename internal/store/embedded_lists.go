//go:build !noembedded

package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wxgate/wxgate/processor"
)

// sqliteLists answers the list queries of the embedded store on SQLite from
// FerretDB's own indexes.
//
// FerretDB 1.24 pushes only a find's {_id: v} filter down to SQLite, so a
// listing scans and sorts the whole collection in Go (seconds at 100,000
// messages). Yet the indexes ensureIndexes declares exist in SQLite, on the
// expressions _ferretdb_sjson->"field", which keep each value as its JSON
// text: a string quoted, a date as its milliseconds. sqliteLists asks SQLite
// for the ids of one page, with WHERE and ORDER BY on exactly those
// expressions so that the planner uses the index, and the store then reads
// each document by _id through FerretDB, which uses the _id index. It reads
// through a connection of its own, read-only; FerretDB keeps the file in WAL
// mode, so it sees every committed write and blocks none.
//
// Dates compare as text: right for the 13-digit milliseconds of the years
// 2001 to 2286.
type sqliteLists struct {
	db *sql.DB

	mu     sync.Mutex
	tables map[string]string // collection -> table
}

// lists returns the list queries of database on the embedded store's SQLite
// files, or nil on PostgreSQL (whose finds FerretDB pushes down).
func (e *Embedded) lists(database string) (*sqliteLists, error) {
	if e == nil || e.postgreSQLURL != "" || e.sqliteDir == "" {
		return nil, nil
	}
	if !databaseName.MatchString(database) {
		return nil, fmt.Errorf("store: invalid database name %q", database)
	}
	dsn := (&url.URL{
		Scheme:   "file",
		Path:     filepath.Join(e.sqliteDir, database+sqliteFileExt),
		RawQuery: fmt.Sprintf("mode=ro&_pragma=busy_timeout(%d)&_pragma=query_only(1)", sqliteBusyTimeoutMS),
	}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	return &sqliteLists{db: db, tables: map[string]string{}}, nil
}

func (l *sqliteLists) close() error { return l.db.Close() }

// table returns the SQLite table of a collection.
func (l *sqliteLists) table(ctx context.Context, coll string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.tables[coll]; ok {
		return t, nil
	}
	var t string
	err := l.db.QueryRowContext(ctx, "SELECT table_name FROM "+sqliteIdent(sqliteCollections)+" WHERE name = ?", coll).Scan(&t)
	if err != nil {
		return "", fmt.Errorf("store: looking up the table of %s: %w", coll, err)
	}
	l.tables[coll] = t
	return t, nil
}

// field is FerretDB's index expression of a top-level field.
func field(name string) string { return `_ferretdb_sjson->"` + name + `"` }

// jsonText is v as the JSON text SQLite's -> returns for it.
func jsonText(v any) string {
	switch v := v.(type) {
	case time.Time:
		return strconv.FormatInt(v.UnixMilli(), 10)
	case int:
		return strconv.Itoa(v)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// eq is one equality filter on a top-level field.
type eq struct {
	field string
	value any
}

// ids returns the _ids of one page of coll's documents matching every filter,
// newest first by timeField then _id, and the next page's cursor.
func (l *sqliteLists) ids(ctx context.Context, coll string, filters []eq, timeField string, p processor.Page) ([]string, string, error) {
	q, args, limit, err := l.listQuery(ctx, coll, filters, timeField, p)
	if err != nil {
		return nil, "", err
	}
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("store: listing %s: %w", coll, err)
	}
	defer rows.Close()
	var ids []string
	var ats []string
	for rows.Next() {
		var id, at string
		if err := rows.Scan(&id, &at); err != nil {
			return nil, "", err
		}
		ids, ats = append(ids, id), append(ats, at)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	next := ""
	if len(ids) > limit {
		ids = ids[:limit]
		ms, err := strconv.ParseInt(ats[limit-1], 10, 64)
		if err != nil {
			return nil, "", fmt.Errorf("store: %s %s is not a date: %q", coll, timeField, ats[limit-1])
		}
		next = encodeCursor(time.UnixMilli(ms), ids[limit-1])
	}
	return ids, next, nil
}

// listQuery builds the query of ids and returns it with its arguments and the
// page's size.
func (l *sqliteLists) listQuery(ctx context.Context, coll string, filters []eq, timeField string, p processor.Page) (string, []any, int, error) {
	t, err := l.table(ctx, coll)
	if err != nil {
		return "", nil, 0, err
	}
	limit := p.Limit
	if limit <= 0 {
		limit = processor.DefaultLimit
	}
	limit = min(limit, processor.MaxLimit)
	var where []string
	var args []any
	for _, f := range filters {
		where = append(where, field(f.field)+" = ?")
		args = append(args, jsonText(f.value))
	}
	tf := field(timeField)
	if !p.Since.IsZero() {
		where, args = append(where, tf+" >= ?"), append(args, jsonText(p.Since))
	}
	if !p.Until.IsZero() {
		where, args = append(where, tf+" < ?"), append(args, jsonText(p.Until))
	}
	if p.Cursor != "" {
		at, id, err := decodeCursor(p.Cursor)
		if err != nil {
			return "", nil, 0, err
		}
		where = append(where, "("+tf+" < ? OR ("+tf+" = ? AND "+field("_id")+" < ?))")
		args = append(args, jsonText(at), jsonText(at), jsonText(id))
	}
	q := "SELECT _ferretdb_sjson->>'$._id', " + tf + " FROM " + sqliteIdent(t)
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY " + tf + " DESC, " + field("_id") + " DESC LIMIT ?"
	args = append(args, limit+1)
	return q, args, limit, nil
}

// allIDs returns the _ids of every document of coll matching the filters,
// at most max.
func (l *sqliteLists) allIDs(ctx context.Context, coll string, filters []eq, max int) ([]string, error) {
	t, err := l.table(ctx, coll)
	if err != nil {
		return nil, err
	}
	var where []string
	var args []any
	for _, f := range filters {
		where = append(where, field(f.field)+" = ?")
		args = append(args, jsonText(f.value))
	}
	q := "SELECT _ferretdb_sjson->>'$._id' FROM " + sqliteIdent(t) + " WHERE " + strings.Join(where, " AND ") + " LIMIT ?"
	rows, err := l.db.QueryContext(ctx, q, append(args, max)...)
	if err != nil {
		return nil, fmt.Errorf("store: listing %s: %w", coll, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// counts runs a GROUP BY of the query q and adds each group's count to add.
func (l *sqliteLists) counts(ctx context.Context, coll, q string, args []any, add func(keys []sql.NullString, n int)) error {
	t, err := l.table(ctx, coll)
	if err != nil {
		return err
	}
	rows, err := l.db.QueryContext(ctx, strings.ReplaceAll(q, "{table}", sqliteIdent(t)), args...)
	if err != nil {
		return fmt.Errorf("store: counting %s: %w", coll, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	for rows.Next() {
		keys := make([]sql.NullString, len(cols)-1)
		dest := make([]any, len(cols))
		for i := range keys {
			dest[i] = &keys[i]
		}
		var n int
		dest[len(cols)-1] = &n
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		add(keys, n)
	}
	return rows.Err()
}

// The queries of sqliteCounts; {table} stands for the collection's table.
var (
	countMessagesQuery = "SELECT count(*) FROM {table} WHERE " + field("appid") + " = ? AND " + field("status") + " = ? AND " + field("created_at") + " >= ?"
	countEventsQuery   = "SELECT count(*) FROM {table} WHERE " + field("appid") + " = ? AND " + field("event") + " = ? AND " + field("received_at") + " >= ?"
	nextKindQuery      = "SELECT " + field("event") + " FROM {table} WHERE " + field("appid") + " = ? AND " + field("event") + " > ? ORDER BY " + field("event") + " LIMIT 1"
	countAnswersQuery  = "SELECT i.value->>'$.status', count(*) FROM {table} e, json_each(e._ferretdb_sjson, '$.data.items') i WHERE e." +
		field("appid") + " = ? AND e." + field("event") + " = ? AND e." + field("received_at") + " >= ? GROUP BY 1"
	countWaitingQuery = "SELECT count(*) FROM {table} WHERE " + field("appid") + " = ? AND " + field("redrives") + " = ?"
)

// maxEventKinds bounds the kinds of callbacks Counts tells apart; WeChat
// pushes a few dozen.
const maxEventKinds = 100

// eventKinds returns the app's kinds of callbacks ever received, as their JSON
// text, one index seek each: the first kind after the one before.
func (l *sqliteLists) eventKinds(ctx context.Context, app string) ([]string, error) {
	t, err := l.table(ctx, collEvents)
	if err != nil {
		return nil, err
	}
	q := strings.ReplaceAll(nextKindQuery, "{table}", sqliteIdent(t))
	var kinds []string
	after := ""
	for len(kinds) < maxEventKinds {
		var k sql.NullString
		err := l.db.QueryRowContext(ctx, q, app, after).Scan(&k)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && !k.Valid) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("store: listing the kinds of events: %w", err)
		}
		kinds = append(kinds, k.String)
		after = k.String
	}
	return kinds, nil
}

// sqliteCounts is Counts on SQLite. Messages are counted per status, and
// callbacks per kind, by index seeks on {appid, status, created_at} and
// {appid, event, received_at} that read no row (SQLite's plan does not call
// such an index covering, yet a count whose every term the seek satisfies
// reads only the index); only popup and change events are read, to count
// their items' answers, and dead letters, through {appid, at}.
func (l *sqliteLists) sqliteCounts(ctx context.Context, appID string, since time.Time) (processor.Counts, error) {
	c := processor.Counts{Messages: map[string]int{}, Events: map[string]int{}}
	app, from := jsonText(appID), jsonText(since)
	for _, st := range countedStatuses {
		err := l.counts(ctx, collMessages,
			countMessagesQuery, []any{app, jsonText(st), from}, func(_ []sql.NullString, n int) {
				if n > 0 {
					c.Messages[st] += n
				}
			})
		if err != nil {
			return c, err
		}
	}
	kinds, err := l.eventKinds(ctx, app)
	if err != nil {
		return c, err
	}
	for _, kind := range kinds {
		var name string
		if json.Unmarshal([]byte(kind), &name) != nil || slices.Contains(consentEvents, name) {
			continue
		}
		err := l.counts(ctx, collEvents, countEventsQuery, []any{app, kind, from}, func(_ []sql.NullString, n int) {
			if n > 0 {
				c.Events[name] += n
			}
		})
		if err != nil {
			return c, err
		}
	}
	for _, ev := range consentEvents {
		err = l.counts(ctx, collEvents,
			countAnswersQuery, []any{app, jsonText(ev), from}, func(k []sql.NullString, n int) {
				key := ev
				if k[0].String != "" {
					key += " " + k[0].String
				}
				c.Events[key] += n
			})
		if err != nil {
			return c, err
		}
	}
	err = l.counts(ctx, collDLQ,
		countWaitingQuery, []any{app, jsonText(0)}, func(_ []sql.NullString, n int) { c.DeadLetters += n })
	return c, err
}
