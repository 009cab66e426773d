// Package storetest runs the embedded MongoDB-compatible store inside a test, on
// a random loopback port with its files in the test's temporary directory, or
// with its data in a throwaway PostgreSQL cluster.
package storetest

import (
	"context"
	"net"
	"testing"
	"time"

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

func start(t testing.TB, s *Server) *Server {
	t.Helper()
	s.Guard = store.NewGuard()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	ln.Close()
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		emb, err := store.StartEmbedded(store.EmbeddedOptions{Listen: s.addr, Dir: s.dir, PostgreSQLURL: s.pgURL})
		if err == nil {
			s.emb = emb
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("starting the embedded store: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
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
	s.start()
}

// Open connects a Store to database db as wxgate's own process does (with
// the server's Guard), closed when the test ends.
func (s *Server) Open(db string) *store.Store {
	s.t.Helper()
	return s.OpenWith(db, store.Options{})
}

// OpenWith is Open with options; the server's Guard is used unless o has one.
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
