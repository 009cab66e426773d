package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/store"
	"github.com/wxgate/wxgate/internal/store/storetest"
	"github.com/wxgate/wxgate/processor"
)

// TestCompareAndSetHasOneWinner is the store's contract: N writers that read
// the same version of one document and save the next one concurrently, one
// winner. It runs against the embedded store as wxgate uses it (every Store of
// the process sharing one Guard), where FerretDB alone lets several win
// (FerretDB issue #3040); writers use separate Stores, as separate components
// of one process do.
func TestCompareAndSetHasOneWinner(t *testing.T) {
	const (
		writers = 8
		rounds  = 25
	)
	db := storetest.Start(t)
	stores := make([]*store.Store, writers)
	for i := range stores {
		stores[i] = db.Open("wxgate")
	}
	ctx := context.Background()
	for round := range rounds {
		id := processor.ConsentKey("wx0000000000000001", fmt.Sprintf("oCAS%03d", round), "T")
		c := processor.NewConsent("wx0000000000000001", fmt.Sprintf("oCAS%03d", round), "T", processor.KindOneTime)
		c.Version = 1
		if err := stores[0].SaveConsent(ctx, c); err != nil {
			t.Fatal(err)
		}
		// Every writer holds version 1 before any of them writes.
		read := make([]*processor.Consent, writers)
		for i, st := range stores {
			var err error
			if read[i], err = st.Consent(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		results := make([]error, writers)
		start := make(chan struct{})
		for i := range writers {
			wg.Go(func() {
				<-start
				next := read[i]
				next.Grants = i + 1
				next.Version++
				results[i] = stores[i].SaveConsent(ctx, next)
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range results {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: writers %d and %d both won the compare-and-set of version 1", round, winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, processor.ErrConflict):
				t.Fatalf("round %d: writer %d: %v, want nil or ErrConflict", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer won", round)
		}
		got, err := stores[writers-1].Consent(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != 2 || got.Grants != winner+1 {
			t.Fatalf("round %d: stored version %d with grants %d, want version 2 written by writer %d", round, got.Version, got.Grants, winner)
		}
	}
}

// TestSecondProcessIsRefused opens the embedded store's database as another
// process would, without the owning process's Guard: Open refuses it, saying why.
func TestSecondProcessIsRefused(t *testing.T) {
	db := storetest.Start(t)
	db.Open("wxgate") // the owning process marks the database
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, db.URI(), "wxgate", store.Options{})
	if err == nil {
		_ = st.Close(ctx)
		t.Fatal("Open without the Guard of the embedding process succeeded, want ErrEmbeddedElsewhere")
	}
	if !errors.Is(err, store.ErrEmbeddedElsewhere) {
		t.Fatalf("Open = %v, want ErrEmbeddedElsewhere", err)
	}
	t.Logf("refused with: %v", err)
}
