package main

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/wxgate/wxgate/bench/internal/audit"
)

// newAdminAPI returns a client of the admin API of the serve at listen,
// with up to c connections.
func newAdminAPI(listen string, c int) *audit.Client {
	return audit.NewClient("http://"+listen, adminToken, appID, c)
}

// sendData is the template data of every send.
var sendData = map[string]string{"thing1": "Coffee beans", "time2": "15:01"}

// forEach runs f(i) for i in [0, n) on c goroutines and returns how many
// calls failed and the first error.
func forEach(n, c int, f func(i int) error) (int, error) {
	var (
		next, failed atomic.Int64
		once         sync.Once
		first        error
		wg           sync.WaitGroup
	)
	for range c {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					failed.Add(1)
					once.Do(func() { first = err })
				}
			}
		})
	}
	wg.Wait()
	return int(failed.Load()), first
}

// openID is user i's openid, 28 characters as a real one.
func openID(i int) string { return fmt.Sprintf("oCrash%022d", i) }

// idempotencyKey is the key of user i's send request, so that a request
// retried after the restart names the same message.
func idempotencyKey(i int) string { return "crash-" + strconv.Itoa(i) }
