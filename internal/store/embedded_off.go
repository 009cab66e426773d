//go:build noembedded

package store

import (
	"context"
	"errors"
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
