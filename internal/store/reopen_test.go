package store_test

import (
	"testing"

	"github.com/wxgate/wxgate/internal/store/storetest"
)

// TestReopenExistingStore opens a store twice over the same files, as a restarted
// process does: creating the indexes again must be a no-op.
func TestReopenExistingStore(t *testing.T) {
	db := storetest.Start(t)
	db.Open("wxgate")
	db.Restart()
	db.Open("wxgate")
}
