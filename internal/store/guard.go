package store

import (
	"hash/maphash"
	"sync"
)

// Guard makes compare-and-set hold on a store that does not enforce it itself.
//
// FerretDB v1 applies an update by reading the matching documents and writing
// them back in a second step, outside any transaction (FerretDB issue #3040), so
// two concurrent replaceOne({_id, version: n}) calls on one document can both
// match. It also pushes only a filter on _id alone down to its indexes: a filter
// on {_id, version} scans the whole collection. A Guard fixes both for the one
// process that writes the store: every write of a document happens under that
// document's lock, and the Guard remembers the version it last wrote, so the
// version check is made here and the store is asked to replace by _id alone.
//
// A Guard is correct only while every writer of the store shares it: the
// embedded store serves the process that started it, and Open refuses another
// process (see errEmbeddedElsewhere). It is safe for concurrent use.
type Guard struct {
	seed  maphash.Seed
	locks [guardStripes]sync.Mutex

	mu       sync.Mutex
	versions map[string]int64
}

// guardStripes is the number of locks the documents are spread over; two
// documents that share a stripe wait for each other, nothing worse.
const guardStripes = 512

// maxVersions bounds the versions a Guard remembers; past it the memory is
// cleared and a write reads the version it needs first (one extra round trip).
const maxVersions = 1 << 17

// NewGuard returns a Guard with no versions known.
func NewGuard() *Guard {
	return &Guard{seed: maphash.MakeSeed(), versions: map[string]int64{}}
}

// lock locks the document named key and returns its unlock.
func (g *Guard) lock(key string) func() {
	m := &g.locks[maphash.String(g.seed, key)%guardStripes]
	m.Lock()
	return m.Unlock
}

// version is the version last written or read under the lock, if known.
func (g *Guard) version(key string) (int64, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	v, ok := g.versions[key]
	return v, ok
}

// remember records the version of a document, read or written under its lock.
func (g *Guard) remember(key string, v int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.versions) >= maxVersions {
		clear(g.versions)
	}
	g.versions[key] = v
}

// forget drops what is known of a document whose last write may or may not have happened.
func (g *Guard) forget(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.versions, key)
}
