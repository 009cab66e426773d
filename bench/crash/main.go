// Command crash kills `wxgate serve` with SIGKILL while sends are in flight,
// starts it again on the same data_dir, and checks wxgate's audit against what
// WeChat received: no message may reach WeChat twice, and no message's status
// may contradict WeChat.
//
// Each run starts the WeChat simulator in this process (one app, a latency on
// every send) and `wxgate serve` as a child process on a fresh data_dir, with
// its embedded NATS and store and every port on 127.0.0.1. It gives -n users
// one one-time grant each through popup pushes, requests one send per user
// through the admin API, and kills the process once WeChat has accepted the
// run's fraction of them. It then starts `wxgate serve` again on the same
// data_dir and configuration, waits until every message is terminal or
// unknown, every push has reached the gateway and the processor has nothing
// left to fetch, and compares the audit with WeChat's record. There is one run
// per -kill-at value. Run it from the repository root:
//
//	go run ./bench/crash -n 200 -kill-at 0.2,0.4,0.6
//
// It exits 1 when, in any run, a message reached WeChat twice, an audit
// contradicts WeChat or messages did not settle within -recover, or when a
// run could not be completed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wxgate/wxgate/bench/internal/proc"
)

type flags struct {
	n, c, workers int
	killAt        []float64
	latency       time.Duration
	settle        time.Duration
	recover       time.Duration
	timeout       time.Duration
	bin           string
	keep          bool
}

func main() {
	o := flags{killAt: []float64{0.2, 0.4, 0.6}}
	flag.IntVar(&o.n, "n", 200, "users, each with one grant and one send")
	flag.IntVar(&o.c, "c", 16, "concurrent admin API requests")
	flag.IntVar(&o.workers, "workers", 0, "processor.workers (0: the default, 8)")
	flag.Func("kill-at", "comma-separated `fractions` of the sends WeChat has accepted when serve is killed; one run each (default 0.2,0.4,0.6)", func(v string) error {
		o.killAt = nil
		for f := range strings.SplitSeq(v, ",") {
			k, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil || !(k > 0 && k < 1) {
				return fmt.Errorf("%q is not a fraction between 0 and 1", f)
			}
			o.killAt = append(o.killAt, k)
		}
		return nil
	})
	flag.DurationVar(&o.latency, "latency", 150*time.Millisecond, "WeChat's latency on every send, so that sends are in flight when the kill lands")
	flag.DurationVar(&o.settle, "settle", 10*time.Second, "how long nothing may change before a run's outcome is read")
	flag.DurationVar(&o.recover, "recover", 3*time.Minute, "report a run as not recovered when its messages have not all settled this long after the restart")
	flag.DurationVar(&o.timeout, "timeout", 6*time.Minute, "give up on a run after this long")
	flag.StringVar(&o.bin, "bin", "", "wxgate binary to run (default: build ./cmd/wxgate into a temporary directory)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configurations, logs, data)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "crash:", err)
		os.Exit(1)
	}
}

func (o flags) validate() error {
	switch {
	case o.n < 1 || o.n > 10_000:
		return errors.New("-n must be between 1 and 10000")
	case o.c < 1 || o.c > 256:
		return errors.New("-c must be between 1 and 256")
	case o.workers < 0 || o.workers > 1024:
		return errors.New("-workers must be between 0 and 1024")
	case len(o.killAt) == 0 || len(o.killAt) > 20:
		return errors.New("-kill-at must name between 1 and 20 fractions")
	case o.latency < 0 || o.latency > time.Minute:
		return errors.New("-latency must be between 0 and 1m")
	case o.settle < 0 || o.recover <= 0 || o.timeout <= o.recover:
		return errors.New("-settle must not be negative, -recover must be positive and -timeout longer than -recover")
	}
	return nil
}

// errBroken is returned when a run found a message WeChat received twice or
// an audit that contradicts WeChat, or messages that never settled.
var errBroken = errors.New("a message reached WeChat twice, an audit contradicts WeChat, or messages never settled")

func run(ctx context.Context, o flags, out io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "wxgate-crash-")
	if err != nil {
		return err
	}
	keep := o.keep
	if keep {
		fmt.Fprintln(out, "temporary directory:", tmp)
	}
	defer func() {
		if !keep {
			os.RemoveAll(tmp)
		}
	}()
	if o.bin == "" {
		if o.bin, err = proc.BuildWxgate(ctx, tmp); err != nil {
			return err
		}
	}
	var results []*result
	for i, k := range o.killAt {
		dir := filepath.Join(tmp, fmt.Sprintf("run%d", i+1))
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		fmt.Fprintf(out, "\n== run %d: %d sends, kill at %.0f%% accepted, WeChat latency %v (load average %s)\n",
			i+1, o.n, 100*k, o.latency, proc.LoadAvg())
		r, err := runOnce(ctx, o, k, dir, out)
		if err != nil {
			// Kept for its logs and data.
			keep = true
			return fmt.Errorf("run %d: %w (kept %s)", i+1, err, dir)
		}
		r.print(out)
		results = append(results, r)
	}
	fmt.Fprintln(out)
	printTable(out, o, results)
	for _, r := range results {
		if r.Twice > 0 || len(r.Contradictions) > 0 || r.notRecovered != "" {
			keep = true
			return fmt.Errorf("%w (logs and data kept in %s)", errBroken, tmp)
		}
	}
	return nil
}
