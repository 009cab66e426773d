package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wxgate/wxgate/bench/internal/proc"
	"github.com/wxgate/wxgate/internal/sim"
	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
)

// batch is what one batch of the scale mode measured.
type batch struct {
	processors int
	// events: from the first popup to the processors' consumer drained;
	// requests: the send requests answered; sends: from the first send
	// request to WeChat's acceptance of the last; settled: to every sent
	// event applied and the consumer drained.
	events, requests, sends, settled time.Duration
	cpu                              []cpuUse
}

// cpuUse is one component's CPU time over a batch.
type cpuUse struct {
	name string
	cpu  time.Duration
}

// runScale runs the same batches with one processor, then two, against the
// same cluster and store.
func runScale(ctx context.Context, co clusterOptions, o flags, out io.Writer) error {
	co.processors = 1
	start := time.Now()
	c, err := startCluster(ctx, co)
	if err != nil {
		return err
	}
	defer c.stop()
	fmt.Fprintf(out, "cluster ready in %v: 3 NATS servers (R3), %s, 2 gateways, 1 processor (load average %s)\n",
		time.Since(start).Round(time.Millisecond), c.storeKind, proc.LoadAvg())
	nc, js, err := c.stream()
	if err != nil {
		return err
	}
	defer nc.Close()
	l := newLoad(ctx, c, "", 0, 0)
	defer l.close()

	var results []batch
	for _, procs := range []int{1, 2} {
		if len(c.processors) < procs {
			added := time.Now()
			if _, err := c.addNode(ctx, "processor", fmt.Sprintf("processor-%d", procs)); err != nil {
				return err
			}
			// The batch measures the processors once they share the partitions;
			// how long the sharing took is a figure of its own.
			shares, err := waitShared(ctx, c)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "processor-%d started; the partitions shared as %v %v after its start\n", procs, shares, time.Since(added).Round(100*time.Millisecond))
		}
		fmt.Fprintf(out, "batch with %d processor(s): %d users, each a popup push then a send (%d send requests at once, WeChat latency %v)\n",
			procs, o.n, o.concurrent, o.latency)
		b, err := runBatch(ctx, c, l, js, o, fmt.Sprintf("Scale%d", procs))
		if err != nil {
			return err
		}
		b.processors = procs
		results = append(results, b)
	}
	printScale(out, o, results)
	return nil
}

// runBatch pushes o.n popups as fast as the simulator pushes and waits until
// the processors have applied them, then requests o.n sends and waits until
// WeChat has accepted them all and their sent events are applied.
func runBatch(ctx context.Context, c *cluster, l *load, js jetstream.JetStream, o flags, prefix string) (batch, error) {
	var b batch
	before := c.cpu()
	base := c.wc.Stats().Apps[appID]
	t0 := time.Now()
	for i := range o.n {
		if err := c.wc.Subscribe(appID, openID(prefix, i), sim.ActionAccept, templateID); err != nil {
			return b, err
		}
	}
	if err := waitFor(ctx, func() (bool, error) {
		st := c.wc.Stats().Apps[appID]
		if st.PushesSucceeded-base.PushesSucceeded < int64(o.n) {
			return false, nil
		}
		return drained(ctx, js)
	}); err != nil {
		return b, fmt.Errorf("events: %w", err)
	}
	b.events = time.Since(t0)

	t1 := time.Now()
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range o.concurrent {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= o.n {
					return
				}
				if _, err := l.client(i).Send(ctx, openID(prefix, i), templateID, fmt.Sprintf("%s-%d", prefix, i), sendData); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	b.requests = time.Since(t1)
	if n := failed.Load(); n > 0 {
		return b, fmt.Errorf("%d send requests failed", n)
	}
	if err := waitFor(ctx, func() (bool, error) {
		return c.wc.Stats().Apps[appID].Sends[0]-base.Sends[0] >= int64(o.n), nil
	}); err != nil {
		return b, fmt.Errorf("sends: %w", err)
	}
	b.sends = time.Since(t1)
	if err := waitFor(ctx, func() (bool, error) {
		st := c.wc.Stats().Apps[appID]
		if st.PushesSucceeded-base.PushesSucceeded < 2*int64(o.n) {
			return false, nil
		}
		return drained(ctx, js)
	}); err != nil {
		return b, fmt.Errorf("sent events: %w", err)
	}
	b.settled = time.Since(t1)
	after := c.cpu()
	for i := range after {
		b.cpu = append(b.cpu, cpuUse{after[i].name, after[i].cpu - before[i].cpu})
	}
	return b, nil
}

// drained reports whether the processors' consumer has nothing to fetch
// and nothing unacknowledged.
func drained(ctx context.Context, js jetstream.JetStream) (bool, error) {
	pending, ackPending, err := processor.Backlog(ctx, js)
	if err != nil {
		return false, nil // a passing error: ask again
	}
	return pending == 0 && ackPending == 0, nil
}

// waitFor polls cond every 20ms for up to ten minutes.
func waitFor(ctx context.Context, cond func() (bool, error)) error {
	deadline := time.Now().Add(10 * time.Minute)
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not done within 10 minutes")
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// cpu is the CPU time of every component so far, always in the same order.
func (c *cluster) cpu() []cpuUse {
	var out []cpuUse
	var natsCPU time.Duration
	for _, n := range c.nats.nodes {
		natsCPU += n.p.CPU()
	}
	out = append(out, cpuUse{"3 NATS servers", natsCPU})
	var gw time.Duration
	for _, n := range c.gateways {
		gw += n.p.CPU()
	}
	out = append(out, cpuUse{"2 gateways", gw})
	for i := range 2 {
		var t time.Duration
		if i < len(c.processors) {
			t = c.processors[i].p.CPU()
		}
		out = append(out, cpuUse{fmt.Sprintf("processor-%d", i+1), t})
	}
	out = append(out, cpuUse{"this program (FerretDB, simulator, balancer)", proc.CPU(os.Getpid())})
	if c.pg != nil {
		out = append(out, cpuUse{"PostgreSQL", proc.TreeCPU(c.pg.pid())})
	}
	return out
}

func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

// printScale writes the batches' figures, the ratio of two processors to
// one, and where the CPU went.
func printScale(out io.Writer, o flags, bs []batch) {
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESSORS\tEVENTS/S (popups applied)\tSEND REQUESTS/S\tSENDS/S (accepted by WeChat)\tSENDS SETTLED/S (sent events applied)")
	for _, b := range bs {
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.0f\t%.0f\n", b.processors, rate(o.n, b.events), rate(o.n, b.requests), rate(o.n, b.sends), rate(o.n, b.settled))
	}
	if len(bs) == 2 {
		a, b := bs[0], bs[1]
		fmt.Fprintf(tw, "2 vs 1\t%.2f\t%.2f\t%.2f\t%.2f\n", a.events.Seconds()/b.events.Seconds(), a.requests.Seconds()/b.requests.Seconds(),
			a.sends.Seconds()/b.sends.Seconds(), a.settled.Seconds()/b.settled.Seconds())
	}
	_ = tw.Flush()
	fmt.Fprintln(out, "\nCPU used per second of each batch (cores; the machine has", cores(), "):")
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	header := "COMPONENT"
	for _, b := range bs {
		header += fmt.Sprintf("\t%d PROCESSOR(S)", b.processors)
	}
	fmt.Fprintln(tw, header)
	for i := range bs[0].cpu {
		line := bs[0].cpu[i].name
		for _, b := range bs {
			line += fmt.Sprintf("\t%.2f", b.cpu[i].cpu.Seconds()/(b.events+b.settled).Seconds())
		}
		fmt.Fprintln(tw, line)
	}
	total := "total"
	for _, b := range bs {
		var t time.Duration
		for _, u := range b.cpu {
			t += u.cpu
		}
		total += fmt.Sprintf("\t%.2f", t.Seconds()/(b.events+b.settled).Seconds())
	}
	fmt.Fprintln(tw, total)
	_ = tw.Flush()
	fmt.Fprintln(out, "\nCPU per user (a popup push, a send request, a send and its sent event), ms:")
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	totals := make([]time.Duration, len(bs))
	for i := range bs[0].cpu {
		line := bs[0].cpu[i].name
		for j, b := range bs {
			line += fmt.Sprintf("\t%.1f", float64(b.cpu[i].cpu.Microseconds())/1000/float64(o.n))
			totals[j] += b.cpu[i].cpu
		}
		fmt.Fprintln(tw, line)
	}
	total = "total"
	for _, t := range totals {
		total += fmt.Sprintf("\t%.1f", float64(t.Microseconds())/1000/float64(o.n))
	}
	fmt.Fprintln(tw, total)
	_ = tw.Flush()
	fmt.Fprintf(out, "load average %s\n", proc.LoadAvg())
}

// cores is the number of CPUs this program may use.
func cores() int { return runtime.NumCPU() }

// waitShared waits until every processor fetches some of the work stream's
// partitions and together they fetch all of them, as their
// wxgate_processor_partitions gauges say, and returns each one's share.
func waitShared(ctx context.Context, c *cluster) ([]int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		shares, total := make([]int, 0, len(c.processors)), 0
		for _, n := range c.processors {
			v, err := gauge(ctx, n.url()+"/metrics", "wxgate_processor_partitions")
			if err != nil || v == 0 {
				break
			}
			shares = append(shares, int(v))
			total += int(v)
		}
		if len(shares) == len(c.processors) && total == schemas.Partitions {
			return shares, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("processors fetch %v of the %d partitions after a minute", shares, schemas.Partitions)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// gauge reads one unlabelled gauge from a Prometheus text page.
func gauge(ctx context.Context, url, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", url, name)
}
