package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/wxgate/wxgate/bench/internal/proc"
	"github.com/wxgate/wxgate/internal/broker"
)

// The V1 app of wechat-protocol.md section 3: secure mode, JSON.
const (
	benchAppID  = "wxba5fad812f8e6fb9"
	benchToken  = "AAAAA"
	benchAESKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	benchToUser = "gh_97417a04a28d"
)

// usage is CPU time spent by each party over a phase of the benchmark.
type usage struct {
	serverCPU, natsCPU, clientCPU time.Duration
}

func sample(server, nats *proc.Proc) usage {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	client := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return usage{serverCPU: server.CPU(), natsCPU: nats.CPU(), clientCPU: client}
}

func (u usage) plus(v usage) usage {
	return usage{serverCPU: u.serverCPU + v.serverCPU, natsCPU: u.natsCPU + v.natsCPU, clientCPU: u.clientCPU + v.clientCPU}
}

func (u usage) minus(v usage) usage {
	return usage{serverCPU: u.serverCPU - v.serverCPU, natsCPU: u.natsCPU - v.natsCPU, clientCPU: u.clientCPU - v.clientCPU}
}

// startHelper re-executes this program in one of its hidden roles and waits for
// the "ready ADDR" line it prints once it accepts connections.
func startHelper(ctx context.Context, self, role, logDir string, args ...string) (*proc.Proc, error) {
	cmd := exec.Command(self, append([]string{"-role", role}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p, err := proc.New(role, cmd, logDir)
	if err != nil {
		return nil, err
	}
	if err := p.Start(); err != nil {
		return nil, err
	}
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(io.LimitReader(stdout, 256)).ReadString('\n')
		ready <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line := <-ready:
		addr, ok := strings.CutPrefix(line, "ready ")
		if !ok {
			p.Stop()
			return nil, p.Failed(fmt.Sprintf("did not start (said %q)", line))
		}
		if err := proc.CheckLoopback(addr); err != nil {
			p.Stop()
			return nil, err
		}
		p.Addr = addr
		return p, nil
	case <-time.After(proc.StartTimeout):
		p.Stop()
		return nil, p.Failed("was not ready after " + proc.StartTimeout.String())
	case <-ctx.Done():
		p.Stop()
		return nil, ctx.Err()
	}
}

// startWxgate writes the benchmark's configuration and runs `wxgate gateway`
// against natsURL, or `wxgate serve` with its own embedded NATS when mode is
// "serve", with env added to its environment. It returns once /readyz answers 200, with the NATS URL that holds
// the stream.
func startWxgate(ctx context.Context, bin, mode, dir, natsURL string, env []string) (*proc.Proc, string, error) {
	listen, err := proc.FreeLoopbackAddr()
	if err != nil {
		return nil, "", err
	}
	natsLines := "  url: " + natsURL + "\n"
	mongoLines := ""
	if mode == "serve" {
		natsListen, err := proc.FreeLoopbackAddr()
		if err != nil {
			return nil, "", err
		}
		mongoListen, err := proc.FreeLoopbackAddr()
		if err != nil {
			return nil, "", err
		}
		natsLines = "  listen: " + natsListen + "\n"
		mongoLines = "mongo:\n  listen: " + mongoListen + "\n"
		natsURL = "nats://" + natsListen
	}
	cfg := "listen: " + listen + "\n" +
		"data_dir: " + filepath.Join(dir, "wxgate-data") + "\n" +
		"log_level: warn\n" +
		"nats:\n" + natsLines +
		"  max_age: 1h\n" +
		"  publish_timeout: 2s\n" +
		mongoLines +
		"callback:\n  max_skew: 5m\n  max_body: 1MiB\n" +
		"apps:\n" +
		"  - appid: " + benchAppID + "\n" +
		"    token: " + benchToken + "\n" +
		"    encoding_aes_key: " + benchAESKey + "\n"
	cfgPath := filepath.Join(dir, "wxgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, "", err
	}
	cmd := exec.Command(bin, mode, "--config", cfgPath)
	// WXGATE_* variables in the caller's environment would override the file.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WXGATE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	p, err := proc.New("wxgate", cmd, dir)
	if err != nil {
		return nil, "", err
	}
	cmd.Stdout = p.Log
	if err := p.Start(); err != nil {
		return nil, "", err
	}
	p.Addr = "http://" + listen
	if err := p.WaitReady(ctx, p.Addr+"/readyz"); err != nil {
		return nil, "", err
	}
	return p, natsURL, nil
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// serverTimeouts are wxgate's own, so the bare server differs only in its handler.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       90 * time.Second,
	}
}

// runBare is the baseline: a Gin engine set up as wxgate sets up its own (release
// mode, Recovery middleware, the same route and server timeouts) whose push
// handler only answers "success".
func runBare(ctx context.Context, listen string, out io.Writer) error {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	r.POST("/wechat/:appid", func(c *gin.Context) { c.String(http.StatusOK, "success") })
	r.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := newHTTPServer(r)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(out, "ready http://%s\n", ln.Addr())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), proc.StopTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// runNATS runs the embedded NATS server with JetStream that `wxgate serve`
// would run, in its own process, until the benchmark stops it.
func runNATS(ctx context.Context, listen, dir string, out io.Writer) error {
	if dir == "" {
		return errors.New("-dir is required for the nats role")
	}
	ns, err := broker.StartEmbedded(broker.EmbeddedOptions{Listen: listen, StoreDir: dir})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "ready %s\n", ns.ClientURL())
	<-ctx.Done()
	ns.Shutdown()
	ns.WaitForShutdown()
	return nil
}
