package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// balancer stands where a load balancer stands in front of the gateways:
// it alternates between them and, like nginx's proxy_next_upstream error,
// tries the next gateway when one cannot be reached. It also records every
// push answered `success`, by user and event, to compare with the stream.
type balancer struct {
	client *http.Client
	next   atomic.Uint64

	mu       sync.Mutex
	backends []string
	// success counts the pushes answered success by key (openid/event);
	// each user gets one popup and at most one sent event, so a key names
	// one real-world event.
	success map[string]int
	// successAt is when each key was first answered success.
	successAt map[string]time.Time
	// answered and failed count the answers given to WeChat; failedAt is
	// when the last answer other than success was given.
	answered, failed int64
	failedAt         []time.Time
}

func newBalancer() *balancer {
	return &balancer{
		client:    &http.Client{Timeout: 10 * time.Second},
		success:   map[string]int{},
		successAt: map[string]time.Time{},
	}
}

func (b *balancer) setBackends(urls []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.backends = append([]string(nil), urls...)
}

// pushKey is the user and event a push names, from the plaintext fields of
// a compatible-mode JSON push.
func pushKey(r *http.Request, body []byte) string {
	var m struct {
		FromUserName string `json:"FromUserName"`
		Event        string `json:"Event"`
	}
	_ = json.Unmarshal(body, &m)
	openID := m.FromUserName
	if openID == "" {
		openID = r.URL.Query().Get("openid")
	}
	return openID + "/" + m.Event
}

func (b *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	backends := b.backends
	b.mu.Unlock()
	status, answer := http.StatusBadGateway, []byte("no gateway reachable")
	start := b.next.Add(1)
	for i := range backends {
		target := backends[(start+uint64(i))%uint64(len(backends))] + r.URL.RequestURI()
		req, err := http.NewRequestWithContext(r.Context(), r.Method, target, bytes.NewReader(body))
		if err != nil {
			break
		}
		req.Header.Set("Content-Type", r.Header.Get("Content-Type"))
		resp, err := b.client.Do(req)
		if err != nil {
			continue // the next gateway
		}
		answer, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		status = resp.StatusCode
		break
	}
	ok := status == http.StatusOK && string(answer) == "success"
	b.mu.Lock()
	b.answered++
	if ok {
		key := pushKey(r, body)
		if b.success[key] == 0 {
			b.successAt[key] = time.Now()
		}
		b.success[key]++
	} else {
		b.failed++
		b.failedAt = append(b.failedAt, time.Now())
	}
	b.mu.Unlock()
	w.WriteHeader(status)
	_, _ = w.Write(answer)
}

// counts returns the answers given so far and how many were not success.
func (b *balancer) counts() (answered, failed int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.answered, b.failed
}

// successes returns a copy of the pushes answered success, by key.
func (b *balancer) successes() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]int, len(b.success))
	for k, v := range b.success {
		out[k] = v
	}
	return out
}

// succeededAt returns when the push named key was first answered success,
// and whether it was.
func (b *balancer) succeededAt(key string) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.successAt[key]
	return t, ok
}

// failures returns when each answer other than success was given.
func (b *balancer) failures() []time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]time.Time(nil), b.failedAt...)
}
