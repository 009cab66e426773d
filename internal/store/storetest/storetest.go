// Package storetest runs the embedded MongoDB-compatible store inside a test, on
// a random loopback port with its files in the test's temporary directory (or
// in a throwaway PostgreSQL database, see PostgreSQL).
package storetest

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/checkfor"
	"github.com/wxgate/wxgate/internal/store"
)

// Server is an embedded store owned by one test. Stop and Restart take it away
// and bring it back on the same address with the same files.
type Server struct {
	t     testing.TB
	dir   string
	pgURL string
	addr  string
	emb   *store.Embedded
	// Guard is shared by every Store the test opens, as by the Stores of one
	// wxgate process (see store.Guard).
	Guard *store.Guard
}

// Start starts a store on SQLite files that is stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, &Server{t: t, dir: t.TempDir()})
}

// StartPostgreSQL starts a store that keeps its data in the PostgreSQL
// database at pgURL (see PostgreSQL) and is stopped when the test ends.
func StartPostgreSQL(t testing.TB, pgURL string) *Server {
	t.Helper()
	return start(t, &Server{t: t, pgURL: pgURL})
}

// start starts s on a port the system picks and remembers the address, which
// Restart reuses.
func start(t testing.TB, s *Server) *Server {
	t.Helper()
	s.Guard = store.NewGuard()
	emb, err := store.StartEmbedded(store.EmbeddedOptions{Listen: "127.0.0.1:0", Dir: s.dir, PostgreSQLURL: s.pgURL})
	if err != nil {
		t.Fatalf("starting the embedded store: %v", err)
	}
	s.emb = emb
	t.Cleanup(s.Stop)
	u, err := url.Parse(emb.URI())
	if err != nil {
		t.Fatalf("the embedded store's URI %q: %v", emb.URI(), err)
	}
	s.addr = u.Host
	return s
}

// Embedded is the running store, for what only the embedded store does
// (IndexIDs). Restart replaces it.
func (s *Server) Embedded() *store.Embedded { return s.emb }

// URI is the connection string; it stays the same across Restart.
func (s *Server) URI() string { return "mongodb://" + s.addr + "/" }

// Stop stops the store; it is safe to call twice.
func (s *Server) Stop() {
	if s.emb != nil {
		s.emb.Close()
		s.emb = nil
	}
}

// Restart starts the store again on the same address and files.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	// The address the clients know may stay busy briefly after the stop.
	checkfor.Eventually(s.t, 10*time.Second, 50*time.Millisecond, func() error {
		emb, err := store.StartEmbedded(store.EmbeddedOptions{Listen: s.addr, Dir: s.dir, PostgreSQLURL: s.pgURL})
		if err != nil {
			return err
		}
		s.emb = emb
		return nil
	})
}

// Open connects a Store to database db as wxgate's own process does (with
// the server's Guard), closed when the test ends.
func (s *Server) Open(db string) *store.Store {
	s.t.Helper()
	return s.OpenWith(db, store.Options{})
}

// OpenWith is Open with options; the server's Guard and embedded store are
// used unless o has its own.
func (s *Server) OpenWith(db string, o store.Options) *store.Store {
	s.t.Helper()
	if o.Guard == nil {
		o.Guard = s.Guard
	}
	if o.Embedded == nil {
		o.Embedded = s.emb
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, s.URI(), db, o)
	if err != nil {
		s.t.Fatalf("store.Open: %v", err)
	}
	s.t.Cleanup(func() { _ = st.Close(context.Background()) })
	return st
}
