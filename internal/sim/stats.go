package sim

import (
	"maps"
	"sync"
)

// Stats are the simulator's counters since [New] or the last [Sim.Reset].
type Stats struct {
	// Apps holds the counters of each configured app.
	Apps map[string]AppStats `json:"apps"`
	// Sends counts subscribe/send answers by errcode over all apps, including
	// calls whose access_token matched no app.
	Sends map[int]int64 `json:"sends"`
	// Events counts the pushes the simulator generated; Pushes counts their
	// deliveries (a duplicated event is delivered more than once, a dropped one
	// not at all), PushAttempts their HTTP requests including retries.
	Events          int64 `json:"events"`
	Pushes          int64 `json:"pushes"`
	PushAttempts    int64 `json:"push_attempts"`
	PushesSucceeded int64 `json:"pushes_succeeded"`
	PushesFailed    int64 `json:"pushes_failed"`
	PushesDropped   int64 `json:"pushes_dropped"`
}

// AppStats are the counters of one app.
type AppStats struct {
	// TokenCalls and StableTokenCalls count calls of /cgi-bin/token and
	// /cgi-bin/stable_token naming the app, whatever their outcome.
	TokenCalls       int64 `json:"token_calls"`
	StableTokenCalls int64 `json:"stable_token_calls"`
	// TokensIssued counts distinct access tokens created (a stable_token call
	// returning the current token creates none).
	TokensIssued int64 `json:"tokens_issued"`
	// Sends counts subscribe/send answers by errcode.
	Sends           map[int]int64 `json:"sends"`
	Events          int64         `json:"events"`
	Pushes          int64         `json:"pushes"`
	PushAttempts    int64         `json:"push_attempts"`
	PushesSucceeded int64         `json:"pushes_succeeded"`
	PushesFailed    int64         `json:"pushes_failed"`
	PushesDropped   int64         `json:"pushes_dropped"`
}

// counters holds Stats behind one lock.
type counters struct {
	mu sync.Mutex
	s  Stats
}

func newCounters(appIDs []string) *counters {
	c := &counters{}
	c.reset(appIDs)
	return c
}

func (c *counters) reset(appIDs []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s = Stats{Apps: make(map[string]AppStats, len(appIDs)), Sends: map[int]int64{}}
	for _, id := range appIDs {
		c.s.Apps[id] = AppStats{Sends: map[int]int64{}}
	}
}

// update applies f to the counters of appID (if configured) and to the totals.
func (c *counters) update(appID string, f func(total *Stats, app *AppStats)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.s.Apps[appID]
	if !ok {
		var discard AppStats
		discard.Sends = map[int]int64{}
		f(&c.s, &discard)
		return
	}
	f(&c.s, &a)
	c.s.Apps[appID] = a
}

func (c *counters) snapshot() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.s
	out.Sends = maps.Clone(c.s.Sends)
	out.Apps = make(map[string]AppStats, len(c.s.Apps))
	for id, a := range c.s.Apps {
		a.Sends = maps.Clone(a.Sends)
		out.Apps[id] = a
	}
	return out
}

// Stats returns a copy of the counters. It is safe for concurrent use.
func (s *Sim) Stats() Stats {
	return s.counters.snapshot()
}

func (s *Sim) countSend(appID string, errcode int) {
	s.counters.update(appID, func(t *Stats, a *AppStats) {
		t.Sends[errcode]++
		a.Sends[errcode]++
	})
}
