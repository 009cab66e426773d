package processor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wxgate/wxgate/schemas"
)

// Partitioned consumption, across processes.
//
// The work stream has schemas.Partitions partitions of users, and each
// partition one durable consumer whose priority policy pins it to one client:
// the server hands a partition's messages to one processor at a time, however
// many ask. That pin, JetStream's own, is what makes one user's changes
// apply one processor at a time, in stream order, across the cluster.
//
// Which processor asks for which partition is agreed through the KV bucket
// wxgate_processors: every processor keeps a key alive there, and partition p
// goes to the (p mod n)-th of the n live keys in order, so n processors hold
// 16/n partitions each, give or take one. A processor that joins takes its
// share from the others, which stop fetching those partitions, finish the
// messages they hold and unpin them, so the newcomer starts at once. A
// processor that dies stops renewing its key, which expires after memberTTL;
// the survivors then ask for its partitions, and the server moves each pin
// once its holder has not asked for pinnedTTL. The bucket only spreads the
// work: two processors that briefly disagree about it still cannot both
// receive a partition's messages.
const (
	// partitionGroup is the priority group every processor pulls with.
	partitionGroup = "processors"
	// membersBucket holds one key per live processor.
	membersBucket = "wxgate_processors"
	// memberTTL is how long a processor's key outlives its last renewal, and
	// heartbeatEvery how often it is renewed.
	memberTTL      = 6 * time.Second
	heartbeatEvery = 2 * time.Second
	// rebalanceEvery is how often a processor reads the members again.
	rebalanceEvery = time.Second
	// pinnedTTL is how long the server keeps a partition pinned to a client
	// that stopped asking for messages. A fetching client asks at least every
	// pullExpiry, so only a dead or stalled processor loses its pin this way.
	pinnedTTL  = 15 * time.Second
	pullExpiry = 5 * time.Second
)

// PartitionConsumer is the name of partition p's durable consumer.
func PartitionConsumer(p int) string {
	return fmt.Sprintf("%s-%02d", ConsumerName, p)
}

// partition is one partition while this process fetches it or hands it over.
type partition struct {
	n    int
	cons jetstream.Consumer
	it   jetstream.MessagesContext
	// held counts the partition's messages this process holds and has not
	// settled; a handover waits for it to reach zero.
	held atomic.Int64
	// fetched is closed when the fetch loop has ended.
	fetched chan struct{}
}

// heldMsg is a message of a partition, counted in its partition's held until
// it is settled (acknowledged, nakked or terminated) once.
type heldMsg struct {
	jetstream.Msg
	part *partition
	once sync.Once
}

func (m *heldMsg) release()   { m.once.Do(func() { m.part.held.Add(-1) }) }
func (m *heldMsg) Ack() error { defer m.release(); return m.Msg.Ack() }
func (m *heldMsg) DoubleAck(ctx context.Context) error {
	defer m.release()
	return m.Msg.DoubleAck(ctx)
}
func (m *heldMsg) Nak() error { defer m.release(); return m.Msg.Nak() }
func (m *heldMsg) NakWithDelay(d time.Duration) error {
	defer m.release()
	return m.Msg.NakWithDelay(d)
}
func (m *heldMsg) Term() error { defer m.release(); return m.Msg.Term() }
func (m *heldMsg) TermWithReason(r string) error {
	defer m.release()
	return m.Msg.TermWithReason(r)
}

// assign returns the partitions member owns among members (sorted): p goes to
// members[p mod n].
func assign(members []string, member string) []int {
	i := slices.Index(members, member)
	if i < 0 {
		return nil
	}
	var out []int
	for p := i; p < schemas.Partitions; p += len(members) {
		out = append(out, p)
	}
	return out
}

// newMemberID names this process in the members bucket: its host, its pid and
// a random suffix, so that a restarted process is a new member.
func newMemberID() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, host)
	return fmt.Sprintf("%s-%d-%s", clean, os.Getpid(), hex.EncodeToString(b[:]))
}

// fetcher runs this process's share of the partitions: it keeps its member
// key alive, fetches the partitions assigned to it into out, and hands over
// the ones assigned elsewhere.
type fetcher struct {
	p       *Processor
	stream  jetstream.Stream
	members jetstream.KeyValue
	id      string
	out     chan<- jetstream.Msg
	log     *slog.Logger

	mu    sync.Mutex
	parts map[int]*partition // fetching or handing over
	wg    sync.WaitGroup     // fetch loops and handovers
}

// declarePartitions creates or updates the partition consumers and the members
// bucket.
func (p *Processor) declarePartitions(ctx context.Context) (jetstream.Stream, jetstream.KeyValue, error) {
	stream, err := p.js.Stream(ctx, schemas.WorkStreamName)
	if err != nil {
		return nil, nil, fmt.Errorf("processor: stream %s: %w", schemas.WorkStreamName, err)
	}
	for n := range schemas.Partitions {
		_, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:        PartitionConsumer(n),
			Description:    fmt.Sprintf("wxgate processors: partition %d of the users", n),
			FilterSubject:  schemas.PartitionFilter(n),
			AckPolicy:      jetstream.AckExplicitPolicy,
			AckWait:        p.cfg.AckWait,
			MaxDeliver:     p.cfg.MaxDeliver,
			MaxAckPending:  p.partitionAckPending(),
			DeliverPolicy:  jetstream.DeliverAllPolicy,
			PriorityPolicy: jetstream.PriorityPolicyPinned,
			PriorityGroups: []string{partitionGroup},
			PinnedTTL:      pinnedTTL,
			Replicas:       p.cfg.Replicas,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("processor: consumer %s: %w", PartitionConsumer(n), err)
		}
	}
	// Versions before the work stream read WECHAT through one consumer of
	// this name; left there, it would only pile up a backlog nobody reads.
	if err := p.js.DeleteConsumer(ctx, schemas.StreamName, ConsumerName); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		p.log.Warn("removing the consumer of earlier versions from "+schemas.StreamName, "consumer", ConsumerName, "err", err)
	}
	kv, err := p.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      membersBucket,
		Description: "Live wxgate processors, for sharing the partitions of the work stream",
		TTL:         memberTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    max(p.cfg.Replicas, 1),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("processor: bucket %s: %w", membersBucket, err)
	}
	return stream, kv, nil
}

// minPartitionAckPending bounds from below the messages one partition may have
// handed out and not settled.
const minPartitionAckPending = 32

// partitionAckPending is how many messages one partition may have handed out
// and not settled: the processors' MaxAckPending shared among the partitions.
func (p *Processor) partitionAckPending() int {
	return max(p.cfg.MaxAckPending/schemas.Partitions, minPartitionAckPending)
}

// run fetches until ctx ends, then stops fetching, waits for the fetch loops,
// and closes out. Handing the held messages back is the lanes' work; release
// does what is left once they have.
func (f *fetcher) run(ctx context.Context) {
	defer close(f.out)
	t := time.NewTicker(rebalanceEvery)
	defer t.Stop()
	var beat time.Time
	for {
		if time.Since(beat) >= heartbeatEvery {
			if _, err := f.members.Put(ctx, f.id, []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
				if ctx.Err() == nil {
					f.log.Warn("renewing this processor's member key", "member", f.id, "err", err)
				}
			} else {
				beat = time.Now()
			}
		}
		f.rebalance(ctx)
		select {
		case <-ctx.Done():
			f.mu.Lock()
			for _, part := range f.parts {
				if part.it != nil {
					part.it.Drain()
				}
			}
			f.mu.Unlock()
			f.wg.Wait()
			return
		case <-t.C:
		}
	}
}

// rebalance reads the live members and starts or hands over partitions to match.
func (f *fetcher) rebalance(ctx context.Context) {
	lister, err := f.members.ListKeys(ctx)
	if err != nil {
		if ctx.Err() == nil {
			f.log.Warn("reading the live processors", "err", err)
		}
		return
	}
	var members []string
	for k := range lister.Keys() {
		members = append(members, k)
	}
	if !slices.Contains(members, f.id) {
		// Not renewed yet (start-up, or a lost heartbeat): hold on to what this
		// process has rather than dropping everything.
		return
	}
	slices.Sort(members)
	want := assign(members, f.id)
	f.mu.Lock()
	defer f.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	for n, part := range f.parts {
		if !slices.Contains(want, n) && part.it != nil {
			f.handOver(part)
		}
	}
	for _, n := range want {
		if _, ok := f.parts[n]; ok {
			continue
		}
		if err := f.start(ctx, n); err != nil {
			f.log.Warn("fetching a partition", "partition", n, "err", err)
		}
	}
	f.p.metrics.partitions.Set(float64(len(want)))
}

// start begins fetching partition n. f.mu is held.
func (f *fetcher) start(ctx context.Context, n int) error {
	cons, err := f.stream.Consumer(ctx, PartitionConsumer(n))
	if err != nil {
		return err
	}
	batch := min(f.p.partitionAckPending(), maxBatch)
	it, err := cons.Messages(
		jetstream.PullPriorityGroup(partitionGroup),
		jetstream.PullMaxMessages(batch),
		jetstream.PullExpiry(pullExpiry),
	)
	if err != nil {
		return err
	}
	part := &partition{n: n, cons: cons, it: it, fetched: make(chan struct{})}
	f.parts[n] = part
	f.log.Info("fetching partition", "partition", n, "member", f.id)
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer close(part.fetched)
		for {
			msg, err := it.Next()
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			if err != nil {
				f.log.Warn("fetching", "consumer", PartitionConsumer(n), "err", err)
				continue
			}
			part.held.Add(1)
			f.out <- &heldMsg{Msg: msg, part: part}
		}
	}()
	return nil
}

// handOver stops fetching part, waits until every message of it this process
// holds is settled, then unpins it so that its new owner gets it at once
// rather than after pinnedTTL. f.mu is held.
func (f *fetcher) handOver(part *partition) {
	it := part.it
	part.it = nil
	it.Drain()
	f.log.Info("handing over partition", "partition", part.n, "member", f.id)
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		<-part.fetched
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for part.held.Load() > 0 {
			<-t.C
		}
		f.unpin(part.n)
		f.mu.Lock()
		delete(f.parts, part.n)
		f.mu.Unlock()
	}()
}

// unpin releases partition n's pin.
func (f *fetcher) unpin(n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.stream.UnpinConsumer(ctx, PartitionConsumer(n), partitionGroup); err != nil {
		f.log.Debug("unpinning a partition; it moves after its pin expires", "partition", n, "err", err)
	}
}

// release, once the lanes have settled every message, unpins the partitions
// this process was fetching and removes its member key, so that the others
// take over at once.
func (f *fetcher) release() {
	f.mu.Lock()
	parts := make([]int, 0, len(f.parts))
	for n := range f.parts {
		parts = append(parts, n)
	}
	f.mu.Unlock()
	for _, n := range parts {
		f.unpin(n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.members.Delete(ctx, f.id); err != nil {
		f.log.Debug("removing this processor's member key; it expires", "member", f.id, "err", err)
	}
	f.p.metrics.partitions.Set(0)
}

// Partitions returns the partitions this processor fetches now.
func (p *Processor) Partitions() []int {
	f := p.fetching.Load()
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for n, part := range f.parts {
		if part.it != nil {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// Backlog sums, over the partition consumers, the messages not yet handed to
// a processor (pending) and those handed out and not yet settled (held).
func Backlog(ctx context.Context, js jetstream.JetStream) (pending, held uint64, err error) {
	for n := range schemas.Partitions {
		c, err := js.Consumer(ctx, schemas.WorkStreamName, PartitionConsumer(n))
		if err != nil {
			return 0, 0, err
		}
		ci, err := c.Info(ctx)
		if err != nil {
			return 0, 0, err
		}
		pending += ci.NumPending
		held += uint64(ci.NumAckPending)
	}
	return pending, held, nil
}
