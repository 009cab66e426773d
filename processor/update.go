package processor

import (
	"context"
	"errors"
	"fmt"
)

// maxCASAttempts bounds the read-modify-write retries of one update under contention.
const maxCASAttempts = 16

// document is a stored document with an optimistic-concurrency version.
type document[T any] interface {
	*T
	// bump moves the document to its next version before it is saved.
	bump()
}

// update is the one compare-and-set loop of the processor. It starts from
// known when the caller holds the document already (nil: load it; a document
// that does not exist loads as nil), lets change compute the next state, and
// saves it: a lost compare-and-set (ErrConflict, or ErrDuplicate when two
// writers insert the same id) starts over from a fresh load. change returns
// nil to leave the document as it is; update then returns the current document
// and changed false. An error from change is returned as it is.
func update[T any, PT document[T]](ctx context.Context, known PT, load func(context.Context) (PT, error),
	change func(PT) (PT, error), save func(context.Context, PT) error) (doc PT, changed bool, err error) {
	cur := known
	for range maxCASAttempts {
		if cur == nil {
			cur, err = load(ctx)
			if errors.Is(err, ErrNotFound) {
				cur, err = nil, nil
			}
			if err != nil {
				return nil, false, err
			}
		}
		next, err := change(cur)
		if err != nil || next == nil {
			return cur, false, err
		}
		next.bump()
		err = save(ctx, next)
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrDuplicate) {
			cur = nil
			continue
		}
		if err != nil {
			return nil, false, err
		}
		return next, true, nil
	}
	return nil, false, fmt.Errorf("%w: gave up after %d attempts", ErrConflict, maxCASAttempts)
}

func (c *Consent) bump()    { c.Version++ }
func (m *Message) bump()    { m.Version++ }
func (o *Outcome) bump()    { o.Version++ }
func (d *DeadLetter) bump() { d.Version++ }
