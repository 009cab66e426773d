package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxgate/wxgate/bench/internal/audit"
	"github.com/wxgate/wxgate/internal/sim"
)

// sendData is the template data of every send.
var sendData = map[string]string{"thing1": "Coffee beans", "time2": "15:01"}

// openID is user i's openid, 28 characters as a real one.
func openID(prefix string, i int) string { return fmt.Sprintf("o%s%0*d", prefix, 27-len(prefix), i) }

// load is a steady load: every new user accepts the template in a popup (a
// push through a gateway) and, sendDelay after the gateway answered that
// push success, is sent one message through a processor's admin API, the
// processors taken in turn. A send request that
// fails is made again, under the same Idempotency-Key, on the next processor.
type load struct {
	// ctx ends the sends still waiting or being made: the whole run's
	// context, not the one that stops new users.
	ctx       context.Context
	c         *cluster
	prefix    string
	rate      float64 // users per second
	sendDelay time.Duration

	users    atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	clients  map[string]*audit.Client // by processor URL
	sent     int                      // send requests answered 202
	failed   []time.Time              // when a send request failed
	gaveUp   int                      // send requests that never got an answer
	popupErr error
}

func newLoad(ctx context.Context, c *cluster, prefix string, rate float64, sendDelay time.Duration) *load {
	return &load{ctx: ctx, c: c, prefix: prefix, rate: rate, sendDelay: sendDelay, clients: map[string]*audit.Client{}}
}

// client returns the admin API client of the i-th processor.
func (l *load) client(i int) *audit.Client {
	l.mu.Lock()
	defer l.mu.Unlock()
	ps := l.c.processors
	u := ps[i%len(ps)].url()
	a := l.clients[u]
	if a == nil {
		a = audit.NewClient(u, adminToken, appID, 32)
		l.clients[u] = a
	}
	return a
}

// run makes users at the rate until ctx ends, then waits for their sends
// (which l.ctx ends).
func (l *load) run(ctx context.Context) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / l.rate))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			l.wg.Wait()
			return
		case <-tick.C:
		}
		i := int(l.users.Add(1) - 1)
		if err := l.c.wc.Subscribe(appID, openID(l.prefix, i), sim.ActionAccept, templateID); err != nil {
			l.mu.Lock()
			l.popupErr = err
			l.mu.Unlock()
			continue
		}
		l.wg.Go(func() {
			if l.popupStored(i) && sleep(l.ctx, l.sendDelay) == nil {
				l.send(i)
			}
		})
	}
}

// popupStored waits up to two minutes for user i's popup push to be
// answered success.
func (l *load) popupStored(i int) bool {
	key := openID(l.prefix, i) + "/" + popupEvent
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); {
		if _, ok := l.c.lb.succeededAt(key); ok {
			return true
		}
		if sleep(l.ctx, 50*time.Millisecond) != nil {
			return false
		}
	}
	l.mu.Lock()
	l.gaveUp++
	l.mu.Unlock()
	return false
}

// popupEvent is the Event of a popup push.
const popupEvent = "subscribe_msg_popup_event"

// send requests user i's send, trying the processors in turn for up to a
// minute: long enough to outlast any one kill.
func (l *load) send(i int) {
	ctx, cancel := context.WithTimeout(l.ctx, time.Minute)
	defer cancel()
	key := fmt.Sprintf("%s-%d", l.prefix, i)
	for try := 0; ; try++ {
		_, err := l.client(i+try).Send(ctx, openID(l.prefix, i), templateID, key, sendData)
		l.mu.Lock()
		if err == nil {
			l.sent++
		} else {
			l.failed = append(l.failed, time.Now())
		}
		l.mu.Unlock()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			l.mu.Lock()
			l.gaveUp++
			l.mu.Unlock()
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// failures returns when each failed send request failed.
func (l *load) failures() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Time(nil), l.failed...)
}

// requested is how many send requests were answered 202.
func (l *load) requested() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent
}

func (l *load) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.clients {
		a.Close()
	}
}

// sample is the cluster's counters at one moment.
type sample struct {
	at             time.Time
	pushes         int64 // pushes answered success (the simulator's count)
	sendsAccepted  int64 // sends WeChat accepted
	pushesRejected int64 // answers other than success given to WeChat
}

// sampler records a sample every second until ctx ends.
type sampler struct {
	mu      sync.Mutex
	samples []sample
}

func (s *sampler) run(ctx context.Context, c *cluster) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		st := c.wc.Stats().Apps[appID]
		_, failed := c.lb.counts()
		s.mu.Lock()
		s.samples = append(s.samples, sample{at: time.Now(), pushes: st.PushesSucceeded, sendsAccepted: st.Sends[0], pushesRejected: failed})
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// rates returns pushes/s and sends/s between from and to, from the samples
// nearest inside that span.
func (s *sampler) rates(from, to time.Time) (pushes, sends float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var a, b *sample
	for i := range s.samples {
		x := &s.samples[i]
		if x.at.Before(from) || x.at.After(to) {
			continue
		}
		if a == nil {
			a = x
		}
		b = x
	}
	if a == nil || b == a {
		return 0, 0
	}
	d := b.at.Sub(a.at).Seconds()
	return float64(b.pushes-a.pushes) / d, float64(b.sendsAccepted-a.sendsAccepted) / d
}
