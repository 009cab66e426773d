package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wxgate/wxgate/bench/internal/audit"
	"github.com/wxgate/wxgate/internal/broker"
	"github.com/wxgate/wxgate/internal/sim"
	"github.com/wxgate/wxgate/processor"
)

const (
	// pollEvery is how often the audit, the consumer and the simulator are read.
	pollEvery = 250 * time.Millisecond
	// progressEvery is how often a waiting run prints where it is.
	progressEvery = 10 * time.Second
)

// Log messages of the restarted serve that tell how it recovered.
const (
	logUnknown    = "send outcome unknown; not resending"
	logKept       = "outcome kept until its message is known"
	logSettled    = "sent event settled a message whose send outcome was unknown"
	logDeadLetter = "dead letter"
)

// runOnce is one run: grants, sends, the kill at killAt of the sends
// accepted, the restart, and the comparison.
func runOnce(ctx context.Context, o flags, killAt float64, dir string, out io.Writer) (*result, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	// The simulator's address is needed for api_base before wxgate starts, and
	// wxgate's for the simulator's push URL.
	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	apiBase := "http://" + simLn.Addr().String()
	cfgPath := filepath.Join(dir, "wxgate.yaml")
	if err := writeConfig(cfgPath, dir, "127.0.0.1:0", apiBase, o.workers); err != nil {
		simLn.Close()
		return nil, err
	}
	first, err := startServe(ctx, o.bin, cfgPath, dir, "wxgate-1")
	if err != nil {
		simLn.Close()
		return nil, err
	}
	defer first.p.Stop()
	fmt.Fprintf(out, "wxgate serve: %s\n", first.describe())
	wc, err := startWeChat(simLn, "http://"+first.listen+"/wechat/"+appID, o.latency)
	if err != nil {
		simLn.Close()
		return nil, err
	}
	defer wc.close()
	api := newAdminAPI(first.listen, o.c)
	defer api.Close()

	for i := range o.n {
		if err := wc.sim.Subscribe(appID, openID(i), sim.ActionAccept, templateID); err != nil {
			return nil, err
		}
	}
	if err := waitGrants(ctx, api, o); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "%d users hold one grant each in the ledger\n", o.n)

	// The send requests, and the kill once WeChat has accepted target of them.
	r := &result{killAt: killAt, n: o.n}
	target := int64(max(1, int(math.Ceil(killAt*float64(o.n)))))
	ids := make([]string, o.n)
	requested := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(requested)
		// A request that fails with the kill is made again after the restart.
		_, _ = forEach(o.n, o.c, func(i int) error {
			id, err := api.Send(ctx, openID(i), templateID, idempotencyKey(i), sendData)
			ids[i] = id
			return err
		})
	}()
	for {
		if a := wc.accepted(); a >= target {
			r.acceptedAtKill, r.inFlightAtKill = int(a), int(wc.inFlight.Load())
			break
		}
		if first.p.Exited() {
			return nil, first.p.Failed("exited before the kill")
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("WeChat accepted %d sends, not %d, within -timeout", wc.accepted(), target)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := first.kill(); err != nil {
		return nil, err
	}
	r.killAfter = time.Since(start)
	<-requested
	api.Close()

	// The restart: same data_dir, same configuration, the callback address
	// pinned to the one bound the first time.
	if err := writeConfig(cfgPath, dir, first.listen, apiBase, o.workers); err != nil {
		return nil, err
	}
	restartAt := time.Now()
	second, err := startServe(ctx, o.bin, cfgPath, dir, "wxgate-2")
	if err != nil {
		return nil, err
	}
	defer second.p.Stop()
	r.ready = time.Since(restartAt)
	fmt.Fprintf(out, "killed %v after the first send request; restarted: %s\n", r.killAfter.Round(time.Millisecond), second.describe())
	api2 := newAdminAPI(second.listen, o.c)
	defer api2.Close()
	var lost []int
	for i, id := range ids {
		if id == "" {
			lost = append(lost, i)
		}
	}
	r.requestsRetried = len(lost)
	if failed, err := forEach(len(lost), o.c, func(j int) error {
		i := lost[j]
		id, err := api2.Send(ctx, openID(i), templateID, idempotencyKey(i), sendData)
		ids[i] = id
		return err
	}); failed > 0 {
		return nil, fmt.Errorf("%d send requests failed again after the restart: %w", failed, err)
	}

	msgs, recovered, err := waitRecovered(ctx, out, api2, wc, second, o, restartAt)
	var stuck *notRecovered
	switch {
	case errors.As(err, &stuck):
		// Reported with the rest: a message that never settles is a finding.
		r.notRecovered = stuck.state
	case err != nil:
		return nil, fmt.Errorf("%w (logs: %s, %s)", err, first.p.LogPath, second.p.LogPath)
	default:
		r.recovered = recovered.Sub(restartAt)
	}
	got, err := wc.sim.Messages(appID)
	if err != nil {
		return nil, err
	}
	r.tally(msgs, got, wc.sim.Stats().Apps[appID])
	if r.logs, err = logCounts(second.p.LogPath, logUnknown, logKept, logSettled, logDeadLetter); err != nil {
		return nil, err
	}
	r.errorLines = errorLines(second.p.LogPath, 5)
	r.logPaths = [2]string{first.p.LogPath, second.p.LogPath}
	return r, nil
}

// waitGrants waits until the ledger shows one grant for every user.
func waitGrants(ctx context.Context, api *audit.Client, o flags) error {
	for {
		short, err := forEach(o.n, o.c, func(i int) error {
			g, err := api.Grants(ctx, openID(i), templateID)
			if err == nil && g != 1 {
				return fmt.Errorf("user %s has %d grants", openID(i), g)
			}
			return err
		})
		if short == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d users without their grant in the ledger within -timeout: %w", short, err)
		case <-time.After(pollEvery):
		}
	}
}

// notRecovered is returned by waitRecovered, with the last audit read, when
// the messages did not all settle within -recover.
type notRecovered struct{ state string }

func (n *notRecovered) Error() string { return "not recovered: " + n.state }

// waitRecovered waits until every message is terminal or unknown, every push
// has been delivered, the processor's consumer has nothing left to fetch, and
// nothing has changed for o.settle. It returns the audit then and when those
// conditions first held; after o.recover, the last audit read and a
// *notRecovered.
func waitRecovered(ctx context.Context, out io.Writer, api *audit.Client, wc *wechat, s *serve, o flags, since time.Time) ([]audit.Message, time.Time, error) {
	nc, js, err := broker.Connect(s.natsURL, "wxgate-crash", slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, time.Time{}, err
	}
	defer nc.Close()
	var (
		holdsSince, lastChange time.Time
		lastState              string
		last                   []audit.Message
		nextProgress           = since.Add(progressEvery)
		giveUp                 = since.Add(o.recover)
	)
	for {
		msgs, merr := api.Messages(ctx)
		if merr == nil {
			last = msgs
		}
		pending, perr := consumerPending(ctx, js)
		idle := wc.pushesIdle()
		counts := audit.StatusCounts(msgs)
		stats := wc.sim.Stats().Apps[appID]
		state := fmt.Sprintf("%d messages (%s); WeChat accepted %d; pushes %d of %d delivered, idle %v; %d to fetch",
			len(msgs), audit.FormatStatuses(counts), stats.Sends[0], stats.PushesSucceeded, stats.Events, idle, pending)
		now := time.Now()
		if state != lastState {
			lastState, lastChange = state, now
		}
		holds := merr == nil && perr == nil && idle && pending == 0 && len(msgs) == o.n && audit.Settled(counts)
		switch {
		case !holds:
			holdsSince = time.Time{}
		case holdsSince.IsZero():
			holdsSince = now
		}
		if holds && now.Sub(lastChange) >= o.settle {
			return msgs, holdsSince, nil
		}
		if err := errors.Join(merr, perr); err != nil {
			state += "; " + err.Error()
		}
		if s.p.Exited() {
			return nil, time.Time{}, s.p.Failed("exited after the restart")
		}
		if now.After(nextProgress) {
			fmt.Fprintf(out, "  %3.0fs after the restart: %s\n", now.Sub(since).Seconds(), state)
			nextProgress = nextProgress.Add(progressEvery)
		}
		if now.After(giveUp) && last != nil {
			return last, time.Time{}, &notRecovered{state: state}
		}
		select {
		case <-ctx.Done():
			return nil, time.Time{}, fmt.Errorf("not recovered within -timeout: %s", state)
		case <-time.After(pollEvery):
		}
	}
}

// consumerPending is how many stream messages the processor's consumer has
// not fetched yet. Messages it holds back on purpose (an unknown send's event,
// which comes back after processor.unknown_after) are not counted.
func consumerPending(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	pending, _, err := processor.Backlog(ctx, js)
	return pending, err
}
