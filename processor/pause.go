package processor

import (
	"context"
	"sync"
	"time"
)

// PauseBoard shares the apps whose daily send quota is spent (45009) among
// processors, so that one answer pauses every processor at once. An
// implementation must be safe for concurrent use; Until is called before
// every send and should answer from memory.
type PauseBoard interface {
	// Until returns when appID's pause ends, or the zero time when none is
	// known. A time in the past is a pause that is over.
	Until(appID string) time.Time
	// Pause pauses appID until until for every processor.
	Pause(ctx context.Context, appID string, until time.Time) error
}

// SharePauses makes the processor pause apps through b as well as in its own
// memory: it honours the pauses other processors set there and sets its own
// there. It must be called before Run.
func (p *Processor) SharePauses(b PauseBoard) {
	p.pauses.mu.Lock()
	defer p.pauses.mu.Unlock()
	p.pauses.shared = b
}

// pauses holds the apps whose daily quota is spent (45009), until when: in
// memory, so that a processor whose board cannot be written still pauses,
// and on the shared board when there is one.
type pauses struct {
	mu     sync.Mutex
	until  map[string]time.Time
	shared PauseBoard
}

// get returns how long appID stays paused from now; 0 when it is not.
func (ps *pauses) get(appID string, now time.Time) time.Duration {
	ps.mu.Lock()
	until, shared := ps.until[appID], ps.shared
	ps.mu.Unlock()
	if shared != nil {
		if u := shared.Until(appID); u.After(until) {
			until = u
		}
	}
	if d := until.Sub(now); d > 0 {
		return d
	}
	return 0
}

// set pauses appID until until, here at once and on the shared board; an
// error says only that the board was not written.
func (ps *pauses) set(ctx context.Context, appID string, until time.Time) error {
	ps.mu.Lock()
	if ps.until == nil {
		ps.until = map[string]time.Time{}
	}
	ps.until[appID] = until
	shared := ps.shared
	ps.mu.Unlock()
	if shared == nil {
		return nil
	}
	return shared.Pause(ctx, appID, until)
}

// beijing is WeChat's time zone, in which daily quotas reset (no tzdata needed).
var beijing = time.FixedZone("CST", 8*3600)

// nextQuotaReset is the next midnight in Beijing after now.
func nextQuotaReset(now time.Time) time.Time {
	t := now.In(beijing)
	return time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, beijing)
}
