package processor_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxgate/wxgate/internal/broker"
	"github.com/wxgate/wxgate/internal/broker/natstest"
	"github.com/wxgate/wxgate/internal/checkfor"
	"github.com/wxgate/wxgate/internal/sim"
	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
)

// instance is one more processor of the fixture's cluster, with a NATS
// connection of its own, as another process would have.
type instance struct {
	proc *processor.Processor
	nc   *nats.Conn
	stop context.CancelFunc
	done chan error
}

// startInstance runs another processor against the fixture's stream and store.
func (f *fixture) startInstance() *instance {
	f.t.Helper()
	nc, js := f.nats.Connect()
	p, err := processor.New(f.st, js, broker.NewPublisher(js, 5*time.Second), slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry(), f.cfg)
	if err != nil {
		f.t.Fatalf("processor.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{proc: p, nc: nc, stop: cancel, done: make(chan error, 1)}
	go func() { in.done <- p.Run(ctx) }()
	f.t.Cleanup(in.halt)
	return in
}

// halt stops the instance gracefully, once.
func (in *instance) halt() {
	if in.stop == nil {
		return
	}
	in.stop()
	<-in.done
	in.stop = nil
}

// kill cuts the instance off NATS without any goodbye, as kill -9 would: it
// neither unpins its partitions nor removes its member key.
func (in *instance) kill() {
	in.nc.Close()
}

// spread waits until procs fetch every partition between them, each partition
// once, none more than twice its even share, and returns how many each
// fetches. Processors that have just started or lost one of theirs agree on
// the assignment within a few renewals of their member keys; until then one
// may fetch more than its share.
func spread(t *testing.T, limit time.Duration, procs ...*processor.Processor) []int {
	t.Helper()
	even := float64(schemas.Partitions) / float64(len(procs))
	var counts []int
	checkfor.Eventually(t, limit, 50*time.Millisecond, func() error {
		counts = counts[:0]
		var all []int
		for _, p := range procs {
			parts := p.Partitions()
			counts = append(counts, len(parts))
			all = append(all, parts...)
		}
		slices.Sort(all)
		if len(all) != schemas.Partitions || len(slices.Compact(all)) != schemas.Partitions {
			return fmt.Errorf("partitions fetched: %v (by processor %v), want each of %d once", all, counts, schemas.Partitions)
		}
		for i, n := range counts {
			if float64(n) > 2*even {
				return fmt.Errorf("processor %d fetches %d partitions, more than twice its even share %.1f", i, n, even)
			}
		}
		return nil
	})
	return counts
}

// TestPartitionsSpreadAndMoveToSurvivors: three processors share the
// partitions evenly; when one is killed, the two others take its partitions
// and its users' events are applied, within 30 seconds.
func TestPartitionsSpreadAndMoveToSurvivors(t *testing.T) {
	f := newFixture(t)
	b, c := f.startInstance(), f.startInstance()
	counts := spread(t, 30*time.Second, f.proc, b.proc, c.proc)
	t.Logf("3 processors fetch %v partitions", counts)

	users := func(prefix string, n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("%s%03d_xxxxxxxxxxxxxxxxxxxx", prefix, i))
		}
		return out
	}
	for _, u := range users("oBefore", 64) {
		f.publish(popup(u, f.tick(), tplOnce, "accept"))
	}
	f.drained()

	killed := time.Now()
	c.kill()
	counts = spread(t, 30*time.Second, f.proc, b.proc)
	moved := time.Since(killed)
	after := users("oAfter", 64)
	for _, u := range after {
		f.publish(popup(u, f.tick(), tplOnce, "accept"))
	}
	checkfor.Eventually(t, 30*time.Second-time.Since(killed), waitEvery, func() error {
		return natstest.Drained(f.js)
	})
	applied := time.Since(killed)
	for _, u := range after {
		if got := f.consent(u, tplOnce); got == nil || got.Grants != 1 {
			t.Fatalf("consent of %s after the kill = %+v, want 1 grant", u, got)
		}
	}
	t.Logf("after the kill: 2 processors fetch %v partitions %v later; every partition's events applied %v after the kill",
		counts, moved.Round(100*time.Millisecond), applied.Round(100*time.Millisecond))
}

// TestOneUserIsSentToByOneProcessorAtATime: three processors, then four, then
// three again, send three messages to each of 24 users while WeChat holds
// every send for 40 ms and answers a concurrent one to the same user with
// 43108. Every user's messages go through one processor at a time, so WeChat
// never sees two at once, rebalancing included.
func TestOneUserIsSentToByOneProcessorAtATime(t *testing.T) {
	var s *sim.Sim
	f := newFixture(t, withWeChat(&s))
	b, c := f.startInstance(), f.startInstance()
	spread(t, 30*time.Second, f.proc, b.proc, c.proc)

	const users, perUser = 24, 3
	openID := func(i int) string { return fmt.Sprintf("oOneAtATime%02d_xxxxxxxxxxxxxxx", i) }
	for i := range users {
		for range perUser {
			if err := s.Subscribe(appID, openID(i), sim.ActionAccept, tplOnce); err != nil {
				t.Fatal(err)
			}
			f.publish(popup(openID(i), f.tick(), tplOnce, "accept"))
		}
	}
	f.drained()
	if err := s.SetFaults(sim.Faults{LatencyMS: 40}); err != nil {
		t.Fatal(err)
	}

	procs := []*processor.Processor{f.proc, b.proc, c.proc}
	var wg sync.WaitGroup
	ids := make(chan string, users*perUser)
	for round := range perUser {
		for i := range users {
			wg.Go(func() {
				req := &schemas.SendRequest{ToUser: openID(i), TemplateID: tplOnce, Data: map[string]string{"thing1": "咖啡"}}
				m, err := procs[(i+round)%len(procs)].RequestSend(context.Background(), appID, req, fmt.Sprintf("k-%d-%d", i, round))
				if err != nil && !errors.Is(err, processor.ErrDuplicateRequest) {
					t.Errorf("RequestSend: %v", err)
					return
				}
				ids <- m.ID
			})
		}
		if round == 0 {
			// A fourth processor joins while the first round is sent: partitions
			// move to it under load.
			f.startInstance()
		}
		if round == 1 {
			// And one leaves.
			b.halt()
		}
	}
	wg.Wait()
	close(ids)
	for id := range ids {
		if m := f.settled(id); m.Status != processor.StatusSent {
			t.Errorf("message %s is %s (%s), want sent", id, m.Status, m.Reason)
		}
	}
	st := s.Stats()
	if st.Sends[43108] != 0 || st.Sends[0] != users*perUser {
		t.Errorf("WeChat answered %v, want %d accepted sends and no 43108 (concurrent sends to one user)", st.Sends, users*perUser)
	}
}
