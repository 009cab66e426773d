package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxgate/wxgate/crypto"
)

// requestTimeout is longer than any answer the gateway gives (its publish
// timeout is 2 s): a request that takes this long is counted as an error.
const requestTimeout = 10 * time.Second

// push is one pre-generated request: the path with its signed query, and the body.
type push struct {
	path string
	body []byte
}

// makePushes signs and encrypts n secure-mode JSON popup pushes for the V1 app,
// as WeChat sends them. Each has its own openid, so each is a distinct event the
// stream stores; the timestamp is now, well inside the gateway's 5 minute window
// for the length of a run.
func makePushes(prefix string, n int) ([]push, error) {
	c, err := crypto.NewCipher(benchAppID, benchAESKey, "")
	if err != nil {
		return nil, err
	}
	out := make([]push, n)
	now := time.Now().Unix()
	ts := strconv.FormatInt(now, 10)
	for i := range out {
		// 28 characters, the length of a real openid.
		openid := fmt.Sprintf("%s%0*d", prefix, 28-len(prefix), i)
		msg := fmt.Sprintf(`{"ToUserName":%q,"FromUserName":%q,"CreateTime":%d,"MsgType":"event","Event":"subscribe_msg_popup_event","List":{"TemplateId":"VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc","SubscribeStatusString":"accept","PopupScene":"0"}}`,
			benchToUser, openid, now)
		enc, err := c.Encrypt([]byte(msg))
		if err != nil {
			return nil, err
		}
		nonce := strconv.Itoa(100000000 + i)
		q := url.Values{
			"signature":     {crypto.Signature(benchToken, ts, nonce)},
			"timestamp":     {ts},
			"nonce":         {nonce},
			"openid":        {openid},
			"encrypt_type":  {"aes"},
			"msg_signature": {crypto.MsgSignature(benchToken, ts, nonce, enc)},
		}
		body, err := json.Marshal(map[string]string{"ToUserName": benchToUser, "Encrypt": enc})
		if err != nil {
			return nil, err
		}
		out[i] = push{path: "/wechat/" + benchAppID + "?" + q.Encode(), body: body}
	}
	return out, nil
}

// newClient keeps up to c keep-alive connections to one server and never more,
// so c workers use c connections for the whole run.
func newClient(c int) *http.Client {
	return &http.Client{
		Timeout: requestTimeout,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxConnsPerHost:     c,
			MaxIdleConnsPerHost: c,
			MaxIdleConns:        c,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// phase is one run of load: its successes, errors and latencies.
type phase struct {
	ok, errors int
	elapsed    time.Duration
	timedOut   bool
	lat        []time.Duration // of every request that got an answer or failed, unsorted
	statuses   map[string]int  // error kinds and their counts
}

// result is one target's measured phases, added together.
type result struct {
	name          string
	ok, errors    int
	warmErrors    int
	elapsed       time.Duration
	timedOut      bool
	lat           []time.Duration
	statuses      map[string]int
	usage         usage
	p50, p99, max time.Duration
	peakRSS       uint64
}

func (r *result) add(p phase, u usage) {
	r.ok += p.ok
	r.errors += p.errors
	r.elapsed += p.elapsed
	r.timedOut = r.timedOut || p.timedOut
	r.lat = append(r.lat, p.lat...)
	for k, v := range p.statuses {
		r.statuses[k] += v
	}
	r.usage = r.usage.plus(u)
}

// finish computes the latency percentiles over every phase.
func (r *result) finish() {
	slices.Sort(r.lat)
	r.p50, r.p99 = percentile(r.lat, 0.50), percentile(r.lat, 0.99)
	if len(r.lat) > 0 {
		r.max = r.lat[len(r.lat)-1]
	}
}

// rate is completed requests per second of measured wall time.
func (r result) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ok+r.errors) / r.elapsed.Seconds()
}

func (r result) errorSummary() string {
	keys := make([]string, 0, len(r.statuses))
	for k := range r.statuses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s x%d", k, r.statuses[k]))
	}
	return strings.Join(parts, ", ")
}

// load sends every push to base with c workers, each holding one keep-alive
// connection, and times each request from send to the last byte of the answer.
// It stops early when limit has passed or ctx is cancelled. Only 200 "success"
// counts as a success.
func load(ctx context.Context, client *http.Client, base string, pushes []push, c int, limit time.Duration) phase {
	lat := make([]time.Duration, len(pushes))
	var (
		next     atomic.Int64
		okCount  atomic.Int64
		mu       sync.Mutex
		statuses = map[string]int{}
		wg       sync.WaitGroup
	)
	fail := func(kind string) {
		mu.Lock()
		statuses[kind]++
		mu.Unlock()
	}
	start := time.Now()
	deadline := start.Add(limit)
	var timedOut atomic.Bool
	for range c {
		wg.Go(func() {
			buf := make([]byte, 64)
			for {
				i := int(next.Add(1) - 1)
				if i >= len(pushes) || ctx.Err() != nil {
					return
				}
				if time.Now().After(deadline) {
					timedOut.Store(true)
					return
				}
				p := pushes[i]
				t0 := time.Now()
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+p.path, bytes.NewReader(p.body))
				if err != nil {
					lat[i] = -1
					fail("request: " + err.Error())
					continue
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					lat[i] = time.Since(t0)
					fail("transport error")
					continue
				}
				n, _ := io.ReadFull(resp.Body, buf)
				_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
				resp.Body.Close()
				lat[i] = time.Since(t0)
				if resp.StatusCode == http.StatusOK && string(buf[:n]) == "success" {
					okCount.Add(1)
				} else {
					fail(fmt.Sprintf("%d %q", resp.StatusCode, buf[:n]))
				}
			}
		})
	}
	wg.Wait()
	p := phase{elapsed: time.Since(start), ok: int(okCount.Load()), statuses: statuses, timedOut: timedOut.Load()}
	for _, n := range statuses {
		p.errors += n
	}
	for _, d := range lat {
		if d > 0 {
			p.lat = append(p.lat, d)
		}
	}
	return p
}

// percentile is the nearest-rank percentile of sorted latencies.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}
