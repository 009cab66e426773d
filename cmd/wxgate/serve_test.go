package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wxgate/wxgate/crypto"
	"github.com/wxgate/wxgate/internal/checkfor"
)

// Two apps for the serve tests; neither calls WeChat, since their pushes are
// plain text messages.
const (
	appA      = "wxba5fad812f8e6fb9"
	appB      = "wx0123456789abcdef"
	tokenA    = "tokenAAAAA"
	tokenB    = "tokenBBBBB"
	appAEntry = `  - appid: wxba5fad812f8e6fb9
    secret: app-a-secret-0001
    token: tokenAAAAA
    api_base: http://127.0.0.1:1
`
	appBEntry = `  - appid: wx0123456789abcdef
    secret: app-b-secret-0002
    token: tokenBBBBB
    api_base: http://127.0.0.1:1
`
)

// serveConfig writes a configuration whose every listen address takes a free
// port, with dataDir and the given apps entries, and returns its path.
func serveConfig(t *testing.T, dir, dataDir string, apps ...string) string {
	t.Helper()
	text := fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s\nnats:\n  listen: 127.0.0.1:0\nmongo:\n  listen: 127.0.0.1:0\nadmin:\n  tokens: [serve-test-admin-token]\n", dataDir)
	if len(apps) > 0 {
		text += "apps:\n" + strings.Join(apps, "")
	}
	path := filepath.Join(dir, "wxgate.yaml")
	writeConfig(t, path, text)
	return path
}

// writeConfig replaces the file at path in one step, so a reload never reads
// half of it.
func writeConfig(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// serving is one `wxgate serve` run in-process.
type serving struct {
	t      *testing.T
	logs   *syncWriter
	cancel context.CancelFunc
	done   chan int
	code   int
	exited bool
	addr   string
}

// startServe runs `wxgate serve` with args and waits until it listens.
func startServe(t *testing.T, args ...string) *serving {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &serving{t: t, logs: &syncWriter{w: &bytes.Buffer{}}, cancel: cancel, done: make(chan int, 1)}
	go func() { s.done <- run(ctx, append([]string{"serve"}, args...), io.Discard, s.logs) }()
	t.Cleanup(func() { s.stop() })
	checkfor.Eventually(t, waitTime, waitEvery, func() error {
		select {
		case code := <-s.done:
			s.code, s.exited = code, true
			t.Fatalf("wxgate serve exited %d:\n%s", code, s.logs) // check runs on the test's goroutine
		default:
		}
		if s.addr = logField(s.logs.String(), "listening", "addr"); s.addr == "" {
			return fmt.Errorf("wxgate serve is not listening yet")
		}
		return nil
	})
	return s
}

// stop cancels the serve and returns its exit code.
func (s *serving) stop() int {
	s.cancel()
	if !s.exited {
		s.code, s.exited = <-s.done, true
	}
	return s.code
}

// count is how many log lines have the message msg.
func (s *serving) count(msg string) int {
	return strings.Count(s.logs.String(), `"msg":"`+msg+`"`)
}

// push posts a plaintext text message to appID, signed with token, and returns the status.
func (s *serving) push(appID, token string, n int) (int, error) {
	ts, nonce := strconv.FormatInt(time.Now().Unix(), 10), strconv.Itoa(n)
	q := url.Values{"timestamp": {ts}, "nonce": {nonce}, "signature": {crypto.Signature(token, ts, nonce)}}
	body := fmt.Sprintf(`{"ToUserName":"gh_97417a04a28d","FromUserName":"oServe_%d","CreateTime":%s,"MsgType":"text","Content":"hello","MsgId":%d}`, n, ts, n)
	resp, err := http.Post("http://"+s.addr+"/wechat/"+appID+"?"+q.Encode(), "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// runOnce runs one command to its end and returns its exit code and output.
func runOnce(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	var out, errb bytes.Buffer
	code = run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestSecondServeOnOneDataDirRefused(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	first := startServe(t, "--config", serveConfig(t, dir, dataDir, appAEntry))

	// Another configuration file, ports of its own, the same data_dir.
	other := t.TempDir()
	code, _, stderr := runOnce(t, "serve", "--config", serveConfig(t, other, dataDir, appAEntry))
	want := fmt.Sprintf("data_dir %s is in use by another wxgate serve (pid %d", dataDir, os.Getpid())
	if code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("second serve = exit %d, stderr:\n%s\nwant exit 1 with %q", code, stderr, want)
	}
	if strings.Contains(stderr, "embedded nats started") {
		t.Errorf("the second serve started NATS before it was refused:\n%s", stderr)
	}

	if code := first.stop(); code != 0 {
		t.Fatalf("first serve exited %d", code)
	}
	// The lock goes with the process that held it.
	again := startServe(t, "--config", serveConfig(t, other, dataDir, appAEntry))
	if code := again.stop(); code != 0 {
		t.Errorf("serve after the first stopped exited %d", code)
	}
}

// TestConfigErrorsBeforeAnythingStarts checks that a bad configuration exits 2
// naming every problem, before anything is started or written.
func TestConfigErrorsBeforeAnythingStarts(t *testing.T) {
	tests := []struct {
		name string
		cmd  string
		yaml string
		want []string
	}{
		{"missing secret", "serve", "apps:\n  - appid: wxba5fad812f8e6fb9\n    token: AAAAA\n",
			[]string{"apps[0].secret: is required"}},
		{"every problem", "serve", "apps:\n  - appid: wxba5fad812f8e6fb9\n    token: AAAAA\n    secret: a\n    secret_file: /x\n    encodingaeskey: x\nadmin:\n  tokens: [change-me]\nnats:\n  replicas: 0\n",
			[]string{
				"\n  apps[0].encodingaeskey: unknown key; did you mean apps[0].encoding_aes_key?",
				"\n  apps[0].secret: is set together with apps[0].secret_file",
				"\n  admin.tokens[0].token: is a placeholder (\"change-me\"); set a real token",
				"\n  nats.replicas: must be between 1 and 5",
			}},
		{"gateway", "gateway", "apps:\n  - appid: wxba5fad812f8e6fb9\n    token: \"\"\n",
			[]string{"\n  nats.url: is required for 'wxgate gateway'", "\n  apps[0].token: must be 1 to 32 characters"}},
		{"processor", "processor", "nats:\n  url: nats://127.0.0.1:1\n",
			[]string{"mongo.uri: is required for 'wxgate processor'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			dataDir := filepath.Join(dir, "data")
			path := filepath.Join(dir, "wxgate.yaml")
			writeConfig(t, path, "listen: 127.0.0.1:0\nnats:\n  listen: 127.0.0.1:0\nmongo:\n  listen: 127.0.0.1:0\ndata_dir: "+dataDir+"\n"+tt.yaml)
			code, _, stderr := runOnce(t, tt.cmd, "--config", path)
			if code != 2 {
				t.Errorf("wxgate %s = exit %d, want 2; stderr:\n%s", tt.cmd, code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if strings.Contains(stderr, `"msg"`) {
				t.Errorf("wxgate %s logged before refusing its configuration:\n%s", tt.cmd, stderr)
			}
			if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
				t.Errorf("data_dir exists after a refused configuration (stat: %v)", err)
			}
		})
	}
}

// TestServeWithoutConfigWarnsAndSaysStopped runs serve with no file (the
// environment moves its ports and data_dir), expecting a warning that no
// apps are configured, and a last log line saying it stopped.
func TestServeWithoutConfigWarnsAndSaysStopped(t *testing.T) {
	for k, v := range map[string]string{
		"WXGATE_LISTEN":       "127.0.0.1:0",
		"WXGATE_NATS_LISTEN":  "127.0.0.1:0",
		"WXGATE_MONGO_LISTEN": "127.0.0.1:0",
		"WXGATE_DATA_DIR":     filepath.Join(t.TempDir(), "data"),
	} {
		t.Setenv(k, v)
	}
	s := startServe(t)
	if hint := logField(s.logs.String(), "no apps configured: every callback is answered 404 and every send is refused", "hint"); !strings.Contains(hint, "--config") {
		t.Errorf("no warning naming --config in:\n%s", s.logs)
	}
	if code := s.stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	lines := strings.Split(strings.TrimSpace(s.logs.String()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, `"msg":"stopped"`) || !strings.Contains(last, `"level":"INFO"`) {
		t.Errorf("last log line = %s, want an INFO line saying it stopped", last)
	}
}

// TestReloadAddsAppWhileServing sends SIGHUP to this process while a stream of
// callbacks goes to app A: the reload that adds app B makes B's callbacks
// accepted, a bad file keeps the apps in use, and A gets 200 throughout.
func TestReloadAddsAppWhileServing(t *testing.T) {
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	path := serveConfig(t, dir, dataDir, appAEntry)
	s := startServe(t, "--config", path)

	if code, err := s.push(appB, tokenB, 1); err != nil || code != http.StatusNotFound {
		t.Fatalf("push to B before the reload = %d, %v; want 404", code, err)
	}

	var sent, failed atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for n := 1_000_000; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			code, err := s.push(appA, tokenA, n)
			sent.Add(1)
			if err != nil || code != http.StatusOK {
				failed.Add(1)
				firstFailure.CompareAndSwap(nil, fmt.Sprintf("push %d = %d, %v", n, code, err))
			}
		}
	})
	defer func() {
		close(stop)
		wg.Wait()
	}()
	waitSent := func(n int64) {
		t.Helper()
		target := sent.Load() + n
		checkfor.Eventually(t, waitTime, waitEvery, func() error {
			if got := sent.Load(); got < target {
				return fmt.Errorf("%d pushes to A, waiting for %d", got, target)
			}
			return nil
		})
	}
	hup := func(msg string, before int) {
		t.Helper()
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		checkfor.Eventually(t, waitTime, waitEvery, func() error {
			if s.count(msg) <= before {
				return fmt.Errorf("no %q logged yet", msg)
			}
			return nil
		})
	}
	waitSent(20)

	writeConfig(t, path, strings.Replace(readFile(t, path), appAEntry, appAEntry+appBEntry, 1))
	hup("configuration reloaded", 0)
	if code, err := s.push(appB, tokenB, 2); err != nil || code != http.StatusOK {
		t.Errorf("push to B after the reload = %d, %v; want 200", code, err)
	}
	waitSent(20)

	// A bad file: B's token is a placeholder. The apps in use stay.
	writeConfig(t, path, strings.Replace(readFile(t, path), "token: "+tokenB, "token: REPLACE_ME", 1))
	hup("reload failed: keeping the configuration in use", 0)
	if err := logField(s.logs.String(), "reload failed: keeping the configuration in use", "err"); !strings.Contains(err, "apps[1].token: is a placeholder") {
		t.Errorf("the failed reload's log line says %q, want it to name apps[1].token", err)
	}
	if code, err := s.push(appB, tokenB, 3); err != nil || code != http.StatusOK {
		t.Errorf("push to B after a bad reload = %d, %v; want 200 (old apps kept)", code, err)
	}
	waitSent(20)

	if failed.Load() != 0 {
		t.Errorf("%d of %d pushes to A failed across the reloads; first: %v", failed.Load(), sent.Load(), firstFailure.Load())
	}
	t.Logf("%d pushes to A across two reloads", sent.Load())
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
