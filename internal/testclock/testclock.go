// Package testclock is a clock that moves only when a test moves it, for the
// Clock options of the simulator and the token manager, so that what a test
// counts over a span of time does not depend on how fast the machine is.
package testclock

import (
	"sync"
	"time"
)

// Clock is a manual clock. All its methods are safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// New returns a clock that reads start until it is moved.
func New(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time; its signature fits the Clock options.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
