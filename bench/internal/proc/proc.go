// Package proc runs the servers of the load benchmarks as child processes, on
// loopback only, and reads their CPU time and memory from /proc.
package proc

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Limits on how long a child process may take to start and stop.
const (
	StartTimeout = 30 * time.Second
	StopTimeout  = 15 * time.Second
	// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat; it is
	// 100 on every Linux architecture Go supports.
	clockTicks = 100
)

// Proc is one server a benchmark runs as a child process. Its methods may be
// called from several goroutines once Start has returned.
type Proc struct {
	Name    string
	Cmd     *exec.Cmd
	Addr    string // http://host:port, or nats://host:port for a NATS server
	LogPath string
	// Log is the file that receives the process's standard error; a caller may
	// point Cmd.Stdout at it too before Start.
	Log  *os.File
	done chan struct{} // closed when the process has exited
}

// New prepares cmd to run as name, its standard error written to
// logDir/name.log. The process is killed if the benchmark dies.
func New(name string, cmd *exec.Cmd, logDir string) (*Proc, error) {
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = f
	// If the benchmark dies, its servers die with it rather than linger on their ports.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return &Proc{Name: name, Cmd: cmd, LogPath: logPath, Log: f, done: make(chan struct{})}, nil
}

// Start starts the process.
func (p *Proc) Start() error {
	if err := p.Cmd.Start(); err != nil {
		p.Log.Close()
		return fmt.Errorf("starting %s: %w", p.Name, err)
	}
	go func() {
		_ = p.Cmd.Wait()
		p.Log.Close()
		close(p.done)
	}()
	return nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop asks the process to shut down gracefully and kills it if it does not.
func (p *Proc) Stop() {
	if p.Exited() {
		return
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(StopTimeout):
		_ = p.Cmd.Process.Kill()
		<-p.done
	}
}

// Failed describes a process that did not come up, with the end of its log.
func (p *Proc) Failed(why string) error {
	b, _ := os.ReadFile(p.LogPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return fmt.Errorf("%s %s; its log %s ends with:\n%s", p.Name, why, p.LogPath, b)
}

// PeakRSS is the process's high-water resident set size (VmHWM) in bytes, or
// 0 when it cannot be read.
func (p *Proc) PeakRSS() uint64 { return p.status("VmHWM") }

// RSS is the process's resident set size now (VmRSS) in bytes, or 0 when it
// cannot be read.
func (p *Proc) RSS() uint64 { return p.status("VmRSS") }

// status reads one of the kB fields of /proc/PID/status, in bytes.
func (p *Proc) status(field string) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
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

// CPU is the process's user plus system CPU time so far, across all its
// threads; 0 for a nil Proc.
func (p *Proc) CPU() time.Duration {
	if p == nil {
		return 0
	}
	return CPU(p.Pid())
}

// CPU is the user plus system CPU time so far of the process pid, across all
// its threads; 0 when it cannot be read.
func CPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
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

// TreeCPU is CPU(pid) plus the CPU time of pid's children now running, as
// PostgreSQL's backends are children of its postmaster.
func TreeCPU(pid int) time.Duration {
	total := CPU(pid)
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		child, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		// After ")": state, then ppid.
		if f := strings.Fields(string(b[i+1:])); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			total += CPU(child)
		}
	}
	return total
}

// WaitReady polls url until it answers 200, the process exits, StartTimeout
// passes or ctx ends; the process is stopped unless it became ready.
func (p *Proc) WaitReady(ctx context.Context, url string) error {
	deadline := time.Now().Add(StartTimeout)
	for {
		if Ready(ctx, url) {
			return nil
		}
		switch {
		case p.Exited():
			return p.Failed("exited during start-up")
		case time.Now().After(deadline):
			p.Stop()
			return p.Failed("was not ready after " + StartTimeout.String())
		case ctx.Err() != nil:
			p.Stop()
			return ctx.Err()
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Ready reports whether a GET of url answers 200 within a second.
func Ready(ctx context.Context, url string) bool {
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

// BuildWxgate compiles ./cmd/wxgate into dir; the benchmark runs from the
// repository root.
func BuildWxgate(ctx context.Context, dir string) (string, error) {
	if _, err := os.Stat(filepath.Join("cmd", "wxgate")); err != nil {
		return "", errors.New("./cmd/wxgate not found: run from the repository root or pass -bin")
	}
	bin := filepath.Join(dir, "wxgate")
	if err := Run(ctx, "go", "build", "-o", bin, "./cmd/wxgate"); err != nil {
		return "", fmt.Errorf("building wxgate: %w", err)
	}
	return bin, nil
}

// Run runs a command to completion with its output on standard error.
func Run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// FreeLoopbackAddr picks a free port on 127.0.0.1 for a server that takes its
// address from a configuration file.
func FreeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// CheckLoopback refuses any address off this machine: the benchmarks only
// ever talk to 127.0.0.1.
func CheckLoopback(rawURL string) error {
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

// LoadAvg is the first three fields of /proc/loadavg: other work on the
// machine skews the figures.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// MiB renders a byte count in MiB, "-" for 0 (not read).
func MiB(b uint64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20))
}

// EnvFlag defines the repeatable flag -env KEY=VALUE, appending each value
// to dst: extra environment for the wxgate process only.
func EnvFlag(dst *[]string, example string) {
	flag.Func("env", "extra `KEY=VALUE` for the wxgate process only, e.g. "+example+" (repeatable)", func(v string) error {
		if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
			return errors.New("want KEY=VALUE")
		}
		*dst = append(*dst, v)
		return nil
	})
}
