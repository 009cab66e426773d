package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/checkfor"
	"github.com/wxgate/wxgate/internal/sim"
)

const (
	e2eAppID      = "wxba5fad812f8e6fb9"
	e2eAdminToken = "e2e-admin-token"
	e2eTemplate   = "ORDER_SHIPPED_00000000000000000000000000000"
)

// waitTime bounds every wait for the node; waitEvery is the pause between checks.
const (
	waitTime  = 60 * time.Second
	waitEvery = 50 * time.Millisecond
)

// node is one `wxgate serve` process run in-process from a real config file,
// with the simulator playing WeChat on the other side of real HTTP.
type node struct {
	t    *testing.T
	base string
	sim  *sim.Sim
	// natsURL reaches the embedded NATS server, as a downstream service does.
	natsURL string
}

// startNode runs `wxgate serve` with every listen address on port 0 and learns
// the bound addresses from its start-up log, as an operator would. The
// simulator's listener comes first, for the node's api_base; the simulator
// itself only once the node's address is known, for its push URL.
func startNode(t *testing.T, mode, format string) *node {
	t.Helper()
	return startNodeTokens(t, mode, format, "["+e2eAdminToken+"]")
}

// startNodeTokens is startNode with the given admin.tokens (YAML).
func startNodeTokens(t *testing.T, mode, format, tokens string) *node {
	t.Helper()
	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { simLn.Close() })

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "wxgate.yaml")
	cfg := fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
log_level: info
nats:
  listen: 127.0.0.1:0
mongo:
  listen: 127.0.0.1:0
admin:
  tokens: %s
apps:
  - appid: %s
    secret_file: %s
    token: AAAAA
    encoding_aes_key: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
    api_base: %s
`, filepath.Join(dir, "data"), tokens, e2eAppID, filepath.Join(dir, "secret"), "http://"+simLn.Addr().String())
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte("e2e-app-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// The node stops first, then the simulator it calls.
	var stopSim func()
	t.Cleanup(func() {
		if stopSim != nil {
			stopSim()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	logs := &syncWriter{w: &bytes.Buffer{}}
	go func() { done <- run(ctx, []string{"serve", "--config", cfgPath}, io.Discard, logs) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("wxgate serve exited %d", code)
		}
		if strings.Contains(logs.String(), "e2e-app-secret") {
			t.Errorf("the app secret appears in the logs")
		}
	})
	var listen, natsURL string
	checkfor.Eventually(t, waitTime, waitEvery, func() error {
		listen = logField(logs.String(), "listening", "addr")
		natsURL = logField(logs.String(), "embedded nats started", "url")
		if listen == "" || natsURL == "" {
			return fmt.Errorf("wxgate serve has not logged its addresses (listening %q, nats %q)", listen, natsURL)
		}
		return nil
	})

	s, err := sim.New(sim.Config{
		Apps: []sim.AppConfig{{
			AppID: e2eAppID, Secret: "e2e-app-secret", Token: "AAAAA",
			EncodingAESKey: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
			Mode:           mode, Format: format,
			PushURL: "http://" + listen + "/wechat/" + e2eAppID,
			Templates: []sim.Template{{ID: e2eTemplate, Title: "Order shipped", Type: sim.TemplateOneTime,
				Content: "商品名称:{{thing1.DATA}}\n发货时间:{{time2.DATA}}"}},
		}},
		PushRetryInterval: 200 * time.Millisecond,
	}, nil)
	if err != nil {
		t.Fatalf("sim.New: %v", err)
	}
	simCtx, simStop := context.WithCancel(context.Background())
	simDone := make(chan error, 1)
	go func() { simDone <- s.Serve(simCtx, simLn) }()
	stopSim = func() {
		simStop()
		if err := <-simDone; err != nil {
			t.Errorf("sim.Serve = %v", err)
		}
		s.Close()
	}

	n := &node{t: t, base: "http://" + listen, sim: s, natsURL: natsURL}
	checkfor.Eventually(t, waitTime, waitEvery, func() error {
		resp, err := http.Get(n.base + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz = %d", resp.StatusCode)
		}
		return nil
	})
	return n
}

// logField returns field of the first JSON log line whose message is msg, or "".
func logField(logs, msg, field string) string {
	for line := range strings.Lines(logs) {
		var entry map[string]any
		if json.Unmarshal([]byte(line), &entry) != nil || entry["msg"] != msg {
			continue
		}
		if v, ok := entry[field].(string); ok {
			return v
		}
	}
	return ""
}

// admin calls the admin API and decodes the JSON answer into out.
func (n *node) admin(method, path string, body any, out any) int {
	n.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, n.base+path, r)
	req.Header.Set("Authorization", "Bearer "+e2eAdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			n.t.Fatalf("%s %s: decoding: %v", method, path, err)
		}
	}
	return resp.StatusCode
}

type consentLedger struct {
	Consents []struct {
		TemplateID string `json:"template_id"`
		Status     string `json:"status"`
		Grants     int    `json:"grants"`
	} `json:"consents"`
}

func (n *node) grants(openID string) (string, int) {
	var l consentLedger
	n.admin("GET", "/v1/apps/"+e2eAppID+"/consents/"+openID, nil, &l)
	for _, c := range l.Consents {
		if c.TemplateID == e2eTemplate {
			return c.Status, c.Grants
		}
	}
	return "", 0
}

type message struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	WeChatMsgID string `json:"wechat_msgid"`
	Reason      string `json:"reason"`
}

func (n *node) send(openID string) message {
	n.t.Helper()
	var m message
	code := n.admin("POST", "/v1/apps/"+e2eAppID+"/messages", map[string]any{
		"touser": openID, "template_id": e2eTemplate,
		"data": map[string]any{"thing1": "Coffee beans", "time2": map[string]string{"value": "15:01"}},
	}, &m)
	if code != http.StatusAccepted || m.ID == "" {
		n.t.Fatalf("POST messages = %d %+v, want 202 with an id", code, m)
	}
	return m
}

func (n *node) waitStatus(id string, want ...string) message {
	n.t.Helper()
	var m message
	checkfor.Eventually(n.t, waitTime, waitEvery, func() error {
		n.admin("GET", "/v1/apps/"+e2eAppID+"/messages/"+id, nil, &m)
		for _, w := range want {
			if m.Status == w {
				return nil
			}
		}
		return fmt.Errorf("message %s is %q, want %v", id, m.Status, want)
	})
	return m
}

// TestEndToEnd follows one consent from WeChat's popup to a delivered message:
// a user accepts in the simulator -> the popup push passes the real gateway and
// stream into the ledger -> a send is requested over the admin API -> WeChat
// accepts it -> the sent event arrives -> the message is delivered and the grant
// is used; a second send on the same single grant is rejected.
func TestEndToEnd(t *testing.T) {
	for _, mf := range [][2]string{{sim.ModeSecure, sim.FormatJSON}, {sim.ModeCompatible, sim.FormatXML}} {
		t.Run(mf[0]+"/"+mf[1], func(t *testing.T) {
			n := startNode(t, mf[0], mf[1])
			openID := "oE2E_xxxxxxxxxxxxxxxxxxxxxxxx"
			if err := n.sim.Subscribe(e2eAppID, openID, sim.ActionAccept, e2eTemplate); err != nil {
				t.Fatal(err)
			}
			checkfor.Eventually(t, waitTime, waitEvery, func() error {
				if status, grants := n.grants(openID); status != "accepted" || grants != 1 {
					return fmt.Errorf("consent = %s with %d grants, want accepted with 1", status, grants)
				}
				return nil
			})

			m := n.waitStatus(n.send(openID).ID, "delivered")
			if m.WeChatMsgID == "" {
				t.Errorf("delivered message has no wechat_msgid")
			}
			if got, _ := n.sim.Messages(e2eAppID); len(got) != 1 || got[0].MsgID != m.WeChatMsgID {
				t.Errorf("WeChat received %+v, want one message with msgid %s", got, m.WeChatMsgID)
			}
			if status, grants := n.grants(openID); status != "accepted" || grants != 0 {
				t.Errorf("consent after the send = %s with %d grants, want accepted with 0", status, grants)
			}

			second := n.waitStatus(n.send(openID).ID, "rejected", "sent", "delivered")
			if second.Status != "rejected" {
				t.Errorf("second send on a single grant = %s, want rejected", second.Status)
			}
			if sends := n.sim.Stats().Sends; sends[0] != 1 {
				t.Errorf("WeChat accepted %d sends, want 1 (sends by errcode: %v)", sends[0], sends)
			}
		})
	}
}

func TestDuplicatePushesCountOnce(t *testing.T) {
	n := startNode(t, sim.ModeSecure, sim.FormatJSON)
	if err := n.sim.SetFaults(sim.Faults{PushDuplicates: 4}); err != nil {
		t.Fatal(err)
	}
	openID := "oDup_xxxxxxxxxxxxxxxxxxxxxxxx"
	if err := n.sim.Subscribe(e2eAppID, openID, sim.ActionAccept, e2eTemplate); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.sim.WaitPushes(ctx); err != nil {
		t.Fatal(err)
	}
	var events struct {
		Items []json.RawMessage `json:"items"`
	}
	checkfor.Eventually(t, waitTime, waitEvery, func() error {
		events.Items = nil
		n.admin("GET", "/v1/apps/"+e2eAppID+"/events?openid="+openID, nil, &events)
		if len(events.Items) != 1 {
			return fmt.Errorf("%d events stored, want 1", len(events.Items))
		}
		return nil
	})
	// The event is stored before the ledger is updated: wait for the grant, then
	// make sure the other three deliveries did not add to it.
	checkfor.Eventually(t, waitTime, waitEvery, func() error {
		if status, grants := n.grants(openID); status != "accepted" || grants != 1 {
			return fmt.Errorf("consent = %s with %d grants, want accepted with 1", status, grants)
		}
		return nil
	})
	if got := n.sim.Stats().PushesSucceeded; got != 4 {
		t.Errorf("simulator delivered %d pushes, want 4", got)
	}
	if status, grants := n.grants(openID); status != "accepted" || grants != 1 {
		t.Errorf("consent after 4 deliveries of one popup = %s with %d grants, want accepted with 1", status, grants)
	}
}

// syncWriter serialises writes from concurrent loggers and reads of what
// they wrote.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}
