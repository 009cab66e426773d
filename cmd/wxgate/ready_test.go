package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/broker"
	"github.com/wxgate/wxgate/internal/broker/natstest"
	"github.com/wxgate/wxgate/internal/checkfor"
	"github.com/wxgate/wxgate/internal/store/storetest"
)

// started is one server command run in-process until the test stops it.
type started struct {
	t      *testing.T
	logs   *syncWriter
	cancel context.CancelFunc
	done   chan int
	addr   string
}

// startCommand runs `wxgate COMMAND --config` with the given configuration
// text and waits until it has bound its HTTP port (which it does before it
// reaches NATS). It fails the test if the command exits before it is stopped.
func startCommand(t *testing.T, command, config string) *started {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wxgate.yaml")
	writeConfig(t, path, config)
	ctx, cancel := context.WithCancel(context.Background())
	s := &started{t: t, logs: &syncWriter{w: &bytes.Buffer{}}, cancel: cancel, done: make(chan int, 1)}
	go func() { s.done <- run(ctx, []string{command, "--config", path}, io.Discard, s.logs) }()
	t.Cleanup(func() { s.stop() })
	checkfor.Eventually(t, waitTime, waitEvery, func() error {
		s.running()
		if s.addr = logField(s.logs.String(), "answering health probes", "addr"); s.addr == "" {
			return fmt.Errorf("wxgate %s is not listening yet", command)
		}
		return nil
	})
	return s
}

// running fails the test if the command has exited.
func (s *started) running() {
	s.t.Helper()
	select {
	case code := <-s.done:
		s.done <- code
		s.t.Fatalf("exited %d while it should run:\n%s", code, s.logs)
	default:
	}
}

// stop cancels the command, as SIGTERM does, and returns its exit code.
func (s *started) stop() int {
	s.cancel()
	code := <-s.done
	s.done <- code // stop may be called again
	return code
}

func (s *started) count(msg string) int {
	return strings.Count(s.logs.String(), `"msg":"`+msg+`"`)
}

// readyz returns the status and body of one GET /readyz.
func (s *started) readyz() (int, map[string]string, error) {
	resp, err := http.Get("http://" + s.addr + "/readyz")
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var body map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("/readyz body: %w", err)
	}
	return resp.StatusCode, body, nil
}

// freeAddr is a loopback address where nothing listens (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// nodeConfig is a gateway's or processor's configuration for natsURL (and
// mongoURI, when not empty).
func nodeConfig(t *testing.T, natsURL string, replicas int, mongoURI string) string {
	t.Helper()
	text := fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s\nnats:\n  url: %s\n  replicas: %d\n", t.TempDir(), natsURL, replicas)
	if mongoURI != "" {
		text += fmt.Sprintf("mongo:\n  uri: %s\n", mongoURI)
	}
	return text + "admin:\n  tokens: [serve-test-admin-token]\napps:\n" + appAEntry
}

// TestStartsBeforeNATS starts each server command with nothing listening at
// nats.url: it stays up, alive but not ready, and logs each failed try; once a
// NATS server starts at that address it becomes ready, and a stop while it
// waits ends it with exit code 0.
func TestStartsBeforeNATS(t *testing.T) {
	tests := []struct {
		command   string
		needStore bool
		startNATS bool // false: stop the command while it waits
	}{
		{"gateway", false, true},
		{"processor", true, true},
		{"gateway", false, false},
	}
	for _, tt := range tests {
		name := tt.command + " waits for nats"
		if !tt.startNATS {
			name = tt.command + " stopped while waiting"
		}
		t.Run(name, func(t *testing.T) {
			natsAddr := freeAddr(t)
			var mongoURI string
			if tt.needStore {
				mongoURI = storetest.Start(t).URI()
			}
			s := startCommand(t, tt.command, nodeConfig(t, "nats://"+natsAddr, 1, mongoURI))

			checkfor.Eventually(t, waitTime, waitEvery, func() error {
				s.running()
				if n := s.count("nats not ready; retrying"); n < 2 {
					return fmt.Errorf("%d retries logged, want 2 or more", n)
				}
				return nil
			})
			if retry := logField(s.logs.String(), "nats not ready; retrying", "err"); !strings.Contains(retry, "not connected") {
				t.Errorf("the retry names %q as its reason, want it to say it is not connected", retry)
			}
			if logField(s.logs.String(), "nats not ready; retrying", "retry_in") == "" {
				t.Errorf("the retry does not say when it tries next:\n%s", s.logs)
			}
			resp, err := http.Get("http://" + s.addr + "/healthz")
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("/healthz while waiting = %v %v, want 200", resp, err)
			}
			resp.Body.Close()
			if code, body, err := s.readyz(); err != nil || code != http.StatusServiceUnavailable || body["nats"] != "unavailable: starting" {
				t.Errorf("/readyz while waiting = %d %v %v, want 503 naming nats", code, body, err)
			}

			if !tt.startNATS {
				if code := s.stop(); code != 0 {
					t.Fatalf("stopped while waiting: exit %d, want 0:\n%s", code, s.logs)
				}
				if s.count("stopped") != 1 {
					t.Errorf("no \"stopped\" line:\n%s", s.logs)
				}
				return
			}
			ns, err := broker.StartEmbedded(broker.EmbeddedOptions{Listen: natsAddr, StoreDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				ns.Shutdown()
				ns.WaitForShutdown()
			}()
			checkfor.Eventually(t, waitTime, waitEvery, func() error {
				s.running()
				code, body, err := s.readyz()
				if err != nil || code != http.StatusOK {
					return fmt.Errorf("/readyz = %d %v %v", code, body, err)
				}
				return nil
			})
			if code := s.stop(); code != 0 {
				t.Errorf("exit %d, want 0:\n%s", code, s.logs)
			}
		})
	}
}

// TestReadyzFollowsQuorumAndStore runs a processor on a three-node NATS
// cluster with an R3 stream and a real store: /readyz is 200, 503 naming
// "store" while the store is down, 200 when it is back, and 503 naming
// "nats" once two of the three nodes are gone. Each change is logged once.
func TestReadyzFollowsQuorumAndStore(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	st := storetest.Start(t)
	// The processor knows every node; the one that stays up is the first.
	s := startCommand(t, "processor", nodeConfig(t, c.URLs(), 3, st.URI()))
	ready := func() error {
		s.running()
		code, body, err := s.readyz()
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("/readyz = %d %v %v", code, body, err)
		}
		return nil
	}
	// notReady waits until /readyz is 503 with check failing and the other ok.
	notReady := func(check, other string) map[string]string {
		t.Helper()
		var last map[string]string
		checkfor.Eventually(t, waitTime, waitEvery, func() error {
			s.running()
			code, body, err := s.readyz()
			last = body
			if err != nil || code != http.StatusServiceUnavailable || !strings.HasPrefix(body[check], "unavailable") || body[other] != "ok" {
				return fmt.Errorf("/readyz = %d %v %v, want 503 with %s unavailable and %s ok", code, body, err, check, other)
			}
			return nil
		})
		return last
	}
	checkfor.Eventually(t, waitTime, waitEvery, ready)

	st.Stop()
	if body := notReady("store", "nats"); body["store"] != "unavailable: unreachable" {
		t.Errorf("/readyz with the store down names it %q, want \"unavailable: unreachable\"", body["store"])
	}
	st.Restart()
	checkfor.Eventually(t, waitTime, waitEvery, ready)

	c.Stop(2)
	c.Stop(1)
	lost := time.Now()
	body := notReady("nats", "store")
	t.Logf("quorum lost to /readyz 503 %q: %v", body["nats"], time.Since(lost).Round(time.Millisecond))
	for _, probe := range []int{1, 2, 3} {
		if code, _, err := s.readyz(); err != nil || code != http.StatusServiceUnavailable {
			t.Fatalf("probe %d after the quorum loss = %d %v, want 503", probe, code, err)
		}
	}
	logs := s.logs.String()
	if n := strings.Count(logs, `"msg":"not ready","check":"store"`); n != 1 {
		t.Errorf("%d \"not ready\" lines for the store, want 1", n)
	}
	if n := strings.Count(logs, `"msg":"ready","check":"store"`); n != 1 {
		t.Errorf("%d \"ready\" lines for the store, want 1", n)
	}
	if n := strings.Count(logs, `"msg":"not ready","check":"nats"`); n != 1 {
		t.Errorf("%d \"not ready\" lines for nats, want 1", n)
	}
	if t.Failed() {
		t.Logf("logs:\n%s", logs)
	}
}
