//go:build !noembedded

package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// EmbeddedBuilt reports whether this build has the embedded store (it is left
// out with the build tag noembedded).
const EmbeddedBuilt = true

// StartEmbedded starts the store and returns once it accepts connections.
func StartEmbedded(o EmbeddedOptions) (*Embedded, error) {
	cfg := &ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: o.Listen},
		Logger:   o.Logger,
		Handler:  "sqlite",
	}
	var sqliteDir string
	if o.PostgreSQLURL != "" {
		cfg.Handler, cfg.PostgreSQLURL = "postgresql", withCustomPlans(o.PostgreSQLURL)
	} else {
		if err := os.MkdirAll(o.Dir, 0o750); err != nil {
			return nil, fmt.Errorf("embedded store: %w", err)
		}
		abs, err := filepath.Abs(o.Dir)
		if err != nil {
			return nil, fmt.Errorf("embedded store: %w", err)
		}
		cfg.SQLiteURL = "file:" + abs + "/"
		sqliteDir = abs
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// Fail fast with a clear message when the port is taken.
	if ln, err := net.Listen("tcp", o.Listen); err != nil {
		return nil, fmt.Errorf("embedded store: listen %s: %w", o.Listen, err)
	} else if err := ln.Close(); err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	f, err := ferretdb.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("embedded store: %w", redactPassword(err, cfg.PostgreSQLURL))
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Embedded{
		postgreSQLURL: cfg.PostgreSQLURL,
		sqliteDir:     sqliteDir,
		cancel:        cancel,
		done:          make(chan struct{}),
	}
	go func() {
		defer close(e.done)
		_ = f.Run(ctx)
	}()
	// MongoDBURI waits for the listener to be bound.
	e.uri = f.MongoDBURI()
	if e.uri == "" {
		e.Close()
		return nil, errors.New("embedded store: listener did not start")
	}
	return e, nil
}
