//go:build noembedded

package store

import (
	"context"
	"errors"
	"time"

	"github.com/wxgate/wxgate/processor"
)

// EmbeddedBuilt reports whether this build has the embedded store: this one,
// built with the tag noembedded for production images, has not.
const EmbeddedBuilt = false

// ErrNoEmbedded is returned by StartEmbedded in a build without the embedded store.
var ErrNoEmbedded = errors.New("this build of wxgate has no embedded store (built with the tag noembedded): set mongo.uri")

// StartEmbedded fails: this build has no embedded store.
func StartEmbedded(EmbeddedOptions) (*Embedded, error) { return nil, ErrNoEmbedded }

// IndexIDs has nothing to index in a build without the embedded store.
func (e *Embedded) IndexIDs(context.Context, string, []string) error { return ErrNoEmbedded }

// sqliteLists does not exist without the embedded store; a Store never has one.
type sqliteLists struct{}

func (e *Embedded) lists(string) (*sqliteLists, error) { return nil, nil }

func (l *sqliteLists) close() error { return nil }

type eq struct {
	field string
	value any
}

func (l *sqliteLists) ids(context.Context, string, []eq, string, processor.Page) ([]string, string, error) {
	return nil, "", ErrNoEmbedded
}

func (l *sqliteLists) allIDs(context.Context, string, []eq, int) ([]string, error) {
	return nil, ErrNoEmbedded
}

func (l *sqliteLists) sqliteCounts(context.Context, string, time.Time) (processor.Counts, error) {
	return processor.Counts{}, ErrNoEmbedded
}
