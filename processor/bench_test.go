package processor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wxgate/wxgate/internal/broker"
	"github.com/wxgate/wxgate/internal/broker/natstest"
	"github.com/wxgate/wxgate/internal/checkfor"
	"github.com/wxgate/wxgate/internal/sim"
	"github.com/wxgate/wxgate/internal/store"
	"github.com/wxgate/wxgate/internal/wechat"
	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
)

// The benchmarks run against the same real dependencies as the tests: an
// embedded JetStream server and the embedded MongoDB-compatible store (FerretDB
// on SQLite files, or on PostgreSQL when WXGATE_BENCH_POSTGRESQL_URL names a
// database). Every rate is reported next to a baseline measured in the same
// run on the same store, because absolute figures on a shared machine say
// little. bench/store/README.md explains how to run them and records figures.
const (
	// envPostgreSQLURL switches the store to FerretDB's postgresql handler.
	envPostgreSQLURL = "WXGATE_BENCH_POSTGRESQL_URL"
	// envWorkers overrides processor.Config.Workers of every processor started here.
	envWorkers = "WXGATE_BENCH_WORKERS"
	// envCPUProfile, a path prefix, profiles the process's CPU during every
	// measured interval, one file per interval (see profileWindow).
	envCPUProfile = "WXGATE_BENCH_CPUPROFILE"
	// envPostgreSQLPID is the PostgreSQL server's process id (bench/store/postgres.sh
	// sets it): the CPU of that process and its children is reported too.
	envPostgreSQLPID = "WXGATE_BENCH_POSTGRESQL_PID"

	// smallSize and largeSize are the documents each of the consents, events
	// and messages collections holds before events are measured.
	smallSize = 1_000
	largeSize = 100_000
	// prefillBatch is how many documents one InsertMany of the prefill carries.
	prefillBatch = 1_000
	// eventsBatch is how many upserts, then events, BenchmarkEventsApplied
	// measures on one database before it turns to the other size.
	eventsBatch = 500

	// simLatency is WeChat's answer time the send benchmarks simulate.
	simLatency = 50 * time.Millisecond
	// pollEvery is how often a benchmark asks the stream whether a consumer is
	// done; it bounds the error of a measured interval.
	pollEvery = 5 * time.Millisecond
	// benchWait bounds every wait of a benchmark.
	benchWait = 5 * time.Minute
)

// TestMain closes the benchmark environment after every test and benchmark
// ran: it outlives one benchmark function (see benchEnvs).
func TestMain(m *testing.M) {
	code := m.Run()
	benchEnvs.close()
	os.Exit(code)
}

// benchEnvs holds this test binary's benchmark environment. Writing 100,000
// documents into each of three collections takes a while, and -count runs a
// benchmark function again with a new *testing.B whose cleanups run at its
// end, so the environment, and the prefilled databases in it, are kept here
// for the life of the process instead.
var benchEnvs envCache

type envCache struct {
	mu  sync.Mutex
	env *benchEnv
}

// get returns the process's environment, starting it on first use.
func (c *envCache) get(tb testing.TB) *benchEnv {
	tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.env == nil {
		e, err := newBenchEnv()
		if err != nil {
			tb.Fatal(err)
		}
		c.env = e
	}
	return c.env
}

func (c *envCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.env != nil {
		c.env.close()
		c.env = nil
	}
}

// benchEnv is one JetStream server and one embedded store shared by every
// benchmark of the process, with the databases prefilled for them.
type benchEnv struct {
	backend string // "sqlite" or "postgresql"
	workers int
	dir     string
	ns      *server.Server
	nc      *nats.Conn
	js      jetstream.JetStream
	pub     *broker.Publisher
	emb     *store.Embedded
	uri     string
	// guard is shared by every Store of the process, as in wxgate serve.
	guard *store.Guard
	// cmds counts the commands every Store opened here sends.
	cmds *cmdCounter
	// client is the official driver without the counter: prefill, raw
	// upserts, clean-up.
	client *mongo.Client
	// dbPrefix names this process's databases: a PostgreSQL cluster outlives it.
	dbPrefix string

	mu      sync.Mutex
	rounds  int
	sized   map[int]*sizedDB
	phases  map[string]time.Duration
	stores  []*store.Store
	dropped []string
}

// sizedDB is a database prefilled with size documents in each of the
// consents, events and messages collections.
type sizedDB struct {
	name string
	size int
	st   *store.Store
}

func newBenchEnv() (e *benchEnv, err error) {
	workers, err := benchWorkers()
	if err != nil {
		return nil, err
	}
	e = &benchEnv{workers: workers, guard: store.NewGuard(), cmds: newCmdCounter(), sized: map[int]*sizedDB{}, phases: map[string]time.Duration{},
		dbPrefix: "wxgate_bench_" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if e.dir, err = os.MkdirTemp("", "wxgate-processor-bench-"); err != nil {
		return nil, err
	}
	if e.ns, err = broker.StartEmbedded(broker.EmbeddedOptions{Listen: "127.0.0.1:0", StoreDir: filepath.Join(e.dir, "nats")}); err != nil {
		return nil, err
	}
	if e.nc, e.js, err = broker.Connect(e.ns.ClientURL(), "wxgate-bench", slog.New(slog.DiscardHandler)); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err = broker.EnsureStream(ctx, e.js, broker.StreamOptions{Replicas: 1, MaxAge: time.Hour}); err != nil {
		return nil, err
	}
	e.pub = broker.NewPublisher(e.js, 5*time.Second)
	if err = e.startStore(); err != nil {
		return nil, err
	}
	e.client, err = mongo.Connect(options.Client().ApplyURI(e.uri).SetTimeout(2 * time.Minute))
	if err != nil {
		return nil, err
	}
	return e, nil
}

// startStore starts the embedded store: SQLite files under the environment's
// directory, or FerretDB's postgresql handler when envPostgreSQLURL is set.
func (e *benchEnv) startStore() error {
	o := store.EmbeddedOptions{Listen: "127.0.0.1:0", Dir: filepath.Join(e.dir, "store")}
	e.backend = "sqlite"
	var err error
	if pg := os.Getenv(envPostgreSQLURL); pg != "" {
		o.PostgreSQLURL, e.backend = pg, "postgresql"
		if e.emb, err = store.StartEmbedded(o); err != nil {
			// The error may quote the URL, which carries a password.
			return fmt.Errorf("starting the embedded store on PostgreSQL (%s): %s", envPostgreSQLURL, strings.ReplaceAll(err.Error(), pg, "<url>"))
		}
	} else if e.emb, err = store.StartEmbedded(o); err != nil {
		return err
	}
	e.uri = e.emb.URI()
	return nil
}

func (e *benchEnv) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, st := range e.stores {
		_ = st.Close(ctx)
	}
	if e.client != nil {
		for _, db := range e.dropped {
			_ = e.client.Database(db).Drop(ctx)
		}
		for _, db := range e.sized {
			_ = e.client.Database(db.name).Drop(ctx)
		}
		_ = e.client.Disconnect(ctx)
	}
	if e.emb != nil {
		e.emb.Close()
	}
	if e.nc != nil {
		e.nc.Close()
	}
	if e.ns != nil {
		e.ns.Shutdown()
		e.ns.WaitForShutdown()
	}
	if e.dir != "" {
		_ = os.RemoveAll(e.dir)
	}
}

// benchWorkers is the Workers of the processors: WXGATE_BENCH_WORKERS or 8, the default.
func benchWorkers() (int, error) {
	v := os.Getenv(envWorkers)
	if v == "" {
		return 8, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1024 {
		return 0, fmt.Errorf("%s=%q: want a number from 1 to 1024", envWorkers, v)
	}
	return n, nil
}

// timePhase adds the time since start to the named unmeasured phase: where
// a benchmark's wall time goes besides its measurements.
func (e *benchEnv) timePhase(name string, start time.Time) {
	d := time.Since(start)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.phases[name] += d
}

// takePhases returns the phases' times since the last call and resets them.
func (e *benchEnv) takePhases() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(e.phases)) {
		parts = append(parts, fmt.Sprintf("%s %v", k, e.phases[k].Round(time.Millisecond)))
	}
	clear(e.phases)
	return strings.Join(parts, ", ")
}

func (e *benchEnv) round() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rounds++
	return e.rounds
}

// open opens a Store on database db as wxgate serve does (with the process's
// Guard), with its commands counted; it stays open for the life of the process.
func (e *benchEnv) open(tb testing.TB, db string) *store.Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := store.Open(ctx, e.uri, db, store.Options{Guard: e.guard, Embedded: e.emb, Monitor: e.cmds.monitor()})
	if err != nil {
		tb.Fatalf("store.Open: %v", err)
	}
	e.mu.Lock()
	e.stores = append(e.stores, st)
	e.mu.Unlock()
	return st
}

// sizedDB returns the database prefilled with size documents per collection,
// writing it on first use.
func (e *benchEnv) sizedDB(b *testing.B, size int) *sizedDB {
	b.Helper()
	e.mu.Lock()
	db := e.sized[size]
	e.mu.Unlock()
	if db != nil {
		return db
	}
	db = &sizedDB{name: fmt.Sprintf("%s_%d", e.dbPrefix, size), size: size}
	db.st = e.open(b, db.name)
	start := time.Now()
	if err := e.prefill(db.name, size); err != nil {
		b.Fatalf("prefilling %s: %v", db.name, err)
	}
	b.Logf("%s: prefilled %s with %d consents, %d events and %d messages in %v", e.backend, db.name, size, size, size, time.Since(start).Round(time.Millisecond))
	if e.backend == "postgresql" {
		start := time.Now()
		if err := analyzePostgreSQL(context.Background()); err != nil {
			b.Fatalf("VACUUM ANALYZE after the prefill: %v", err)
		}
		b.Logf("VACUUM ANALYZE after the prefill: %v", time.Since(start).Round(time.Millisecond))
	}
	e.mu.Lock()
	e.sized[size] = db
	e.mu.Unlock()
	return db
}

// prefill writes n consents, n inbound events and n sent messages of n other
// users into database db, prefillBatch documents per InsertMany.
func (e *benchEnv) prefill(db string, n int) error {
	ctx := context.Background()
	d := e.client.Database(db)
	at := time.Now().UTC().Truncate(time.Millisecond)
	ts := at.Unix()
	for start := 0; start < n; start += prefillBatch {
		k := min(prefillBatch, n-start)
		consents, events, messages := make([]any, k), make([]any, k), make([]any, k)
		for i := range k {
			u := fmt.Sprintf("oFill%0*d", 23, start+i) // 28 characters, as a real openid
			c := processor.NewConsent(appID, u, tplOnce, processor.KindOneTime)
			c.Apply(processor.ConsentChange{ID: "fill/" + u, AppID: appID, OpenID: u, TemplateID: tplOnce,
				Source: processor.SourcePush, Action: processor.ActionAccept, At: at, WeChatTime: at})
			c.Version = 1
			consents[i] = c
			ev, id, err := schemas.ParseEventWithID(appID, []byte(popup(u, ts, tplOnce, "accept")))
			if err != nil {
				return err
			}
			events[i] = processor.EventRecord{ID: id, AppID: appID, OpenID: u, Event: ev.Event, Subject: ev.Subject(), ReceivedAt: at, Data: *ev}
			m := &processor.Message{ID: fmt.Sprintf("mFill%07d", start+i), AppID: appID, ToUser: u, TemplateID: tplOnce,
				Data: map[string]string{"thing1": "Coffee"}, Status: processor.StatusQueued, CreatedAt: at, UpdatedAt: at, Version: 3,
				History: []processor.StatusChange{{Status: processor.StatusQueued, At: at, Detail: "send requested"}}}
			_ = m.Transition(processor.StatusSending, "consent checked", at)
			_ = m.Transition(processor.StatusSent, "WeChat accepted msgid 1", at)
			m.WeChatMsgID, m.Attempts, m.GrantHeld = strconv.Itoa(1_000_000+start+i), 1, true
			messages[i] = m
		}
		for coll, docs := range map[string][]any{"consents": consents, "events": events, "messages": messages} {
			if _, err := d.Collection(coll).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false)); err != nil {
				return fmt.Errorf("InsertMany into %s: %w", coll, err)
			}
		}
	}
	return nil
}

// deleteIDs removes the documents a measurement added, so that every
// measurement on a sized database starts at its size. Each must be there:
// counting the documents instead takes minutes on the embedded store.
func (e *benchEnv) deleteIDs(tb testing.TB, db, coll string, ids []string) {
	tb.Helper()
	defer e.timePhase("deleting what a measurement added", time.Now())
	c := e.client.Database(db).Collection(coll)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range e.workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ids) {
					return
				}
				res, err := c.DeleteOne(context.Background(), bson.M{"_id": ids[i]})
				if err == nil && res.DeletedCount != 1 {
					err = errors.New("not found")
				}
				if err != nil {
					tb.Errorf("deleting %s from %s: %v", ids[i], coll, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// profileWindow starts a CPU profile of the process when envCPUProfile is set
// and returns the func that stops it. Each window goes to its own file,
// PREFIX.NAME.SEQ.pprof, so that the intervals between measurements (setup,
// clean-up, a prefill) stay out; go tool pprof merges the files it is given.
// It cannot run with go test's -cpuprofile, which holds the profiler.
func (e *benchEnv) profileWindow(tb testing.TB, name string) func() {
	tb.Helper()
	prefix := os.Getenv(envCPUProfile)
	if prefix == "" {
		return func() {}
	}
	path := fmt.Sprintf("%s.%s.%d.pprof", prefix, name, e.round())
	f, err := os.Create(path)
	if err != nil {
		tb.Fatalf("%s: %v", envCPUProfile, err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		tb.Fatalf("%s: %v (it cannot run with -cpuprofile)", envCPUProfile, err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			tb.Errorf("%s: %v", envCPUProfile, err)
		}
	}
}

// benchInstance is one processor, running once started.
type benchInstance struct {
	proc *processor.Processor
	reg  *prometheus.Registry
	stop context.CancelFunc
	done chan error
}

// newInstance builds a processor on the environment's stream and on st.
func (e *benchEnv) newInstance(tb testing.TB, st processor.Store, sender processor.Sender) *benchInstance {
	tb.Helper()
	cfg := processor.Config{Workers: e.workers, Kinds: kinds{}, Sender: sender}
	reg := prometheus.NewRegistry()
	p, err := processor.New(st, e.js, e.pub, slog.New(slog.DiscardHandler), reg, cfg)
	if err != nil {
		tb.Fatalf("processor.New: %v", err)
	}
	return &benchInstance{proc: p, reg: reg}
}

// start runs the processor until halt.
func (in *benchInstance) start() *benchInstance {
	ctx, cancel := context.WithCancel(context.Background())
	in.stop, in.done = cancel, make(chan error, 1)
	go func() { in.done <- in.proc.Run(ctx) }()
	return in
}

// settled is how many stream messages the processor settled, by decision
// (ack, nak, dead_letter), from its wxgate_processor_messages_total.
func (in *benchInstance) settled(tb testing.TB) map[string]int {
	tb.Helper()
	mfs, err := in.reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]int{}
	for _, mf := range mfs {
		if mf.GetName() != "wxgate_processor_messages_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "decision" {
					out[l.GetValue()] += int(m.GetCounter().GetValue())
				}
			}
		}
	}
	return out
}

// halt stops the processor and waits until it settled what it held.
func (in *benchInstance) halt(tb testing.TB) {
	tb.Helper()
	in.stop()
	if err := <-in.done; err != nil {
		tb.Errorf("processor.Run = %v", err)
	}
}

// publishPopups puts one accepting popup event per user on the stream, as the
// gateway does, and returns the event ids and the stream sequence of the last one.
func (e *benchEnv) publishPopups(tb testing.TB, users []string) ([]string, uint64) {
	tb.Helper()
	defer e.timePhase("publishing events", time.Now())
	ts := time.Now().Unix()
	ids := make([]string, len(users))
	var last uint64
	for i, u := range users {
		id, seq := natstest.Push(tb, e.js, appID, popup(u, ts, tplOnce, "accept"))
		ids[i], last = id, max(last, seq)
	}
	return ids, last
}

// waitConsumer polls until the processors' durable consumer has acknowledged
// every message up to stream sequence last and holds nothing pending.
func (e *benchEnv) waitConsumer(tb testing.TB, last uint64) {
	tb.Helper()
	checkfor.Eventually(tb, benchWait, pollEvery, func() error { return natstest.Drained(e.js) })
}

// benchUsers returns n distinct openids.
func benchUsers(prefix string, round, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("o%s%d_%07d", prefix, round, i)
	}
	return out
}

// rawUpserts runs n single-document upserts into db's consents collection,
// each a new user's entry ($set of the fields the unique index covers and a
// few more, one round trip each), from as many concurrent clients as a
// processor has lanes. It returns their duration and the CPU used; the
// documents are deleted again afterwards.
func (e *benchEnv) rawUpserts(b *testing.B, db *sizedDB, n int) (time.Duration, cpuSample) {
	b.Helper()
	coll := e.client.Database(db.name).Collection("consents")
	us := benchUsers("Raw", e.round(), n)
	ids := make([]string, n)
	for i, u := range us {
		ids[i] = processor.ConsentKey(appID, u, tplOnce)
	}
	upsert := options.UpdateOne().SetUpsert(true)
	var next atomic.Int64
	var wg sync.WaitGroup
	stopProfile := e.profileWindow(b, "upserts_"+sizeLabel(db.size))
	cpu := sampleCPU()
	start := time.Now()
	for range e.workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				set := bson.M{"$set": bson.M{"appid": appID, "openid": us[i], "template_id": tplOnce, "kind": processor.KindOneTime,
					"status": processor.ConsentAccepted, "grants": 1, "push_accepts": 1, "updated_at": time.Now(), "version": 1}}
				if _, err := coll.UpdateOne(context.Background(), bson.M{"_id": ids[i]}, set, upsert); err != nil {
					b.Errorf("UpdateOne: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	cpu = sampleCPU().minus(cpu)
	stopProfile()
	if b.Failed() {
		b.FailNow()
	}
	e.deleteIDs(b, db.name, "consents", ids)
	return d, cpu
}

// applyEvents puts n accepting popups from new users on the stream, then
// times a processor on db from its start until it has applied and
// acknowledged all of them. It checks a sample of the ledger, deletes what
// the events added, and returns the duration, the store's commands and the
// calls timed by the wrapper.
func (e *benchEnv) applyEvents(b *testing.B, db *sizedDB, n int) (time.Duration, cmdCounts, *timedStore) {
	b.Helper()
	us := benchUsers("Ev", e.round(), n)
	eventIDs, last := e.publishPopups(b, us)
	ts := newTimedStore(db.st)
	in := e.newInstance(b, ts, nil)
	before := e.cmds.snapshot()
	stopProfile := e.profileWindow(b, "events_"+sizeLabel(db.size))
	cpu := sampleCPU()
	start := time.Now()
	in.start()
	e.waitConsumer(b, last)
	d := time.Since(start)
	ts.cpu = sampleCPU().minus(cpu)
	stopProfile()
	cmds := e.cmds.snapshot().minus(before)
	in.halt(b)
	consentIDs := make([]string, n)
	for i, u := range us {
		consentIDs[i] = processor.ConsentKey(appID, u, tplOnce)
		if i%max(1, n/20) != 0 {
			continue // a sample keeps the check cheap
		}
		var c processor.Consent
		err := e.client.Database(db.name).Collection("consents").FindOne(context.Background(), bson.M{"_id": consentIDs[i]}).Decode(&c)
		if err != nil || c.Grants != 1 {
			b.Fatalf("consent of %s = %+v (%v), want 1 grant", u, c, err)
		}
	}
	e.deleteIDs(b, db.name, "consents", consentIDs)
	e.deleteIDs(b, db.name, "events", eventIDs)
	return d, cmds, ts
}

// BenchmarkEventsApplied measures events applied per second from the stream
// into the store, each one a popup accept from a new user (its audit record
// in one InsertEvents per fetched batch, a consent read, the consent saved and
// its change published), on two databases of the same store: one holding
// smallSize, the other largeSize, documents in each of the consents, events
// and messages collections. Before each batch of events it measures the
// store's raw single-document upsert rate into the same collection of the
// same database. b.N events and b.N upserts run on each database, in batches
// of eventsBatch that alternate between the databases (and their order), so
// that every rate sees the same machine load. ns/op is meaningless here.
//
// It reports events/s and upserts/s at each size, ratio_100k_vs_1k (events/s
// at largeSize ÷ at smallSize, target at least 0.8), events_vs_upserts_1k and
// events_vs_upserts_100k (events/s ÷ upserts/s on the same database, target
// at least 0.7 on SQLite) and store_cmds/event: the commands the store
// received per event, counted by the driver's command monitor.
func BenchmarkEventsApplied(b *testing.B) {
	e := benchEnvs.get(b)
	dbs := []*sizedDB{e.sizedDB(b, smallSize), e.sizedDB(b, largeSize)}
	e.takePhases()
	b.ResetTimer()
	type totals struct {
		upserts, events time.Duration
		upsertCPU       cpuSample
		cmds            cmdCounts
		calls           *timedStore
	}
	t := make([]totals, len(dbs))
	for i := range t {
		t[i] = totals{cmds: cmdCounts{}, calls: newTimedStore(nil)}
	}
	for done, round := 0, 0; done < b.N; round++ {
		k := min(eventsBatch, b.N-done)
		for j := range dbs {
			i := j
			if round%2 == 1 {
				i = len(dbs) - 1 - j
			}
			d, cpu := e.rawUpserts(b, dbs[i], k)
			t[i].upserts += d
			t[i].upsertCPU.add(cpu)
			d, cmds, calls := e.applyEvents(b, dbs[i], k)
			t[i].events += d
			t[i].cmds.add(cmds)
			t[i].calls.stats.add(calls.stats)
			t[i].calls.cpu.add(calls.cpu)
		}
		done += k
	}
	var eventRates []float64
	for i, db := range dbs {
		label := sizeLabel(db.size)
		upserts := float64(b.N) / t[i].upserts.Seconds()
		events := float64(b.N) / t[i].events.Seconds()
		eventRates = append(eventRates, events)
		b.ReportMetric(upserts, "upserts/s_"+label)
		b.ReportMetric(events, "events/s_"+label)
		b.ReportMetric(events/upserts, "events_vs_upserts_"+label)
		b.Logf("%s, %d workers, %s documents per collection, %d events: %.0f upserts/s, %.0f events/s, ratio %.3f; store commands per event %.3f (%s); %s; %s; upserts: %s",
			e.backend, e.workers, label, b.N, upserts, events, events/upserts,
			t[i].cmds.per(b.N), t[i].cmds.describe(b.N), t[i].calls.summary(b.N, "event", t[i].events, e.workers), t[i].calls.cpu.describe(b.N, "event"), t[i].upsertCPU.describe(b.N, "upsert"))
	}
	b.Logf("outside the measurements: %s", e.takePhases())
	all := cmdCounts{}
	for i := range t {
		all.add(t[i].cmds)
	}
	b.ReportMetric(eventRates[1]/eventRates[0], "ratio_100k_vs_1k")
	b.ReportMetric(all.per(len(dbs)*b.N), "store_cmds/event")
	b.ReportMetric(0, "ns/op")
}

func sizeLabel(n int) string {
	if n%1000 == 0 {
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

// benchWeChat is the WeChat simulator the send benchmarks talk to.
type benchWeChat struct {
	sim  *sim.Sim
	base string
	apps []wechat.App
}

func startBenchWeChat(tb testing.TB) *benchWeChat {
	tb.Helper()
	s, base, err := sim.Start(sim.Config{
		Apps: []sim.AppConfig{{
			AppID: appID, Secret: "app-secret-for-tests", Token: "tok", EncodingAESKey: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
			Templates: []sim.Template{{ID: tplOnce, Title: "Order", Type: sim.TemplateOneTime, Content: "商品:{{thing1.DATA}}"}},
		}},
		NoSentEvents:      true,
		MaxMessagesPerApp: 1000,
	}, nil)
	if err != nil {
		tb.Fatalf("sim.Start: %v", err)
	}
	tb.Cleanup(s.Close)
	if err := s.SetFaults(sim.Faults{LatencyMS: int(simLatency / time.Millisecond)}); err != nil {
		tb.Fatal(err)
	}
	return &benchWeChat{sim: s, base: base, apps: []wechat.App{{AppID: appID, Secret: "app-secret-for-tests", APIBase: base}}}
}

// tokens returns a token manager of its own, as every processor instance has,
// with the app's token already fetched.
func (w *benchWeChat) tokens(tb testing.TB, js jetstream.JetStream) *wechat.Tokens {
	tb.Helper()
	t, err := wechat.NewTokens(context.Background(), js, w.apps, &http.Client{Timeout: 5 * time.Second}, slog.New(slog.DiscardHandler), wechat.TokenOptions{})
	if err != nil {
		tb.Fatalf("NewTokens: %v", err)
	}
	tb.Cleanup(t.Close)
	if _, err := t.Token(context.Background(), appID); err != nil {
		tb.Fatalf("Token: %v", err)
	}
	return t
}

// accept makes every user accept tplOnce once in WeChat.
func (w *benchWeChat) accept(tb testing.TB, users []string) {
	tb.Helper()
	for _, u := range users {
		if err := w.sim.Subscribe(appID, u, sim.ActionAccept, tplOnce); err != nil {
			tb.Fatalf("sim.Subscribe: %v", err)
		}
	}
}

// acceptedSends is how many subscribe/send calls the simulator accepted so far.
func (w *benchWeChat) acceptedSends() int64 { return w.sim.Stats().Sends[0] }

// ceiling sends n messages straight to the simulator's subscribe/send over
// HTTP, from lanes concurrent clients, each message to its own user.
func (w *benchWeChat) ceiling(b *testing.B, e *benchEnv, tokens *wechat.Tokens, lanes, n int) time.Duration {
	b.Helper()
	us := benchUsers("Ceil", e.round(), n)
	w.accept(b, us)
	bodies := make([][]byte, n)
	for i, u := range us {
		req := schemas.SendRequest{ToUser: u, TemplateID: tplOnce, Data: map[string]string{"thing1": "Coffee"}}
		body, err := req.WeChatBody()
		if err != nil {
			b.Fatal(err)
		}
		bodies[i] = body
	}
	token, err := tokens.Token(context.Background(), appID)
	if err != nil {
		b.Fatalf("Token: %v", err)
	}
	target := w.base + "/cgi-bin/message/subscribe/send?" + url.Values{"access_token": {token}}.Encode()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: lanes}}
	defer hc.CloseIdleConnections()
	before := w.acceptedSends()
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range lanes {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := postSend(hc, target, bodies[i]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	if got := w.acceptedSends() - before; got != int64(n) {
		b.Fatalf("the simulator accepted %d sends, want %d", got, n)
	}
	return d
}

// postSend makes one subscribe/send call and checks that WeChat accepted it.
func postSend(hc *http.Client, target string, body []byte) error {
	resp, err := hc.Post(target, "application/json", bytes.NewReader(body))
	if err != nil {
		// A *url.Error quotes the URL, and with it the access token.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("subscribe/send: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		Errcode int `json:"errcode"`
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&out)
	if err != nil || out.Errcode != 0 {
		return fmt.Errorf("subscribe/send: errcode %d (%v)", out.Errcode, err)
	}
	return nil
}

// freshStores opens a new, empty database with one Store per processor
// instance (each its own connection pool, all sharing the process's Guard),
// so that a send measurement does not see the documents of an earlier one.
func (e *benchEnv) freshStores(tb testing.TB, instances int) (string, []*store.Store) {
	tb.Helper()
	name := fmt.Sprintf("%s_sends_%d", e.dbPrefix, e.round())
	e.mu.Lock()
	e.dropped = append(e.dropped, name)
	e.mu.Unlock()
	sts := make([]*store.Store, instances)
	for i := range sts {
		sts[i] = e.open(tb, name)
	}
	return name, sts
}

// sends prepares n sends to distinct users who accepted in WeChat and in the
// ledger, with the requests stored and queued before any processor that sends
// runs, then times procs processor instances (each with its own Store, token
// manager and client) from their start until every message is sent and
// acknowledged.
func (w *benchWeChat) sends(b *testing.B, e *benchEnv, procs, n int) sendRun {
	b.Helper()
	ctx := context.Background()
	us := benchUsers("Send", e.round(), n)
	w.accept(b, us)
	_, sts := e.freshStores(b, procs)
	// The ledger learns of the accepts through the processor, as in production.
	setup := e.newInstance(b, sts[0], nil).start()
	_, last := e.publishPopups(b, us)
	e.waitConsumer(b, last)
	// Stopped before the requests are queued: a processor without a Sender
	// would take them and hand them back, and their second delivery reads the
	// message back from the store.
	setup.halt(b)
	requested := e.cmds.snapshot()
	ids := make([]string, n)
	for i, u := range us {
		req := &schemas.SendRequest{ToUser: u, TemplateID: tplOnce, Data: map[string]string{"thing1": "Coffee"}}
		m, err := setup.proc.RequestSend(ctx, appID, req, "")
		if err != nil {
			b.Fatalf("RequestSend: %v", err)
		}
		ids[i] = m.ID
	}
	requested = e.cmds.snapshot().minus(requested)
	stream, err := e.js.Stream(ctx, schemas.StreamName)
	if err != nil {
		b.Fatal(err)
	}
	lastSend, err := stream.GetLastMsgForSubject(ctx, schemas.SendSubject(appID))
	if err != nil {
		b.Fatal(err)
	}
	calls := newTimedStore(nil)
	ins := make([]*benchInstance, procs)
	for i := range ins {
		ins[i] = e.newInstance(b, calls.with(sts[i]), wechat.NewClient(w.apps, w.tokens(b, e.js), &http.Client{Timeout: 5 * time.Second}))
	}
	simBefore := w.sim.Stats().Sends
	before := e.cmds.snapshot()
	stopProfile := e.profileWindow(b, fmt.Sprintf("sends_%d", procs))
	cpu := sampleCPU()
	start := time.Now()
	for _, in := range ins {
		in.start()
	}
	e.waitConsumer(b, lastSend.Sequence)
	d := time.Since(start)
	calls.cpu = sampleCPU().minus(cpu)
	stopProfile()
	cmds := e.cmds.snapshot().minus(before)
	for _, in := range ins {
		in.halt(b)
	}
	after := w.sim.Stats().Sends
	for code, c := range after {
		if code != 0 && c != simBefore[code] {
			b.Logf("the simulator answered errcode %d %d times", code, c-simBefore[code])
		}
	}
	if got := after[0] - simBefore[0]; got != int64(n) {
		b.Errorf("the simulator accepted %d sends, want %d", got, n)
	}
	for _, id := range ids {
		m, err := sts[0].Message(ctx, appID, id)
		if err != nil || m.Status != processor.StatusSent {
			b.Fatalf("message %s after the run: %+v (%v), want sent", id, m, err)
		}
	}
	spread := make([]string, len(ins))
	for i, in := range ins {
		spread[i] = fmt.Sprint(in.settled(b))
	}
	return sendRun{d: d, cmds: cmds, requestCmds: requested, calls: calls, spread: strings.Join(spread, " ")}
}

// sendRun is what sends measured.
type sendRun struct {
	d time.Duration
	// cmds are the store's commands while the processors sent, requestCmds
	// those of the RequestSend calls that queued the messages before.
	cmds, requestCmds cmdCounts
	// calls are the Store calls timed by the wrapper.
	calls *timedStore
	// spread is the messages each instance settled, by decision.
	spread string
}

// BenchmarkSends measures sends per second end to end, from queued requests to
// messages sent, against the WeChat simulator answering after simLatency, with
// 1 and 4 processor instances sharing one stream and one store. Each is
// preceded by sim_ceiling_lanes_N, the simulator's own rate for direct HTTP
// calls from as many concurrent clients as the processors have lanes (Workers
// × instances); processors_N reports its ratio to that ceiling (targets: at
// least 0.8 for one instance on SQLite, 0.7 for four on PostgreSQL) and the
// store's commands per send.
func BenchmarkSends(b *testing.B) {
	e := benchEnvs.get(b)
	w := startBenchWeChat(b)
	tokens := w.tokens(b, e.js)
	for _, procs := range []int{1, 4} {
		lanes := procs * e.workers
		var ceiling float64
		b.Run(fmt.Sprintf("sim_ceiling_lanes_%d", lanes), func(b *testing.B) {
			d := w.ceiling(b, e, tokens, lanes, b.N)
			ceiling = float64(b.N) / d.Seconds()
			b.ReportMetric(ceiling, "sends/s")
			b.ReportMetric(0, "ns/op")
		})
		b.Run(fmt.Sprintf("processors_%d", procs), func(b *testing.B) {
			r := w.sends(b, e, procs, b.N)
			rate := float64(b.N) / r.d.Seconds()
			b.ReportMetric(rate, "sends/s")
			if ceiling > 0 {
				b.ReportMetric(rate/ceiling, "ratio")
			}
			b.ReportMetric(r.cmds.per(b.N), "store_cmds/send")
			b.ReportMetric(0, "ns/op")
			b.Logf("%s, %d instances × %d workers, %d sends: %.1f sends/s; store commands per send %.3f (%s), and before, per RequestSend %.3f (%s); %s; %s; messages settled per instance %s",
				e.backend, procs, e.workers, b.N, rate, r.cmds.per(b.N), r.cmds.describe(b.N), r.requestCmds.per(b.N), r.requestCmds.describe(b.N),
				r.calls.summary(b.N, "send", r.d, lanes), r.calls.cpu.describe(b.N, "send"), r.spread)
		})
	}
}

// cmdCounter counts the commands the Stores send, by name, through the
// driver's command monitor. It is safe for concurrent use.
type cmdCounter struct {
	mu sync.Mutex
	n  cmdCounts
}

// cmdCounts is a number of commands per command name.
type cmdCounts map[string]int64

func newCmdCounter() *cmdCounter { return &cmdCounter{n: cmdCounts{}} }

// notCounted are the driver's own commands: connection handshakes,
// heartbeats and the end of its sessions, which no processor call causes.
var notCounted = map[string]bool{"hello": true, "isMaster": true, "ismaster": true, "ping": true, "endSessions": true}

func (c *cmdCounter) monitor() *event.CommandMonitor {
	return &event.CommandMonitor{Started: func(_ context.Context, ev *event.CommandStartedEvent) {
		if notCounted[ev.CommandName] {
			return
		}
		c.mu.Lock()
		c.n[ev.CommandName]++
		c.mu.Unlock()
	}}
}

func (c *cmdCounter) snapshot() cmdCounts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

func (a cmdCounts) minus(b cmdCounts) cmdCounts {
	out := cmdCounts{}
	for k, v := range a {
		if d := v - b[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func (a cmdCounts) add(b cmdCounts) {
	for k, v := range b {
		a[k] += v
	}
}

// per is the commands per unit of work.
func (a cmdCounts) per(units int) float64 {
	var n int64
	for _, v := range a {
		n += v
	}
	return float64(n) / float64(units)
}

// describe lists the commands per unit of work by name.
func (a cmdCounts) describe(units int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(a)) {
		parts = append(parts, fmt.Sprintf("%s %.3f", k, float64(a[k])/float64(units)))
	}
	return strings.Join(parts, ", ")
}

// timedStore is the store with the time spent in each call added up, to show
// where a handler's time goes. It changes nothing else. Several timedStores
// may share their stats (see with).
type timedStore struct {
	*store.Store
	stats *callStats
	// cpu is the CPU used during the measurement.
	cpu cpuSample
}

// callStats is the number and total duration of calls per method.
type callStats struct {
	mu    sync.Mutex
	calls map[string]*callTime
}

type callTime struct {
	n int
	d time.Duration
}

func newTimedStore(st *store.Store) *timedStore {
	return &timedStore{Store: st, stats: &callStats{calls: map[string]*callTime{}}}
}

// with returns a timedStore on st that adds to the same stats as s.
func (s *timedStore) with(st *store.Store) *timedStore {
	return &timedStore{Store: st, stats: s.stats}
}

func (c *callStats) record(op string, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.calls[op]
	if t == nil {
		t = &callTime{}
		c.calls[op] = t
	}
	t.n++
	t.d += d
}

func (c *callStats) add(o *callStats) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for op, t := range o.calls {
		c.mu.Lock()
		u := c.calls[op]
		if u == nil {
			u = &callTime{}
			c.calls[op] = u
		}
		u.n += t.n
		u.d += t.d
		c.mu.Unlock()
	}
}

func (s *timedStore) time(op string, start time.Time) { s.stats.record(op, time.Since(start)) }

// summary renders the calls per unit of work with their mean latency, and the
// share of the lanes' time (elapsed × lanes) spent waiting for the store.
func (s *timedStore) summary(units int, unit string, elapsed time.Duration, lanes int) string {
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	var parts []string
	var total time.Duration
	for _, op := range []string{"InsertEvents", "Consent", "SaveConsent", "Message", "SaveMessage", "Outcome", "SaveOutcome"} {
		c := s.stats.calls[op]
		if c == nil {
			continue
		}
		total += c.d
		parts = append(parts, fmt.Sprintf("%s %.3f/%s %.2fms", op, float64(c.n)/float64(units), unit, float64(c.d.Microseconds())/1000/float64(c.n)))
	}
	busy := 100 * total.Seconds() / (elapsed.Seconds() * float64(lanes))
	return fmt.Sprintf("store calls (per %s, mean latency): %s; lanes waiting on the store %.0f%% of the time", unit, strings.Join(parts, ", "), busy)
}

func (s *timedStore) InsertEvents(ctx context.Context, e []processor.EventRecord) error {
	if len(e) == 0 {
		return s.Store.InsertEvents(ctx, e) // no command: not a call worth timing
	}
	defer s.time("InsertEvents", time.Now())
	return s.Store.InsertEvents(ctx, e)
}

func (s *timedStore) Consent(ctx context.Context, id string) (*processor.Consent, error) {
	defer s.time("Consent", time.Now())
	return s.Store.Consent(ctx, id)
}

func (s *timedStore) SaveConsent(ctx context.Context, c *processor.Consent) error {
	defer s.time("SaveConsent", time.Now())
	return s.Store.SaveConsent(ctx, c)
}

func (s *timedStore) Message(ctx context.Context, appID, id string) (*processor.Message, error) {
	defer s.time("Message", time.Now())
	return s.Store.Message(ctx, appID, id)
}

func (s *timedStore) SaveMessage(ctx context.Context, m *processor.Message) error {
	defer s.time("SaveMessage", time.Now())
	return s.Store.SaveMessage(ctx, m)
}

func (s *timedStore) Outcome(ctx context.Context, appID, msgID string) (*processor.Outcome, error) {
	defer s.time("Outcome", time.Now())
	return s.Store.Outcome(ctx, appID, msgID)
}

func (s *timedStore) SaveOutcome(ctx context.Context, o *processor.Outcome) error {
	defer s.time("SaveOutcome", time.Now())
	return s.Store.SaveOutcome(ctx, o)
}

// cpuSample is the CPU time used so far by this process (the processors, the
// embedded store and NATS, the simulator), by the PostgreSQL server when
// envPostgreSQLPID names it, and by the whole machine, to tell where the CPU
// of a measured interval went and whether there was any left.
type cpuSample struct {
	self, pg    time.Duration
	busy, total uint64 // jiffies from /proc/stat, all CPUs
}

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

func sampleCPU() cpuSample {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	c := cpuSample{self: time.Duration(ru.Utime.Nano() + ru.Stime.Nano())}
	if pid, err := strconv.Atoi(os.Getenv(envPostgreSQLPID)); err == nil {
		c.pg = treeCPU(pid)
	}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return c
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return c
	}
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		c.total += n
		if i != 3 && i != 4 { // idle and iowait
			c.busy += n
		}
	}
	return c
}

// analyzePostgreSQL runs VACUUM ANALYZE on the PostgreSQL database, when the
// store keeps its data there, as an operator would after a bulk load:
// otherwise autovacuum does it during the first measurement after the
// prefill, whose CPU it takes.
func analyzePostgreSQL(ctx context.Context) error {
	pg := os.Getenv(envPostgreSQLURL)
	if pg == "" {
		return nil
	}
	conn, err := pgx.Connect(ctx, pg)
	if err != nil {
		return fmt.Errorf("connecting to PostgreSQL (%s): %s", envPostgreSQLURL, strings.ReplaceAll(err.Error(), pg, "<url>"))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, "VACUUM ANALYZE")
	return err
}

// treeCPU is the user and system CPU time of process pid (a PostgreSQL
// server) and of its children (its backends and workers) so far: those still
// running, and, through pid's cutime and cstime, those it has reaped.
func treeCPU(pid int) time.Duration {
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	var ticks uint64
	for _, path := range dirs {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		self, _ := strconv.Atoi(strings.Fields(string(b[:i]))[0])
		// After ")": state is field 3 of proc(5), so ppid (4) is f[1], utime
		// (14) and stime (15) f[11] and f[12], cutime (16) and cstime (17)
		// f[13] and f[14].
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 15 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		last := 12
		switch {
		case self == pid:
			last = 14
		case ppid != pid:
			continue
		}
		for _, v := range f[11 : last+1] {
			n, _ := strconv.ParseUint(v, 10, 64)
			ticks += n
		}
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// minus is the CPU used between before and c.
func (c cpuSample) minus(before cpuSample) cpuSample {
	return cpuSample{self: c.self - before.self, pg: c.pg - before.pg, busy: c.busy - before.busy, total: c.total - before.total}
}

func (c *cpuSample) add(d cpuSample) {
	c.self += d.self
	c.pg += d.pg
	c.busy += d.busy
	c.total += d.total
}

// describe renders CPU used over an interval: this process's per unit of
// work, and how busy the machine's CPUs were.
func (c cpuSample) describe(units int, unit string) string {
	busy := 0.0
	if c.total > 0 {
		busy = 100 * float64(c.busy) / float64(c.total)
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(units) }
	pg := ""
	if os.Getenv(envPostgreSQLPID) != "" {
		pg = fmt.Sprintf(", PostgreSQL's %.2fms", per(c.pg))
	}
	return fmt.Sprintf("CPU per %s: this process's %.2fms%s; the machine's %d CPUs %.0f%% busy",
		unit, per(c.self), pg, runtime.NumCPU(), busy)
}
