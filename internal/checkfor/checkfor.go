// Package checkfor waits in tests for a condition that becomes true on its own,
// by polling it, instead of sleeping for a guessed time.
package checkfor

import (
	"testing"
	"time"
)

// Eventually calls check, pausing for every between calls, until it returns
// nil, and fails the test with check's last error if that has not happened
// within total. check runs at least once, and once more at the deadline, so a
// condition met just as time runs out still passes. Eventually must be called
// from the test's goroutine, as t.Fatal requires; check runs on that goroutine
// too.
func Eventually(t testing.TB, total, every time.Duration, check func() error) {
	t.Helper()
	if err := poll(total, every, check); err != nil {
		t.Fatalf("not reached within %v: %v", total, err)
	}
}

// poll returns nil once check returns nil, or check's last error when total
// has passed.
func poll(total, every time.Duration, check func() error) error {
	deadline := time.Now().Add(total)
	for {
		err := check()
		if err == nil {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return err
		}
		time.Sleep(min(every, left))
	}
}
