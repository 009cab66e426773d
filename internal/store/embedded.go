package store

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
)

// EmbeddedOptions configures the in-process MongoDB-compatible store.
type EmbeddedOptions struct {
	// Listen is the MongoDB wire-protocol address ("127.0.0.1:27017"; port 0 picks one).
	Listen string
	// Dir holds the SQLite files, one per database.
	Dir string
	// PostgreSQLURL, when set, keeps the data in PostgreSQL instead of SQLite files.
	PostgreSQLURL string
	Logger        *slog.Logger
}

// Embedded is a FerretDB server running in this process: MongoDB's wire
// protocol over SQLite (or PostgreSQL). It supports what wxgate needs (unique
// and sparse indexes, single-document atomic writes) and nothing more is used.
type Embedded struct {
	uri string
	// Where FerretDB keeps the data, for IndexIDs: the absolute directory of
	// the SQLite files, or the PostgreSQL URL exactly as FerretDB was given it.
	sqliteDir     string
	postgreSQLURL string
	cancel        context.CancelFunc
	done          chan struct{}
}

// URI is the mongodb:// connection string of the embedded store.
func (e *Embedded) URI() string { return e.uri }

// Close stops the store and waits until its files are closed.
func (e *Embedded) Close() {
	e.cancel()
	<-e.done
}

// withCustomPlans asks PostgreSQL, through a runtime parameter on the URL, to
// plan every execution of FerretDB's prepared statements with its actual
// arguments. FerretDB's pgx pool caches prepared statements, and after five
// executions PostgreSQL may switch a statement to a generic plan, made once
// without the arguments. A pushed-down filter is "_jsonb->$1 @> $2" with the
// field name as $1, so the generic plan cannot match an index on an expression
// such as _jsonb->'_id' (see IndexIDs) and scans the table. It is chosen when
// it costs no more than the plans before it, as on a table still small, and
// then kept as the table grows, until something such as an ANALYZE makes
// PostgreSQL plan again. The price is a plan per execution, of queries on one
// table. A URL that sets plan_cache_mode itself is left as it is, and so is
// one that is not a URL (FerretDB will reject it).
func withCustomPlans(pgURL string) string {
	u, err := url.Parse(pgURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return pgURL
	}
	q := u.Query()
	if q.Has("plan_cache_mode") {
		return pgURL
	}
	q.Set("plan_cache_mode", "force_custom_plan")
	u.RawQuery = q.Encode()
	return u.String()
}

// redactPassword keeps the password of a PostgreSQL URL out of an error: the
// URL is replaced by its redacted form, and the password, raw and escaped,
// wherever else it appears.
func redactPassword(err error, pgURL string) error {
	if err == nil || pgURL == "" {
		return err
	}
	msg := err.Error()
	u, perr := url.Parse(pgURL)
	if perr != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// Not a URL: nothing tells the password apart, so the whole string goes.
		return errors.New(strings.ReplaceAll(msg, pgURL, "<postgresql url>"))
	}
	// The URL goes first, so that its redacted form survives the rest.
	const placeholder = "\x00url\x00"
	msg = strings.ReplaceAll(msg, pgURL, placeholder)
	if pw, ok := u.User.Password(); ok && pw != "" {
		for _, s := range []string{pw, url.PathEscape(pw), url.QueryEscape(pw)} {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	return errors.New(strings.ReplaceAll(msg, placeholder, u.Redacted()))
}
