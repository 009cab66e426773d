package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wxgate/wxgate/bench/internal/proc"
)

// The app of every run: secure mode, JSON pushes, one one-time template.
const (
	appID      = "wxba5fad812f8e6fb9"
	appSecret  = "crash-secret"
	appToken   = "AAAAA"
	aesKey     = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	templateID = "ORDER_SHIPPED_00000000000000000000000000000"
	adminToken = "crash-admin-token"
)

// serve is one `wxgate serve` child process and the addresses it logged.
type serve struct {
	p       *proc.Proc
	listen  string // host:port of callbacks and the admin API
	natsURL string // the embedded NATS server, for the consumer's state
}

// writeConfig writes the configuration of a run: everything embedded under
// dir/data, every port on loopback, listen as given (127.0.0.1:0 the first
// time; the address bound then for the restart, so that the simulator's push
// URL stays right).
func writeConfig(path, dir, listen, apiBase string, workers int) error {
	cfg := "listen: " + listen + "\n" +
		"data_dir: " + filepath.Join(dir, "data") + "\n" +
		"log_level: info\n" +
		"nats:\n  listen: 127.0.0.1:0\n" +
		"mongo:\n  listen: 127.0.0.1:0\n" +
		"admin:\n  tokens: [" + adminToken + "]\n" +
		"apps:\n" +
		"  - appid: " + appID + "\n" +
		"    secret: " + appSecret + "\n" +
		"    token: " + appToken + "\n" +
		"    encoding_aes_key: " + aesKey + "\n" +
		"    api_base: " + apiBase + "\n"
	if workers > 0 {
		cfg += "processor:\n  workers: " + strconv.Itoa(workers) + "\n"
	}
	return os.WriteFile(path, []byte(cfg), 0o600)
}

// startServe starts `wxgate serve --config cfgPath` as name, learns its
// addresses from its start-up log and returns once /readyz answers 200.
func startServe(ctx context.Context, bin, cfgPath, dir, name string) (*serve, error) {
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	// WXGATE_* variables in the caller's environment would override the file.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WXGATE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	p, err := proc.New(name, cmd, dir)
	if err != nil {
		return nil, err
	}
	cmd.Stdout = p.Log
	if err := p.Start(); err != nil {
		return nil, err
	}
	s := &serve{p: p}
	deadline := time.Now().Add(proc.StartTimeout)
	for {
		s.listen = logField(p.LogPath, "listening", "addr")
		s.natsURL = logField(p.LogPath, "embedded nats started", "url")
		store := logField(p.LogPath, "embedded store started", "uri")
		if s.listen != "" && s.natsURL != "" && store != "" {
			break
		}
		switch {
		case p.Exited():
			return nil, p.Failed("exited during start-up")
		case time.Now().After(deadline):
			p.Stop()
			return nil, p.Failed("did not log its addresses within " + proc.StartTimeout.String())
		case ctx.Err() != nil:
			p.Stop()
			return nil, ctx.Err()
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Addr = "http://" + s.listen
	for _, u := range []string{p.Addr, s.natsURL} {
		if err := proc.CheckLoopback(u); err != nil {
			p.Stop()
			return nil, err
		}
	}
	if err := p.WaitReady(ctx, p.Addr+"/readyz"); err != nil {
		return nil, err
	}
	return s, nil
}

// kill sends SIGKILL and waits until the process has gone.
func (s *serve) kill() error {
	if err := s.p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	deadline := time.Now().Add(proc.StopTimeout)
	for !s.p.Exited() {
		if time.Now().After(deadline) {
			return errors.New("wxgate serve did not die after SIGKILL")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// logField returns field of the first JSON log line in the file at path whose
// message is msg, or "".
func logField(path, msg, field string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var entry map[string]any
		if json.Unmarshal(sc.Bytes(), &entry) != nil || entry["msg"] != msg {
			continue
		}
		if v, ok := entry[field].(string); ok {
			return v
		}
	}
	return ""
}

// logCounts counts the JSON log lines of the file at path by message, for
// the messages in msgs, and the lines at level ERROR.
func logCounts(path string, msgs ...string) (map[string]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	counts := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var entry struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &entry) != nil {
			continue
		}
		for _, m := range msgs {
			if entry.Msg == m {
				counts[m]++
			}
		}
		if entry.Level == "ERROR" {
			counts["ERROR"]++
		}
	}
	return counts, sc.Err()
}

// errorLines returns up to max lines of the file at path at level ERROR.
func errorLines(path string, limit int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() && len(out) < limit {
		if strings.Contains(sc.Text(), `"level":"ERROR"`) {
			out = append(out, sc.Text())
		}
	}
	return out
}

// describe names a serve for the output.
func (s *serve) describe() string {
	return fmt.Sprintf("pid %d at %s, nats %s (log %s)", s.p.Pid(), s.p.Addr, s.natsURL, s.p.LogPath)
}
