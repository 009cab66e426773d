package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wxgate/wxgate/internal/broker/natstest"
	"github.com/wxgate/wxgate/internal/checkfor"
	"github.com/wxgate/wxgate/internal/sim"
	"github.com/wxgate/wxgate/schemas"
)

// TestOneUserRacedBySendsAndPopups races, for one user, many concurrent send
// requests through the admin API against new popups pushed by WeChat through
// the gateway (and, in the second case, the backend's reports of the same
// popups through POST /v1/apps/{appid}/consents), on a real `wxgate serve`:
// real HTTP, the real stream, the embedded store. Afterwards WeChat's own count
// must agree with the ledger: sends WeChat accepted + grants left = accepts, no
// send went beyond a grant (WeChat would answer 43101), every message ended in
// one terminal state, and every status change was published once and counted
// once.
func TestOneUserRacedBySendsAndPopups(t *testing.T) {
	const (
		initial = 3  // grants before the race
		popups  = 8  // accepts during the race
		sends   = 24 // send requests during the race, more than there will be grants
	)
	for _, withReports := range []bool{false, true} {
		name := "pushes"
		if withReports {
			name = "pushes_and_reports"
		}
		t.Run(name, func(t *testing.T) {
			n := startNode(t, sim.ModeSecure, sim.FormatJSON)
			openID := "oRace_" + name
			scene := 0
			popup := func() {
				scene++ // one popup each: same user, template and second would be one event
				if err := n.sim.Popup(e2eAppID, openID, scene, sim.Answer{TemplateID: e2eTemplate, Action: sim.ActionAccept}); err != nil {
					t.Error(err)
				}
			}
			for range initial {
				popup()
			}
			checkfor.Eventually(t, waitTime, waitEvery, func() error {
				if _, grants := n.grants(openID); grants != initial {
					return fmt.Errorf("%d grants, want %d", grants, initial)
				}
				return nil
			})

			var wg sync.WaitGroup
			ids := make(chan string, sends)
			for range sends {
				wg.Go(func() { ids <- n.send(openID).ID })
			}
			var mu sync.Mutex // scene is shared by the popups
			for i := range popups {
				wg.Go(func() {
					mu.Lock()
					popup() // WeChat records the grant, then pushes
					mu.Unlock()
					if withReports {
						body := map[string]any{"openid": openID, "results": map[string]string{e2eTemplate: "accept"}, "request_id": fmt.Sprintf("race-%d", i)}
						// A backend retries a 503 (the stream did not take the
						// report in time) with the same request_id, which makes
						// the retry safe.
						var code int
						var reply json.RawMessage
						for range 3 {
							if code = n.admin("POST", "/v1/apps/"+e2eAppID+"/consents", body, &reply); code != http.StatusServiceUnavailable {
								break
							}
						}
						if code != http.StatusOK && code != http.StatusAccepted {
							t.Errorf("POST consents = %d %s", code, reply)
						}
					}
				})
			}
			wg.Wait()
			close(ids)

			// Wait for every message to settle and every push to arrive.
			var msgs []message
			for id := range ids {
				msgs = append(msgs, n.waitStatus(id, "delivered", "failed", "rejected", "invalid", "dead", "unknown"))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := n.sim.WaitPushes(ctx); err != nil {
				t.Fatal(err)
			}
			checkfor.Eventually(t, waitTime, waitEvery, func() error { return settledConsumer(n.natsURL) })

			accepts := initial + popups
			wechat := n.sim.Stats().Apps[e2eAppID].Sends
			_, left := n.grants(openID)
			if wechat[0]+int64(left) != int64(accepts) {
				t.Errorf("WeChat accepted %d sends and %d grants are left, want %d accepts in all", wechat[0], left, accepts)
			}
			if wechat[43101] != 0 {
				t.Errorf("WeChat refused %d sends for want of consent: sends went beyond a grant", wechat[43101])
			}
			statuses := map[string]int{}
			for _, m := range msgs {
				statuses[m.Status]++
			}
			if statuses["delivered"] != int(wechat[0]) || statuses["delivered"]+statuses["rejected"] != sends {
				t.Errorf("messages by status %v, want %d delivered and the rest rejected", statuses, wechat[0])
			}

			published := deliveryChanges(t, n.natsURL)
			counted := statusCounts(t, n.base)
			for _, m := range msgs {
				want := []string{"queued", "sending", "sent", "delivered"}
				if m.Status == "rejected" {
					want = []string{"queued", "rejected"}
				}
				got := published[m.ID]
				for _, s := range want {
					if got[s] != 1 {
						t.Errorf("message %s (%s): %s published %d times, want once (all: %v)", m.ID, m.Status, s, got[s], got)
					}
				}
				if len(got) != len(want) {
					t.Errorf("message %s (%s) published %v, want exactly %v", m.ID, m.Status, got, want)
				}
			}
			for _, s := range []string{"queued", "sending", "sent", "delivered", "rejected"} {
				want := 0
				for _, m := range msgs {
					want += published[m.ID][s]
				}
				if counted[s] != want {
					t.Errorf("wxgate_message_status_total{status=%q} = %d, want %d (published)", s, counted[s], want)
				}
			}
			t.Logf("%d accepts; WeChat accepted %d sends, %d grants left; messages %v", accepts, wechat[0], left, statuses)
		})
	}
}

// settledConsumer reports whether the processors have settled everything on
// the work stream.
func settledConsumer(url string) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	return natstest.Drained(js)
}

// deliveryChanges reads every wechat.{appid}.delivery.* message on the stream,
// as a downstream consumer would, and counts them by message id and status.
func deliveryChanges(t *testing.T, url string) map[string]map[string]int {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := js.OrderedConsumer(ctx, schemas.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"wechat." + e2eAppID + ".delivery.>"},
	})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]int{}
	for left := info.NumPending; left > 0; left-- {
		msg, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("reading delivery changes: %v", err)
		}
		var ce struct {
			Data schemas.DeliveryChange `json:"data"`
		}
		if err := json.Unmarshal(msg.Data(), &ce); err != nil {
			t.Fatal(err)
		}
		if out[ce.Data.ID] == nil {
			out[ce.Data.ID] = map[string]int{}
		}
		out[ce.Data.ID][ce.Data.Status]++
	}
	return out
}

// statusCounts reads wxgate_message_status_total by status from /metrics.
func statusCounts(t *testing.T, base string) map[string]int {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "wxgate_message_status_total{") {
			continue
		}
		_, rest, _ := strings.Cut(line, `status="`)
		status, value, _ := strings.Cut(rest, `"} `)
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[status] = int(v)
	}
	return out
}
