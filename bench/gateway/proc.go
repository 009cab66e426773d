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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/wxgate/wxgate/internal/broker"
)

// The V1 app of wechat-protocol.md section 3: secure mode, JSON.
const (
	benchAppID  = "wxba5fad812f8e6fb9"
	benchToken  = "AAAAA"
	benchAESKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	benchToUser = "gh_97417a04a28d"
)

// Limits on how long the helper processes may take to start and stop.
const (
	startTimeout = 30 * time.Second
	stopTimeout  = 15 * time.Second
	// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat; it is
	// 100 on every Linux architecture Go supports.
	clockTicks = 100
)

// proc is one server the benchmark runs as a child process.
type proc struct {
	name    string
	cmd     *exec.Cmd
	addr    string // http://host:port, or nats://host:port for the NATS helper
	logPath string
	done    chan struct{} // closed when the process has exited
	log     *os.File
}

func newProc(name string, cmd *exec.Cmd, logDir string) (*proc, error) {
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = f
	// If the benchmark dies, its servers die with it rather than linger on their ports.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{}), log: f}, nil
}

func (p *proc) start() error {
	if err := p.cmd.Start(); err != nil {
		p.log.Close()
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.log.Close()
		close(p.done)
	}()
	return nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks the process to shut down gracefully and kills it if it does not.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// failed describes a process that did not come up, with the end of its log.
func (p *proc) failed(why string) error {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return fmt.Errorf("%s %s; its log %s ends with:\n%s", p.name, why, p.logPath, b)
}

// peakRSS is the process's high-water resident set size (VmHWM) in bytes, or 0
// when it cannot be read.
func (p *proc) peakRSS() uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseUint(f[0], 10, 64)
				if err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}

// cpu is the process's user plus system CPU time so far, across all its threads.
func (p *proc) cpu() time.Duration {
	if p == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The command name in parentheses may contain spaces; fields are counted after it.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	// After ")": state is field 3 of proc(5), so utime (14) and stime (15) are f[11] and f[12].
	if len(f) < 13 {
		return 0
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(u+s) * time.Second / clockTicks
}

// usage is CPU time spent by each party over a phase of the benchmark.
type usage struct {
	serverCPU, natsCPU, clientCPU time.Duration
}

func sample(server, nats *proc) usage {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	client := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return usage{serverCPU: server.cpu(), natsCPU: nats.cpu(), clientCPU: client}
}

func (u usage) plus(v usage) usage {
	return usage{serverCPU: u.serverCPU + v.serverCPU, natsCPU: u.natsCPU + v.natsCPU, clientCPU: u.clientCPU + v.clientCPU}
}

func (u usage) minus(v usage) usage {
	return usage{serverCPU: u.serverCPU - v.serverCPU, natsCPU: u.natsCPU - v.natsCPU, clientCPU: u.clientCPU - v.clientCPU}
}

// startHelper re-executes this program in one of its hidden roles and waits for
// the "ready ADDR" line it prints once it accepts connections.
func startHelper(ctx context.Context, self, role, logDir string, args ...string) (*proc, error) {
	cmd := exec.Command(self, append([]string{"-role", role}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p, err := newProc(role, cmd, logDir)
	if err != nil {
		return nil, err
	}
	if err := p.start(); err != nil {
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
			p.stop()
			return nil, p.failed(fmt.Sprintf("did not start (said %q)", line))
		}
		if err := checkLoopback(addr); err != nil {
			p.stop()
			return nil, err
		}
		p.addr = addr
		return p, nil
	case <-time.After(startTimeout):
		p.stop()
		return nil, p.failed("was not ready after " + startTimeout.String())
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
}

// startWxgate writes the benchmark's configuration and runs `wxgate gateway`
// against natsURL, or `wxgate serve` with its own embedded NATS when mode is
// "serve", with env added to its environment. It returns once /readyz answers 200, with the NATS URL that holds
// the stream.
func startWxgate(ctx context.Context, bin, mode, dir, natsURL string, env []string) (*proc, string, error) {
	listen, err := freeLoopbackAddr()
	if err != nil {
		return nil, "", err
	}
	natsLines := "  url: " + natsURL + "\n"
	mongoLines := ""
	if mode == "serve" {
		natsListen, err := freeLoopbackAddr()
		if err != nil {
			return nil, "", err
		}
		mongoListen, err := freeLoopbackAddr()
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
	p, err := newProc("wxgate", cmd, dir)
	if err != nil {
		return nil, "", err
	}
	cmd.Stdout = p.log
	if err := p.start(); err != nil {
		return nil, "", err
	}
	p.addr = "http://" + listen
	deadline := time.Now().Add(startTimeout)
	for {
		if ready(ctx, p.addr+"/readyz") {
			return p, natsURL, nil
		}
		switch {
		case p.exited():
			return nil, "", p.failed("exited during start-up")
		case time.Now().After(deadline):
			p.stop()
			return nil, "", p.failed("was not ready after " + startTimeout.String())
		case ctx.Err() != nil:
			p.stop()
			return nil, "", ctx.Err()
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ready(ctx context.Context, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// freeLoopbackAddr picks a free port on 127.0.0.1 for a server that takes its
// address from a configuration file.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// checkLoopback refuses any address off this machine: the benchmark only ever
// talks to 127.0.0.1.
func checkLoopback(rawURL string) error {
	_, hostport, ok := strings.Cut(rawURL, "://")
	if !ok {
		return fmt.Errorf("address %q has no scheme", rawURL)
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("address %q: %w", rawURL, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("address %q is not a loopback address", rawURL)
	}
	return nil
}

func runCmd(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
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
	sctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
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
