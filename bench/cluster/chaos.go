package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wxgate/wxgate/bench/internal/audit"
	"github.com/wxgate/wxgate/bench/internal/proc"
	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
)

// ackWait is how long the stream waits for a processor's ack before it
// redelivers: processor.Config.AckWait's default, which `wxgate processor`
// uses. A message may stay `sending` no longer than that after its processor
// dies.
const ackWait = 30 * time.Second

// errBroken is returned when an invariant of the chaos experiment is broken.
var errBroken = errors.New("an invariant is broken")

// outage is one kill -9 and what followed.
type outage struct {
	name string
	p    func() *proc.Proc
	// restart starts the process again on its address and files and
	// returns once it is ready.
	restart func(context.Context) error

	at, restartAt time.Time
	ready         time.Duration // from the restart to ready
	allReady      time.Duration // from the kill to every process of the cluster ready
	until         time.Time     // the end of its window: the next kill or the end of the load
}

// natsOutage kills the NATS server that leads the WECHAT stream when the
// kill comes, so that every run makes the stream elect a new leader while
// pushes and sends are being published; nats-2 if the leader is unknown.
func natsOutage(ctx context.Context, c *cluster, js jetstream.JetStream) *outage {
	k := &outage{name: "nats (stream leader)"}
	var n *natsNode
	k.p = func() *proc.Proc {
		n = c.nats.nodes[1]
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if st, err := js.Stream(ictx, schemas.StreamName); err == nil {
			if info, err := st.Info(ictx); err == nil && info.Cluster != nil {
				for _, x := range c.nats.nodes {
					if x.name == info.Cluster.Leader {
						n = x
					}
				}
			}
		}
		k.name = n.name + " (stream leader)"
		return n.p
	}
	k.restart = func(ctx context.Context) error { return c.nats.restart(ctx, n) }
	return k
}

// runChaos runs the chaos experiment and prints its findings; it returns
// errBroken when an invariant does not hold.
func runChaos(ctx context.Context, co clusterOptions, o flags, out io.Writer) error {
	start := time.Now()
	c, err := startCluster(ctx, co)
	if err != nil {
		return err
	}
	defer c.stop()
	fmt.Fprintf(out, "cluster ready in %v (load average %s)\n\n", time.Since(start).Round(time.Millisecond), proc.LoadAvg())
	c.print(out)
	nc, js, err := c.stream()
	if err != nil {
		return err
	}
	defer nc.Close()

	outages := []*outage{
		{name: "gateway-1", p: func() *proc.Proc { return c.gateways[0].p }, restart: func(ctx context.Context) error { return c.restart(ctx, c.gateways[0]) }},
		{name: "processor-1", p: func() *proc.Proc { return c.processors[0].p }, restart: func(ctx context.Context) error { return c.restart(ctx, c.processors[0]) }},
		natsOutage(ctx, c, js),
	}
	fmt.Fprintf(out, "\nload: %.3g new users/s, each a popup push and, %v later, a send (WeChat latency %v); %v of load, then kill -9 of %s, each restarted after %v and followed by %v of load\n",
		o.rate, o.sendDelay, o.latency, o.phase, names(outages), o.down, o.phase)

	l := newLoad(ctx, c, "Chaos", o.rate, o.sendDelay)
	defer l.close()
	var smp sampler
	var watch sendingWatch
	bg, stopBG := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { smp.run(bg, c) })
	wg.Go(func() { watch.run(bg, l) })
	defer func() {
		stopBG()
		wg.Wait()
	}()
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	loadDone := make(chan struct{})
	loadStart := time.Now()
	go func() {
		defer close(loadDone)
		l.run(loadCtx)
	}()

	if err := sleep(ctx, o.phase); err != nil {
		return err
	}
	for i, k := range outages {
		k.at = time.Now()
		if i > 0 {
			outages[i-1].until = k.at
		}
		victim := k.p()
		if err := kill(victim); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s kill -9 %s (pid %d)\n", k.at.Format(time.TimeOnly), k.name, victim.Pid())
		if err := sleep(ctx, o.down); err != nil {
			return err
		}
		k.restartAt = time.Now()
		if err := k.restart(ctx); err != nil {
			return fmt.Errorf("restarting %s: %w", k.name, err)
		}
		k.ready = time.Since(k.restartAt)
		for !c.allReady(ctx) {
			if time.Since(k.at) > 2*time.Minute {
				return fmt.Errorf("the cluster was not ready 2m after the kill of %s", k.name)
			}
			if err := sleep(ctx, 100*time.Millisecond); err != nil {
				return err
			}
		}
		k.allReady = time.Since(k.at)
		fmt.Fprintf(out, "%s %s restarted, ready after %v; every process ready %v after the kill\n",
			time.Now().Format(time.TimeOnly), k.name, k.ready.Round(time.Millisecond), k.allReady.Round(time.Millisecond))
		if err := sleep(ctx, o.phase); err != nil {
			return err
		}
	}
	loadEnd := time.Now()
	outages[len(outages)-1].until = loadEnd
	stopLoad()
	<-loadDone
	fmt.Fprintf(out, "%s load stopped: %d users; waiting for every message to settle\n", time.Now().Format(time.TimeOnly), l.users.Load())

	msgs, settledAfter, notSettled, err := waitSettled(ctx, out, c, l, js, o)
	if err != nil {
		return err
	}
	stopBG()
	wg.Wait()

	f, err := gather(ctx, c, l, js, msgs)
	if err != nil {
		return err
	}
	f.notSettled, f.settledAfter = notSettled, settledAfter
	f.sending = watch.result()

	first, last := outages[0], outages[len(outages)-1]
	recovered := last.at.Add(last.allReady)
	warm := loadStart.Add(o.sendDelay + 2*time.Second)
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PHASE\tFROM\tTO\tPUSHES/S\tSENDS/S (accepted by WeChat)\tREQUEST TO SENT p50 / p99 / max")
	for _, ph := range []struct {
		name     string
		from, to time.Time
	}{{"before", warm, first.at}, {"during", first.at, recovered}, {"after", recovered, loadEnd}} {
		p, s := smp.rates(ph.from, ph.to)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\t%.1f\t%s\n", ph.name, ph.from.Format(time.TimeOnly), ph.to.Format(time.TimeOnly), p, s, sendLatency(msgs, ph.from, ph.to))
	}
	_ = tw.Flush()
	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KILLED\tDOWN\tREADY AFTER RESTART\tALL READY AFTER KILL\tPUSH ANSWERS NOT SUCCESS\tSEND REQUESTS FAILED\tLAST ERROR AFTER KILL\tEVERY MESSAGE CREATED UNTIL ALL READY DONE AFTER KILL\tPUSHES/S, SENDS/S UNTIL ALL READY")
	for _, k := range outages {
		pushErrs, lastPush := within(c.lb.failures(), k.at, k.until)
		sendErrs, lastSend := within(l.failures(), k.at, k.until)
		lastErr := "-"
		if pushErrs+sendErrs > 0 {
			if lastSend.After(lastPush) {
				lastPush = lastSend
			}
			lastErr = fmt.Sprintf("%.1fs", lastPush.Sub(k.at).Seconds())
		}
		p, s := smp.rates(k.at, k.at.Add(k.allReady))
		fmt.Fprintf(tw, "%s\t%v\t%.1fs\t%.1fs\t%d\t%d\t%s\t%s\t%.1f, %.1f\n", k.name, k.restartAt.Sub(k.at).Round(100*time.Millisecond),
			k.ready.Seconds(), k.allReady.Seconds(), pushErrs, sendErrs, lastErr, doneAfter(msgs, k.at, k.at.Add(k.allReady)), p, s)
	}
	_ = tw.Flush()
	fmt.Fprintln(out)
	f.print(out, co.dir)
	for _, m := range f.leftUnknown[:min(len(f.leftUnknown), 5)] {
		fmt.Fprintf(out, "  - left unknown: %s\n", describe(m, f.stream.delivery[m.ID]))
		printLogLines(out, co.dir, m.ID, m.WeChatMsgID)
	}
	if !f.ok() {
		return errBroken
	}
	return nil
}

// printLogLines prints the lines of the wxgate processes' logs in dir that
// name one of the ids, up to 12.
func printLogLines(out io.Writer, dir string, ids ...string) {
	logs, _ := filepath.Glob(filepath.Join(dir, "*-[0-9]*.log"))
	n := 0
	for _, path := range logs {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(b)) {
			for _, id := range ids {
				if id != "" && strings.Contains(line, id) && n < 12 {
					n++
					fmt.Fprintf(out, "      %s: %.400s\n", filepath.Base(path), strings.TrimSpace(line))
					break
				}
			}
		}
	}
}

// describe renders a message's history and the delivery publications the
// stream holds for it.
func describe(m audit.Message, published map[string]int) string {
	var h []string
	for _, e := range m.History {
		h = append(h, e.Status+" "+e.At.Format("15:04:05.000"))
	}
	var p []string
	for _, st := range slices.Sorted(maps.Keys(published)) {
		p = append(p, fmt.Sprintf("%s×%d", st, published[st]))
	}
	return fmt.Sprintf("message %s (%s) is %s; history: %s; on the stream: %s", m.ID, m.ToUser, m.Status, strings.Join(h, ", "), strings.Join(p, ", "))
}

func names(os []*outage) string {
	var n []string
	for _, o := range os {
		n = append(n, o.name)
	}
	return strings.Join(n, ", ")
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// within counts the times in [from, to) and returns the last of them.
func within(ts []time.Time, from, to time.Time) (int, time.Time) {
	n, last := 0, time.Time{}
	for _, t := range ts {
		if !t.Before(from) && t.Before(to) {
			n++
			if t.After(last) {
				last = t
			}
		}
	}
	return n, last
}

// doneAfter is how long after at the last message created before until
// reached its final status, or "not done" when one has not: how long the
// cluster took to finish the work it was given before it had recovered.
func doneAfter(msgs []audit.Message, at, until time.Time) string {
	var last time.Time
	for _, m := range msgs {
		if !m.CreatedAt.Before(until) {
			continue
		}
		if !audit.Settled(map[string]int{m.Status: 1}) {
			return "not done"
		}
		if n := len(m.History); n > 0 && m.History[n-1].At.After(last) {
			last = m.History[n-1].At
		}
	}
	return fmt.Sprintf("%.1fs", last.Sub(at).Seconds())
}

// sendLatency renders the 50th and 99th percentile and the maximum of the
// time from a send request to WeChat's acceptance (status sent), over the
// messages created in [from, to).
func sendLatency(msgs []audit.Message, from, to time.Time) string {
	var ds []time.Duration
	for _, m := range msgs {
		if m.CreatedAt.Before(from) || !m.CreatedAt.Before(to) {
			continue
		}
		for _, h := range m.History {
			if h.Status == processor.StatusSent {
				ds = append(ds, h.At.Sub(m.CreatedAt))
				break
			}
		}
	}
	if len(ds) == 0 {
		return "-"
	}
	slices.Sort(ds)
	q := func(f float64) string { return ds[int(f*float64(len(ds)-1))].Round(time.Millisecond).String() }
	return q(0.5) + " / " + q(0.99) + " / " + ds[len(ds)-1].Round(time.Millisecond).String()
}

// sendingWatch reads the audit every few seconds during the run and records
// the oldest message seen in `sending`.
type sendingWatch struct {
	mu     sync.Mutex
	oldest time.Duration
	over   map[string]bool // messages seen sending for longer than ackWait
	reads  int
}

func (w *sendingWatch) run(ctx context.Context, l *load) {
	for i := 0; ; i++ {
		if err := sleep(ctx, 5*time.Second); err != nil {
			return
		}
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		msgs, err := l.client(i).Messages(rctx)
		cancel()
		if err != nil {
			continue
		}
		now := time.Now()
		w.mu.Lock()
		w.reads++
		for _, m := range msgs {
			if m.Status != processor.StatusSending {
				continue
			}
			age := now.Sub(m.UpdatedAt)
			w.oldest = max(w.oldest, age)
			if age > ackWait {
				if w.over == nil {
					w.over = map[string]bool{}
				}
				w.over[m.ID] = true
			}
		}
		w.mu.Unlock()
	}
}

// sendingResult is what the watch saw.
type sendingResult struct {
	oldest time.Duration
	over   int
	reads  int
}

func (w *sendingWatch) result() sendingResult {
	w.mu.Lock()
	defer w.mu.Unlock()
	return sendingResult{oldest: w.oldest, over: len(w.over), reads: w.reads}
}

// waitSettled waits until every message is terminal or unknown, every push
// has been delivered, the processors' consumer has nothing left to fetch and
// nothing has changed for o.settle. It returns the audit then and how long
// after the load stopped that held; after o.recover, the last audit and
// the state in which it stayed.
func waitSettled(ctx context.Context, out io.Writer, c *cluster, l *load, js jetstream.JetStream, o flags) ([]audit.Message, time.Duration, string, error) {
	since := time.Now()
	var (
		last                   []audit.Message
		lastState              string
		lastChange, holdsSince time.Time
		nextProgress           = since.Add(10 * time.Second)
	)
	for i := 0; ; i++ {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		msgs, merr := l.client(i).Messages(rctx)
		cancel()
		if merr == nil {
			last = msgs
		}
		pending, ackPending, perr := processor.Backlog(ctx, js)
		idleCtx, cancel := context.WithTimeout(ctx, time.Millisecond)
		idle := c.wc.WaitPushes(idleCtx) == nil
		cancel()
		counts := audit.StatusCounts(last)
		st := c.wc.Stats().Apps[appID]
		state := fmt.Sprintf("%d messages (%s); WeChat accepted %d; pushes %d of %d delivered, idle %v; processors' consumer: %d to fetch, %d unacknowledged",
			len(last), audit.FormatStatuses(counts), st.Sends[0], st.PushesSucceeded, st.Events, idle, pending, ackPending)
		now := time.Now()
		if state != lastState {
			lastState, lastChange = state, now
		}
		holds := merr == nil && perr == nil && idle && pending == 0 && audit.Settled(counts) && len(last) >= l.requested()
		switch {
		case !holds:
			holdsSince = time.Time{}
		case holdsSince.IsZero():
			holdsSince = now
		}
		if holds && now.Sub(lastChange) >= o.settle {
			return last, holdsSince.Sub(since), "", nil
		}
		if now.After(nextProgress) {
			fmt.Fprintf(out, "  %3.0fs after the load: %s\n", now.Sub(since).Seconds(), state)
			nextProgress = nextProgress.Add(10 * time.Second)
		}
		if now.Sub(since) > o.recover && last != nil {
			return last, 0, state, nil
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return nil, 0, "", fmt.Errorf("not settled: %s", state)
		}
	}
}

// findings are the counts the invariants are checked on.
type findings struct {
	msgs     []audit.Message
	statuses map[string]int
	answers  map[int]int64
	cmp      audit.Comparison
	stream   *streamCounts
	events   []audit.Event

	successes                map[string]int // pushes answered success by key
	pushMissing, pushTwice   int            // of those: not in the stream, in it more than once
	streamTwice              int            // inbound keys stored more than once
	auditTwice, auditMissing int            // audit records of one event id twice; stream events with no audit record
	auditExtra               int            // audit records of no stream event
	acceptedPerUserMax       int            // most sends WeChat accepted for one user
	deliveryMissing          int            // delivered/failed messages whose publication is not on the stream
	deliveryMissingDetails   []struct{ id, text string }
	leftUnknown              []audit.Message // messages still unknown at the end
	rejectedAfterPopup       int             // messages rejected although their user's popup was stored before the send request
	deliveryTwice            int             // messages whose delivered/failed publication is on the stream more than once
	sendRequests, sendErrs   int
	sendsGaveUp              int
	pushStats                [4]int64 // events, delivered, given up, attempts
	sending                  sendingResult
	notSettled               string
	settledAfter             time.Duration
}

// gather reads the stream, the audit and the simulator and counts.
func gather(ctx context.Context, c *cluster, l *load, js jetstream.JetStream, msgs []audit.Message) (*findings, error) {
	f := &findings{msgs: msgs, statuses: audit.StatusCounts(msgs)}
	var err error
	if f.stream, err = readStream(ctx, js); err != nil {
		return nil, err
	}
	if f.events, err = l.client(0).Events(ctx); err != nil {
		if f.events, err = l.client(1).Events(ctx); err != nil {
			return nil, err
		}
	}
	got, err := c.wc.Messages(appID)
	if err != nil {
		return nil, err
	}
	st := c.wc.Stats().Apps[appID]
	f.answers = st.Sends
	f.pushStats = [4]int64{st.Events, st.PushesSucceeded, st.PushesFailed, st.PushAttempts}
	f.cmp = audit.Compare(msgs, got, st.Sends[0])

	f.successes = c.lb.successes()
	for k := range f.successes {
		switch n := f.stream.inbound[k]; {
		case n == 0:
			f.pushMissing++
		case n > 1:
			f.pushTwice++
		}
	}
	for _, n := range f.stream.inbound {
		if n > 1 {
			f.streamTwice++
		}
	}
	seen := map[string]int{}
	for _, e := range f.events {
		seen[e.ID]++
		if f.stream.inboundIDs[e.ID] == 0 {
			f.auditExtra++
		}
	}
	for id := range f.stream.inboundIDs {
		if seen[id] == 0 {
			f.auditMissing++
		}
	}
	for _, n := range seen {
		if n > 1 {
			f.auditTwice++
		}
	}
	perUser := map[string]int{}
	for _, g := range got {
		perUser[g.ToUser]++
		f.acceptedPerUserMax = max(f.acceptedPerUserMax, perUser[g.ToUser])
	}
	for _, m := range msgs {
		if m.Status == processor.StatusDelivered || m.Status == processor.StatusFailed {
			if f.stream.delivery[m.ID][m.Status] == 0 {
				f.deliveryMissing++
				f.deliveryMissingDetails = append(f.deliveryMissingDetails, struct{ id, text string }{m.ID, describe(m, f.stream.delivery[m.ID])})
			}
		}
		if m.Status == processor.StatusUnknown {
			f.leftUnknown = append(f.leftUnknown, m)
		}
		if m.Status == processor.StatusRejected {
			if at, ok := c.lb.succeededAt(m.ToUser + "/" + popupEvent); ok && at.Before(m.CreatedAt) {
				f.rejectedAfterPopup++
			}
		}
	}
	for _, byStatus := range f.stream.delivery {
		if byStatus[processor.StatusDelivered]+byStatus[processor.StatusFailed] > 1 {
			f.deliveryTwice++
		}
	}
	l.mu.Lock()
	f.sendRequests, f.sendErrs, f.sendsGaveUp = l.sent, len(l.failed), l.gaveUp
	l.mu.Unlock()
	return f, nil
}

// invariant is one checked property and the counts it rests on.
type invariant struct {
	name   string
	ok     bool
	counts string
}

func (f *findings) invariants() []invariant {
	inbound := 0
	for _, n := range f.stream.inbound {
		inbound += n
	}
	delivered := f.statuses[processor.StatusDelivered] + f.statuses[processor.StatusFailed]
	return []invariant{
		{"every push answered success is in the stream exactly once", f.pushMissing == 0 && f.pushTwice == 0 && f.streamTwice == 0,
			fmt.Sprintf("%d events answered success; %d inbound events in the stream; missing %d, stored twice %d", len(f.successes), inbound, f.pushMissing, f.pushTwice+f.streamTwice)},
		{"every event is applied exactly once (audit = stream)", f.auditMissing == 0 && f.auditExtra == 0 && f.auditTwice == 0 && len(f.events) == len(f.stream.inboundIDs),
			fmt.Sprintf("audit %d events, stream %d; in the stream only %d, in the audit only %d, audited twice %d", len(f.events), len(f.stream.inboundIDs), f.auditMissing, f.auditExtra, f.auditTwice)},
		{"no grant used twice", f.answers[43101] == 0 && f.acceptedPerUserMax <= 1,
			fmt.Sprintf("one grant per user; most sends WeChat accepted for one user %d; WeChat answered 43101 (no consent) %d times", f.acceptedPerUserMax, f.answers[43101])},
		{"no message sent twice to WeChat, no audit contradicts WeChat", f.cmp.Twice == 0 && len(f.cmp.Contradictions) == 0,
			fmt.Sprintf("messages by copies WeChat received %s; received twice %d; contradictions %d", f.cmp.FormatCopies(), f.cmp.Twice, len(f.cmp.Contradictions))},
		{"no message stuck in sending longer than the ack wait", f.sending.over == 0 && f.statuses[processor.StatusSending] == 0 && f.notSettled == "",
			fmt.Sprintf("oldest sending seen %v in %d reads (ack wait %v); over it %d; sending at the end %d", f.sending.oldest.Round(time.Second), f.sending.reads, ackWait, f.sending.over, f.statuses[processor.StatusSending])},
		{"every delivered/failed published once per message", f.deliveryMissing == 0 && f.deliveryTwice == 0,
			fmt.Sprintf("%d messages delivered or failed; publication missing %d, published twice %d", delivered, f.deliveryMissing, f.deliveryTwice)},
	}
}

func (f *findings) ok() bool {
	for _, inv := range f.invariants() {
		if !inv.ok {
			return false
		}
	}
	return true
}

func (f *findings) print(out io.Writer, dir string) {
	fmt.Fprintf(out, "wxgate's audit: %d messages: %s\n", len(f.msgs), audit.FormatStatuses(f.statuses))
	fmt.Fprintf(out, "WeChat: accepted %d sends; answers by errcode: %s\n", f.cmp.Accepted, audit.FormatAnswers(f.answers))
	fmt.Fprintf(out, "rejected although the user's popup was stored in the stream before the send request: %d\n", f.rejectedAfterPopup)
	fmt.Fprintf(out, "send requests: %d answered 202, %d failed tries made again, %d given up\n", f.sendRequests, f.sendErrs, f.sendsGaveUp)
	fmt.Fprintf(out, "pushes: %d events, %d delivered, %d given up, %d HTTP requests\n", f.pushStats[0], f.pushStats[1], f.pushStats[2], f.pushStats[3])
	fmt.Fprintf(out, "stream: %d messages; unknown: %d went through it, %d settled by their sent event, %d left (%d of them accepted by WeChat)\n",
		f.stream.messages, f.cmp.WentUnknown, f.cmp.SettledUnknown, f.cmp.LeftUnknown, f.cmp.LeftUnknownAccepted)
	if f.notSettled != "" {
		fmt.Fprintf(out, "NOT SETTLED: %s\n", f.notSettled)
	} else {
		fmt.Fprintf(out, "settled %v after the load stopped\n", f.settledAfter.Round(100*time.Millisecond))
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INVARIANT\tHOLDS\tCOUNTS")
	for _, inv := range f.invariants() {
		holds := "yes"
		if !inv.ok {
			holds = "NO"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", inv.name, holds, inv.counts)
	}
	_ = tw.Flush()
	for _, c := range f.cmp.Contradictions[:min(len(f.cmp.Contradictions), 10)] {
		fmt.Fprintf(out, "  - %s\n", c)
	}
	for _, d := range f.deliveryMissingDetails[:min(len(f.deliveryMissingDetails), 10)] {
		fmt.Fprintf(out, "  - no delivery publication of its status: %s\n", d.text)
		printLogLines(out, dir, d.id)
	}
	if f.pushMissing > 0 {
		var missing []string
		for _, k := range slices.Sorted(maps.Keys(f.successes)) {
			if f.stream.inbound[k] == 0 && len(missing) < 5 {
				missing = append(missing, k)
			}
		}
		fmt.Fprintf(out, "  answered success, not in the stream: %s\n", strings.Join(missing, ", "))
	}
}
