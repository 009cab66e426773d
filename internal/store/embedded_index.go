//go:build !noembedded

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver FerretDB uses too
)

// ErrNoCollection marks an IndexIDs call that named a collection the embedded
// store does not have (yet): its index cannot be made before its table exists.
var ErrNoCollection = errors.New("no such collection")

// Facts about how FerretDB 1.24 lays out its data, read from its backends
// (internal/backends/{sqlite,postgresql}/metadata). They are not part of its
// API, so a FerretDB upgrade must check them again.
const (
	// A SQLite database is the file <dir>/<database>.sqlite; the table
	// _ferretdb_collections maps each collection (name) to its table
	// (table_name), which keeps the document in the column _ferretdb_sjson.
	sqliteFileExt       = ".sqlite"
	sqliteCollections   = "_ferretdb_collections"
	sqliteIDExpr        = "_ferretdb_sjson->'$._id'"
	sqliteBusyTimeoutMS = 10000 // what FerretDB sets on its own connections

	// A PostgreSQL database is a schema of the same name; its table
	// _ferretdb_database_metadata keeps one jsonb row per collection, with the
	// collection's name under "_id" and its table's under "table". The document
	// is in the column _jsonb.
	pgCollections = "_ferretdb_database_metadata"
	pgIDExpr      = "(_jsonb->'_id')"
	pgMaxIdent    = 63 // PostgreSQL truncates longer identifiers
)

// indexSuffix ends the name of the index IndexIDs makes, after the table's
// name. FerretDB names its own indexes after the MongoDB index: on SQLite
// <table>_<index name>, where only a MongoDB index named "wxgate_id" would
// take this name (wxgate's are named after their keys, appid_1_openid_1), and
// on PostgreSQL <table>_<index name>_<8 hex digits>_idx, which it never is.
const indexSuffix = "_wxgate_id"

// databaseName is what FerretDB accepts as a database name; IndexIDs checks it
// too, since it becomes a file name or a schema name.
var databaseName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,63}$`)

// IndexIDs adds, for each named collection of database, the index that serves
// FerretDB's own _id lookups, which otherwise scan the whole table.
//
// FerretDB 1.24 indexes _id on one SQL expression and looks it up with
// another, so its _id index serves only uniqueness:
//   - SQLite: the index is on _ferretdb_sjson->"_id", but a find whose filter
//     is exactly {_id: <string or ObjectID>}, and every update and delete of
//     a document, filter on _ferretdb_sjson->'$._id'. SQLite uses an index on
//     an expression only for that same expression, so IndexIDs indexes it.
//     (A filter with more fields, such as {_id, version}, is not pushed down
//     to SQLite at all: its find still scans, the write that follows does not.)
//   - PostgreSQL: the btree index is on (_jsonb->'_id'), which serves updates
//     and deletes (_jsonb->'_id' = $1), but a find pushes {_id: v} down as
//     _jsonb->'_id' @> v, which a btree cannot serve. IndexIDs adds a GIN
//     index (jsonb_path_ops, which serves @> and nothing else) on the same
//     expression. It serves filters with more fields too, since FerretDB
//     pushes each field down to PostgreSQL. The finds reach it only when
//     planned with their arguments, which StartEmbedded ensures (see
//     withCustomPlans).
//
// Each index is made with IF NOT EXISTS, so IndexIDs belongs in every start-up
// and a second call changes nothing. It is safe for concurrent use, and may
// run while the store serves requests, from this process or (on PostgreSQL)
// from other instances; FerretDB's connections use a new index from their next
// query on. Building an index makes writes wait (reads go on), only the first
// time and for long only on a collection that is already large: on SQLite,
// writes to the whole database wait, up to FerretDB's busy timeout of 10 s,
// after which they fail (a build takes some 0.4 s per 100,000 documents on a
// 2-core server), so call it before serving; on PostgreSQL, writes to that
// collection wait.
// FerretDB does not know these indexes: listIndexes does not show them, and
// they go away with their collection.
//
// The collections must exist: a collection that does not is left out, and
// after indexing the others IndexIDs returns an error wrapping ErrNoCollection
// that names it. Errors never show the PostgreSQL password.
func (e *Embedded) IndexIDs(ctx context.Context, database string, collections []string) error {
	if !databaseName.MatchString(database) {
		return fmt.Errorf("store: index _id: invalid database name %q", database)
	}
	var missing []string
	var err error
	if e.postgreSQLURL != "" {
		missing, err = e.indexIDsPostgreSQL(ctx, database, collections)
	} else {
		missing, err = e.indexIDsSQLite(ctx, database, collections)
	}
	if err != nil {
		return fmt.Errorf("store: index _id in %s: %w", database, err)
	}
	if len(missing) > 0 {
		return fmt.Errorf("store: index _id in %s: %w: %s", database, ErrNoCollection, strings.Join(missing, ", "))
	}
	return nil
}

// indexIDsSQLite indexes the collections' tables in FerretDB's file for the
// database, through a connection of its own. FerretDB keeps the file in WAL
// mode, so readers are not blocked; CREATE INDEX waits for the write lock as
// long as FerretDB's writers would. It returns the collections not found.
func (e *Embedded) indexIDsSQLite(ctx context.Context, database string, collections []string) ([]string, error) {
	file := filepath.Join(e.sqliteDir, database+sqliteFileExt)
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		return collections, nil
	} else if err != nil {
		return nil, err
	}
	// mode=rw: never create the file; FerretDB creates it with its metadata.
	dsn := (&url.URL{
		Scheme:   "file",
		Path:     file,
		RawQuery: fmt.Sprintf("mode=rw&_pragma=busy_timeout(%d)", sqliteBusyTimeoutMS),
	}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	defer func() { _ = db.Close() }()
	db.SetMaxOpenConns(1)

	var missing []string
	for _, coll := range collections {
		var table string
		err := db.QueryRowContext(ctx,
			"SELECT table_name FROM "+sqliteIdent(sqliteCollections)+" WHERE name = ?", coll).Scan(&table)
		if errors.Is(err, sql.ErrNoRows) {
			missing = append(missing, coll)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("looking up %s: %w", coll, err)
		}
		q := fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s ON %s (%s)",
			sqliteIdent(table+indexSuffix), sqliteIdent(table), sqliteIDExpr)
		if _, err := db.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("indexing %s: %w", coll, err)
		}
	}
	return missing, nil
}

// sqliteIdent quotes a name for SQLite.
func sqliteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// indexIDsPostgreSQL indexes the collections' tables in the schema FerretDB
// uses for the database, connected with FerretDB's own URL (and so its role,
// which owns the tables). It returns the collections not found.
func (e *Embedded) indexIDsPostgreSQL(ctx context.Context, database string, collections []string) ([]string, error) {
	cfg, err := pgx.ParseConfig(e.postgreSQLURL)
	if err != nil {
		return nil, redactPassword(err, e.postgreSQLURL)
	}
	cfg.RuntimeParams["application_name"] = "wxgate"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, redactPassword(fmt.Errorf("connecting to PostgreSQL: %w", err), e.postgreSQLURL)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()

	var exists bool
	meta := pgx.Identifier{database, pgCollections}.Sanitize()
	if err := conn.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", meta).Scan(&exists); err != nil {
		return nil, err
	}
	if !exists {
		return collections, nil
	}
	var missing []string
	for _, coll := range collections {
		found, err := pgIndexID(ctx, conn, database, meta, coll)
		if err != nil {
			return nil, fmt.Errorf("indexing %s: %w", coll, err)
		}
		if !found {
			missing = append(missing, coll)
		}
	}
	return missing, nil
}

// pgIndexID indexes one collection in a transaction of its own, so that a
// table is blocked for writes only while its own index is built. The
// transaction first takes an advisory lock: two instances starting at once
// would otherwise both build the index, and one would fail on its name.
func pgIndexID(ctx context.Context, conn *pgx.Conn, database, meta, coll string) (bool, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", pgLockKey); err != nil {
		return false, err
	}
	var table string
	err = tx.QueryRow(ctx, "SELECT _jsonb->>'table' FROM "+meta+" WHERE _jsonb->>'_id' = $1", coll).Scan(&table)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	q := fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s ON %s USING gin (%s jsonb_path_ops)",
		pgx.Identifier{pgIndexName(table)}.Sanitize(), pgx.Identifier{database, table}.Sanitize(), pgIDExpr)
	if _, err := tx.Exec(ctx, q); err != nil {
		return false, err
	}
	return true, tx.Commit(ctx)
}

// pgLockKey is the advisory lock that serializes IndexIDs across instances:
// any fixed number does, the same in all of them ("wxgate" in ASCII, then 1).
const pgLockKey int64 = 0x7778_6761_7465_0001

// pgIndexName is <table>_wxgate_id, cut to PostgreSQL's identifier length.
// Index names are unique in a schema, so a cut name ends with a hash of the
// whole table name: two long table names that share their beginning must not
// get the same index name, since IF NOT EXISTS would then skip the second.
func pgIndexName(table string) string {
	if len(table)+len(indexSuffix) <= pgMaxIdent {
		return table + indexSuffix
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(table)) // a hash.Hash never fails to write
	tail := fmt.Sprintf("_%08x%s", h.Sum32(), indexSuffix)
	return table[:pgMaxIdent-len(tail)] + tail
}
