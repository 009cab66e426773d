// Command gateway measures the callback gateway's throughput over loopback
// against a bare Gin handler that only answers "success", in the same run.
//
// It builds wxgate, runs `wxgate gateway` as a subprocess in front of an
// embedded JetStream (itself a subprocess), runs a bare Gin server as a third
// subprocess, and sends both the same pre-generated secure-mode JSON pushes,
// each a distinct event, over concurrent keep-alive connections. It prints
// requests/s, p50/p99/max latency, each server's peak RSS (VmHWM) and CPU, the
// gateway/bare ratio, and checks that the stream holds exactly one event per
// push answered "success". Run it from the repository root:
//
//	go run ./bench/gateway -n 20000 -c 64
//
// See README.md beside this file for how to read the output.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wxgate/wxgate/bench/internal/proc"
	"github.com/wxgate/wxgate/internal/broker"
	"github.com/wxgate/wxgate/schemas"
)

// Targets from the issue: the gateway keeps at least half the bare handler's
// throughput and answers 99% of pushes within 50 ms.
const (
	targetRatio = 0.5
	targetP99   = 50 * time.Millisecond
)

// options are the command line.
type options struct {
	n, c, warmup int
	rounds       int
	timeout      time.Duration
	bin          string
	mode         string // gateway | serve
	keep         bool
	env          []string // extra KEY=VALUE for the wxgate process only
	// Hidden roles: the program re-executes itself to run its helper servers as
	// separate processes, so each one's memory and CPU can be read from /proc.
	role   string
	listen string
	dir    string
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 20000, "measured requests per target (each a distinct push)")
	flag.IntVar(&o.c, "c", 64, "concurrent keep-alive connections")
	flag.IntVar(&o.rounds, "rounds", 4, "split the measured requests into this many rounds, the targets taking turns")
	flag.IntVar(&o.warmup, "warmup", 1000, "warm-up requests per target before measuring (distinct pushes too)")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Second, "stop measuring a target after this much of its own measured time, even if fewer than -n requests were sent")
	flag.StringVar(&o.bin, "bin", "", "wxgate binary to run (default: build ./cmd/wxgate into a temporary directory)")
	flag.StringVar(&o.mode, "mode", "gateway", "gateway: `wxgate gateway` with nats.url at a separate embedded NATS process; serve: `wxgate serve` with its own embedded NATS (RSS and CPU then include NATS)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (config, logs, stream files)")
	proc.EnvFlag(&o.env, "GOGC=200")
	flag.StringVar(&o.role, "role", "", "internal: run as the bare or nats helper process")
	flag.StringVar(&o.listen, "listen", "127.0.0.1:0", "internal: the helper's listen address")
	flag.StringVar(&o.dir, "dir", "", "internal: the nats helper's store directory")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch o.role {
	case "":
		err = run(ctx, o, os.Stdout)
	case "bare":
		err = runBare(ctx, o.listen, os.Stdout)
	case "nats":
		err = runNATS(ctx, o.listen, o.dir, os.Stdout)
	default:
		err = fmt.Errorf("unknown -role %q", o.role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func (o options) validate() error {
	switch {
	case o.n < 1 || o.n > 1_000_000:
		return errors.New("-n must be between 1 and 1000000")
	case o.c < 1 || o.c > 1024:
		return errors.New("-c must be between 1 and 1024")
	case o.warmup < 0 || o.warmup > 100_000:
		return errors.New("-warmup must be between 0 and 100000")
	case o.rounds < 1 || o.rounds > o.n:
		return errors.New("-rounds must be between 1 and -n")
	case o.timeout <= 0:
		return errors.New("-timeout must be positive")
	case o.mode != "gateway" && o.mode != "serve":
		return errors.New("-mode must be gateway or serve")
	}
	return nil
}

// run is the whole measurement: start the servers, load each, check the stream, report.
func run(ctx context.Context, o options, out io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "wxgate-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(out, "temporary directory:", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if o.bin == "" {
		if o.bin, err = proc.BuildWxgate(ctx, tmp); err != nil {
			return err
		}
	}

	loadBefore := proc.LoadAvg()
	var procs []*proc.Proc
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].Stop()
		}
	}()

	bare, err := startHelper(ctx, self, "bare", tmp, "-listen", "127.0.0.1:0")
	if err != nil {
		return err
	}
	procs = append(procs, bare)

	var natsProc *proc.Proc
	natsURL := ""
	if o.mode == "gateway" {
		if natsProc, err = startHelper(ctx, self, "nats", tmp, "-listen", "127.0.0.1:0", "-dir", filepath.Join(tmp, "nats")); err != nil {
			return err
		}
		procs = append(procs, natsProc)
		natsURL = natsProc.Addr
	}
	gw, natsURL, err := startWxgate(ctx, o.bin, o.mode, tmp, natsURL, o.env)
	if err != nil {
		return err
	}
	procs = append(procs, gw)
	for _, p := range procs {
		fmt.Fprintf(out, "%s: pid %d at %s (log %s)\n", p.Name, p.Pid(), p.Addr, p.LogPath)
	}

	fmt.Fprintf(out, "generating %d distinct secure-mode JSON pushes (+%d warm-up)\n", o.n, o.warmup)
	warm, err := makePushes("oWarm", o.warmup)
	if err != nil {
		return err
	}
	pushes, err := makePushes("oBench", o.n)
	if err != nil {
		return err
	}

	targets := []struct {
		name   string
		p      *proc.Proc
		client *http.Client
	}{{"bare gin", bare, newClient(o.c)}, {"gateway", gw, newClient(o.c)}}
	results := make([]result, len(targets))
	warmOK := 0
	for i, t := range targets {
		fmt.Fprintf(out, "%s: warm-up %d requests at %d connections\n", t.name, o.warmup, o.c)
		w := load(ctx, t.client, t.p.Addr, warm, o.c, o.timeout)
		results[i] = result{name: t.name, warmErrors: w.errors, statuses: map[string]int{}}
		if t.p == gw {
			warmOK = w.ok
		}
	}
	// The targets take turns, in alternating order, so that whatever else runs on
	// the machine weighs on both alike.
	for r := range o.rounds {
		chunk := pushes[r*len(pushes)/o.rounds : (r+1)*len(pushes)/o.rounds]
		for k := range targets {
			i := k
			if r%2 == 1 {
				i = len(targets) - 1 - k
			}
			t, res := targets[i], &results[i]
			budget := o.timeout - res.elapsed
			if budget <= 0 {
				res.timedOut = true
				continue
			}
			fmt.Fprintf(out, "round %d/%d: %s, %d requests at %d connections\n", r+1, o.rounds, t.name, len(chunk), o.c)
			before := sample(t.p, natsProc)
			ph := load(ctx, t.client, t.p.Addr, chunk, o.c, budget)
			res.add(ph, sample(t.p, natsProc).minus(before))
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	for i, t := range targets {
		t.client.CloseIdleConnections()
		results[i].peakRSS = t.p.PeakRSS()
		results[i].finish()
	}
	gatewayOK := warmOK + results[1].ok
	loadAfter := proc.LoadAvg()

	stored, err := countInbound(ctx, natsURL)
	if err != nil {
		return err
	}
	report(out, o, results, loadBefore, loadAfter)
	fmt.Fprintf(out, "\nstream %s: %d events on wechat.*.in.>, %d pushes answered success (%d warm-up + %d measured)\n",
		schemas.StreamName, stored, gatewayOK, o.warmup, o.n)
	if stored != uint64(gatewayOK) {
		return fmt.Errorf("the stream holds %d inbound events, want %d: the figures above are not for durably stored events (log: %s)", stored, gatewayOK, gw.LogPath)
	}
	return nil
}

// report prints the results table, the ratio and the verdict against the targets.
func report(out io.Writer, o options, rs []result, loadBefore, loadAfter string) {
	fmt.Fprintf(out, "\n%s/%s, %d CPUs, GOMAXPROCS %d, %s; mode %s; %d connections, %d rounds; load average before %s, after %s\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), o.mode, o.c, o.rounds, loadBefore, loadAfter)
	if len(o.env) > 0 {
		fmt.Fprintf(out, "wxgate environment: %s\n", strings.Join(o.env, " "))
	}
	fmt.Fprintln(out, "client, servers and NATS share these CPUs: the figures are for this machine, not the gateway alone.")
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\trequests\treq/s\tp50\tp99\tmax\tpeak RSS\terrors\tserver CPU/req\tnats CPU/req\tclient CPU/req\t")
	for _, r := range rs {
		natsCPU := "-"
		if r.name == "gateway" && o.mode == "gateway" {
			natsCPU = perReq(r.usage.natsCPU, r.ok+r.errors)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t\n",
			r.name, r.ok+r.errors, r.rate(), ms(r.p50), ms(r.p99), ms(r.max), proc.MiB(r.peakRSS), r.errors,
			perReq(r.usage.serverCPU, r.ok+r.errors), natsCPU, perReq(r.usage.clientCPU, r.ok+r.errors))
	}
	tw.Flush()
	for _, r := range rs {
		if r.errors > 0 || r.warmErrors > 0 {
			fmt.Fprintf(out, "%s: %d errors (%d in warm-up): %s\n", r.name, r.errors, r.warmErrors, r.errorSummary())
		}
		if r.timedOut {
			fmt.Fprintf(out, "%s: stopped after %s with %d of %d requests sent\n", r.name, o.timeout, r.ok+r.errors, o.n)
		}
	}
	if len(rs) < 2 || rs[0].rate() == 0 {
		return
	}
	ratio := rs[1].rate() / rs[0].rate()
	fmt.Fprintf(out, "\ngateway/bare req/s: %.3f (target >= %.1f): %s\n", ratio, targetRatio, verdict(ratio >= targetRatio))
	fmt.Fprintf(out, "gateway p99: %s (target < %s): %s\n", ms(rs[1].p99), ms(targetP99), verdict(rs[1].p99 < targetP99))
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

func perReq(d time.Duration, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0fµs", float64(d)/float64(n)/float64(time.Microsecond))
}

// countInbound sums the stream's messages on wechat.*.in.> from the stream info.
func countInbound(ctx context.Context, url string) (uint64, error) {
	nc, js, err := broker.Connect(url, "wxgate-bench", discardLogger())
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, schemas.StreamName)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", schemas.StreamName, err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter("wechat.*.in.>"))
	if err != nil {
		return 0, fmt.Errorf("stream info: %w", err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n, nil
}
