// Command cluster starts a wxgate cluster on loopback, breaks it on purpose
// and measures it.
//
// It builds bin/wxgate and starts, each as its own process: three NATS
// servers with JetStream running deployments/nats/nats-server.conf (this
// program re-executed as nats-server, with the addresses, store directory and
// routes given on the command line), two `wxgate gateway` and two `wxgate
// processor` processes with the stream and the token KV at R3; and, in this
// process, the store (embedded FerretDB on a throwaway PostgreSQL cluster when
// Debian's PostgreSQL is installed, else on SQLite), the WeChat simulator and a
// balancer that alternates the simulator's pushes between the gateways. Every
// port is on 127.0.0.1 and every file under one temporary directory.
//
// Modes (-mode):
//
//	up     start, print where everything listens, run a light load of popups
//	       and sends until SIGINT or SIGTERM, stop cleanly (make cluster)
//	chaos  under a steady load, kill -9 a gateway, a processor and a NATS
//	       server in turn, restart each, and check that nothing was lost or
//	       done twice; exit 1 when an invariant is broken (make chaos)
//	scale  the same batches of events and sends with one processor, then two,
//	       against the same cluster and store: events/s, sends/s and the ratio
//
// Run it from the repository root: go run ./bench/cluster -mode chaos
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
	"syscall"
	"time"

	"github.com/wxgate/wxgate/bench/internal/proc"
)

type flags struct {
	mode       string
	bin        string
	keep       bool
	sqlite     bool
	workers    int
	latency    time.Duration
	rate       float64
	sendDelay  time.Duration
	phase      time.Duration
	down       time.Duration
	settle     time.Duration
	recover    time.Duration
	n          int
	concurrent int
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == natsSubcommand {
		os.Exit(runNATSServer(os.Args[2:]))
	}
	o := newFlags(flag.CommandLine)
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

// newFlags defines the flags on fs and returns where they are stored.
func newFlags(fs *flag.FlagSet) *flags {
	o := &flags{}
	fs.StringVar(&o.mode, "mode", "up", "`up`, chaos or scale")
	fs.StringVar(&o.bin, "bin", "", "wxgate binary to run (default: build ./cmd/wxgate into bin/wxgate)")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configurations, logs, data)")
	fs.BoolVar(&o.sqlite, "sqlite", false, "keep the store on SQLite even when PostgreSQL is installed")
	fs.IntVar(&o.workers, "workers", 0, "processor.workers (0: the default)")
	fs.DurationVar(&o.latency, "latency", 20*time.Millisecond, "WeChat's latency on every send")
	fs.Float64Var(&o.rate, "rate", 0, "new users per second, each with a popup push and a send (default: 1 for up, 10 for chaos)")
	fs.DurationVar(&o.sendDelay, "send-delay", 2*time.Second, "how long after a user's popup its send is requested")
	fs.DurationVar(&o.phase, "phase", 20*time.Second, "chaos: load before the first kill, between kills and after the last")
	fs.DurationVar(&o.down, "down", 5*time.Second, "chaos: how long a killed process stays down before its restart")
	fs.DurationVar(&o.settle, "settle", 5*time.Second, "chaos: how long nothing may change before the outcome is read")
	fs.DurationVar(&o.recover, "recover", 3*time.Minute, "chaos: give up waiting for every message to settle after this long")
	fs.IntVar(&o.n, "n", 1000, "scale: users per batch (one popup and one send each)")
	fs.IntVar(&o.concurrent, "c", 32, "scale: concurrent send requests")
	return o
}

// run prepares the directory and the binaries and runs the mode.
func run(ctx context.Context, o flags, out io.Writer) (err error) {
	var mode func(context.Context, clusterOptions, flags, io.Writer) error
	switch o.mode {
	case "up":
		mode = runUp
		if o.rate == 0 {
			o.rate = 1
		}
	case "chaos":
		mode = runChaos
		if o.rate == 0 {
			o.rate = 10
		}
	case "scale":
		mode = runScale
	default:
		return fmt.Errorf("-mode %q: want up, chaos or scale", o.mode)
	}
	if o.rate < 0 || o.rate > 1000 || o.n < 1 || o.concurrent < 1 {
		return errors.New("-rate must be between 0 and 1000, -n and -c positive")
	}
	if _, err := os.Stat(natsConfig); err != nil {
		return fmt.Errorf("%s not found: run from the repository root", natsConfig)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "wxgate-cluster-")
	if err != nil {
		return err
	}
	keep := o.keep
	defer func() {
		if err != nil && !errors.Is(err, context.Canceled) {
			keep = true
		}
		if keep {
			fmt.Fprintln(out, "kept", dir)
		} else {
			os.RemoveAll(dir)
		}
	}()
	if o.bin == "" {
		o.bin = filepath.Join("bin", "wxgate")
		if err := proc.Run(ctx, "go", "build", "-trimpath", "-o", o.bin, "./cmd/wxgate"); err != nil {
			return fmt.Errorf("building wxgate: %w", err)
		}
	}
	if o.bin, err = filepath.Abs(o.bin); err != nil {
		return err
	}
	co := clusterOptions{bin: o.bin, exe: exe, dir: dir, gateways: 2, processors: 2, workers: o.workers, latency: o.latency, sqlite: o.sqlite}
	return mode(ctx, co, o, out)
}

// runUp starts the cluster, prints it, runs a light load until ctx ends and
// stops everything.
func runUp(ctx context.Context, co clusterOptions, o flags, out io.Writer) error {
	start := time.Now()
	c, err := startCluster(ctx, co)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "stopping: the simulator, the gateways and processors (SIGTERM), the NATS servers, the store")
		stopAt := time.Now()
		c.stop()
		fmt.Fprintf(out, "stopped in %v\n", time.Since(stopAt).Round(time.Millisecond))
	}()
	fmt.Fprintf(out, "cluster ready in %v (load average %s)\n\n", time.Since(start).Round(time.Millisecond), proc.LoadAvg())
	c.print(out)
	fmt.Fprintf(out, "\nthe simulator pushes a popup for %.3g new users a second through the balancer and requests their sends through the processors in turn; Ctrl-C stops everything\n", o.rate)
	l := newLoad(ctx, c, "Up", o.rate, o.sendDelay)
	defer l.close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.run(ctx)
	}()
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			<-done
			return nil
		case <-t.C:
			st := c.wc.Stats().Apps[appID]
			fmt.Fprintf(out, "%s users %d, pushes answered success %d, sends accepted by WeChat %d\n",
				time.Now().Format(time.TimeOnly), l.users.Load(), st.PushesSucceeded, st.Sends[0])
		}
	}
}
