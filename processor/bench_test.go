package processor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wxgate/wxgate/internal/broker"
	"github.com/wxgate/wxgate/internal/broker/natstest"
	"github.com/wxgate/wxgate/internal/checkfor"
	"github.com/wxgate/wxgate/internal/sim"
	"github.com/wxgate/wxgate/internal/store"
	"github.com/wxgate/wxgate/internal/store/storetest"
	"github.com/wxgate/wxgate/internal/wechat"
	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
)

// The benchmarks run against the same real dependencies as the tests: an
// embedded JetStream server and the embedded MongoDB-compatible store (FerretDB
// on SQLite files, or on PostgreSQL when WXGATE_BENCH_POSTGRESQL_URL names a
// database). Throughput is reported next to a baseline measured in the same
// run on the same store, because absolute figures on a shared machine say
// little. bench/store/README.md explains how to run them and records figures.
const (
	// envPostgreSQLURL switches the store to FerretDB's postgresql handler.
	envPostgreSQLURL = "WXGATE_BENCH_POSTGRESQL_URL"
	// envWorkers overrides processor.Config.Workers of every processor started here.
	envWorkers = "WXGATE_BENCH_WORKERS"

	// simLatency is WeChat's answer time the send benchmarks simulate.
	simLatency = 50 * time.Millisecond
	// ratioBatch is how many upserts, then events, BenchmarkEventsAppliedRatio
	// measures in turn.
	ratioBatch = 200
	// pollEvery is how often a benchmark asks the stream whether a consumer is
	// done; it bounds the error of a measured interval.
	pollEvery = 5 * time.Millisecond
	// benchWait bounds every wait of a benchmark.
	benchWait = 5 * time.Minute
)

// benchEnv is one stream and one store shared by the sub-benchmarks of a benchmark.
type benchEnv struct {
	backend string // "sqlite" or "postgresql"
	uri     string
	dbName  string
	client  *mongo.Client // for the raw baseline
	nats    *natstest.Server
	js      jetstream.JetStream
	pub     *broker.Publisher
	st      *store.Store
	guard   *store.Guard
	workers int
	// rounds numbers the measurements so that no two share a user or a key.
	rounds int
}

func newBenchEnv(tb testing.TB) *benchEnv {
	tb.Helper()
	e := &benchEnv{nats: natstest.Start(tb), workers: benchWorkers(tb)}
	e.uri, e.backend = startBenchStore(tb)
	// A fresh database per environment: a PostgreSQL cluster outlives the run.
	e.dbName = "wxgate_bench_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e.guard = store.NewGuard()
	st, err := store.Open(ctx, e.uri, e.dbName, store.Options{Guard: e.guard})
	if err != nil {
		tb.Fatalf("store.Open: %v", err)
	}
	tb.Cleanup(func() { _ = st.Close(context.Background()) })
	e.st = st
	client, err := mongo.Connect(options.Client().ApplyURI(e.uri).SetTimeout(30 * time.Second))
	if err != nil {
		tb.Fatalf("mongo.Connect: %v", err)
	}
	tb.Cleanup(func() {
		_ = client.Database(e.dbName).Drop(context.Background())
		_ = client.Disconnect(context.Background())
	})
	e.client = client
	_, e.js = e.nats.Connect()
	e.pub = broker.NewPublisher(e.js, 5*time.Second)
	return e
}

// startBenchStore starts the embedded store for one benchmark and returns its
// URI and its backend.
func startBenchStore(tb testing.TB) (uri, backend string) {
	tb.Helper()
	pg := os.Getenv(envPostgreSQLURL)
	if pg == "" {
		return storetest.Start(tb).URI(), "sqlite"
	}
	emb, err := store.StartEmbedded(store.EmbeddedOptions{Listen: "127.0.0.1:0", PostgreSQLURL: pg})
	if err != nil {
		// The error may quote the URL, which carries a password.
		tb.Fatalf("starting the embedded store on PostgreSQL (%s): %s", envPostgreSQLURL, strings.ReplaceAll(err.Error(), pg, "<url>"))
	}
	tb.Cleanup(emb.Close)
	return emb.URI(), "postgresql"
}

// benchWorkers is the Workers of the processors: WXGATE_BENCH_WORKERS or 8, the default.
func benchWorkers(tb testing.TB) int {
	tb.Helper()
	v := os.Getenv(envWorkers)
	if v == "" {
		return 8
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1024 {
		tb.Fatalf("%s=%q: want a number from 1 to 1024", envWorkers, v)
	}
	return n
}

// freshStore opens a new, empty database on the environment's store, so that
// a measurement does not pay for the documents an earlier one left: FerretDB
// 1.x finds a document by _id with a scan of its collection.
func (e *benchEnv) freshStore(tb testing.TB) *store.Store {
	tb.Helper()
	name := fmt.Sprintf("%s_%d", e.dbName, e.round())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.Open(ctx, e.uri, name, store.Options{Guard: e.guard})
	if err != nil {
		tb.Fatalf("store.Open: %v", err)
	}
	tb.Cleanup(func() {
		_ = st.Close(context.Background())
		_ = e.client.Database(name).Drop(context.Background())
	})
	return st
}

func (e *benchEnv) round() int {
	e.rounds++
	return e.rounds
}

// benchInstance is one running processor.
type benchInstance struct {
	proc *processor.Processor
	stop context.CancelFunc
	done chan error
}

// newProcessor builds a processor on the environment's stream and on st.
func (e *benchEnv) newProcessor(tb testing.TB, st processor.Store, sender processor.Sender) *processor.Processor {
	tb.Helper()
	cfg := processor.Config{Workers: e.workers, Kinds: kinds{}, Sender: sender}
	p, err := processor.New(st, e.js, e.pub, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), cfg)
	if err != nil {
		tb.Fatalf("processor.New: %v", err)
	}
	return p
}

func startInstance(p *processor.Processor) *benchInstance {
	ctx, cancel := context.WithCancel(context.Background())
	in := &benchInstance{proc: p, stop: cancel, done: make(chan error, 1)}
	go func() { in.done <- p.Run(ctx) }()
	return in
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
// gateway does, and returns the stream sequence of the last one.
func (e *benchEnv) publishPopups(tb testing.TB, users []string) uint64 {
	tb.Helper()
	ts := time.Now().Unix()
	var last uint64
	for _, u := range users {
		_, seq := natstest.Push(tb, e.js, appID, popup(u, ts, tplOnce, "accept"))
		last = max(last, seq)
	}
	return last
}

// waitConsumer polls until the durable consumer name has acknowledged every
// message up to stream sequence last and holds nothing pending.
func (e *benchEnv) waitConsumer(tb testing.TB, name string, last uint64) {
	tb.Helper()
	checkfor.Eventually(tb, benchWait, pollEvery, func() error { return natstest.Settled(e.js, name, last) })
}

// benchUsers returns n distinct openids.
func benchUsers(prefix string, round, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("o%s%d_%07d", prefix, round, i)
	}
	return out
}

// The measuring helpers below expect the benchmark's timer stopped: they run it
// over the measured part only, and return that part's duration.

// rawUpserts runs n sequential single-document upserts ($set, one round trip
// each) with keys no earlier call used, into a scratch collection of the
// environment's database.
func (e *benchEnv) rawUpserts(b *testing.B, n int) time.Duration {
	b.Helper()
	coll := e.client.Database(e.dbName).Collection("bench_raw_upserts")
	ctx := context.Background()
	round := e.round()
	upsert := options.UpdateOne().SetUpsert(true)
	b.StartTimer()
	start := time.Now()
	for i := range n {
		key := fmt.Sprintf("%s/oRaw%d_%07d/%s", appID, round, i, tplOnce)
		set := bson.M{"$set": bson.M{"status": processor.ConsentAccepted, "grants": 1, "updated_at": time.Now()}}
		if _, err := coll.UpdateOne(ctx, bson.M{"_id": key}, set, upsert); err != nil {
			b.Fatalf("UpdateOne: %v", err)
		}
	}
	d := time.Since(start)
	b.StopTimer()
	return d
}

// applyEvents puts n accepting popups from distinct users on the stream, then
// times a processor on st from its start until it has applied and acknowledged
// all of them, and checks a sample of the ledger.
func (e *benchEnv) applyEvents(b *testing.B, n int, st processor.Store) time.Duration {
	b.Helper()
	us := benchUsers("Ev", e.round(), n)
	last := e.publishPopups(b, us)
	p := e.newProcessor(b, st, nil)
	b.StartTimer()
	start := time.Now()
	in := startInstance(p)
	e.waitConsumer(b, processor.ConsumerName, last)
	d := time.Since(start)
	b.StopTimer()
	in.halt(b)
	for i, u := range us {
		if i%max(1, n/20) != 0 {
			continue // a sample keeps the check cheap on a slow store
		}
		c, err := e.st.Consent(context.Background(), processor.ConsentKey(appID, u, tplOnce))
		if err != nil || c.Grants != 1 {
			b.Fatalf("consent of %s = %+v (%v), want 1 grant", u, c, err)
		}
	}
	return d
}

// BenchmarkEventsApplied measures events applied per second from the stream
// into the store (each one: InsertEvent, a consent read, SaveConsent and the
// consent change published) against the store's raw single-document upsert
// rate on the same store in the same run. events reports ratio = events/s
// divided by the upserts/s that raw_upsert measured just before; the target is
// at least 0.7. With -count, every events run is compared with the last
// raw_upsert run; BenchmarkEventsAppliedRatio pairs them run by run.
func BenchmarkEventsApplied(b *testing.B) {
	e := newBenchEnv(b)
	var upserts float64
	b.Run("raw_upsert", func(b *testing.B) {
		b.StopTimer()
		d := e.rawUpserts(b, b.N)
		upserts = float64(b.N) / d.Seconds()
		b.ReportMetric(upserts, "upserts/s")
	})
	b.Run("events", func(b *testing.B) {
		b.StopTimer()
		ts := &timedStore{Store: e.st}
		d := e.applyEvents(b, b.N, ts)
		rate := float64(b.N) / d.Seconds()
		b.ReportMetric(rate, "events/s")
		if upserts > 0 {
			b.ReportMetric(rate/upserts, "ratio")
		}
		b.Logf("%s, %d workers, %d events: %s", e.backend, e.workers, b.N, ts.summary(b.N, "event", d, e.workers))
	})
}

// BenchmarkEventsAppliedRatio measures the same two rates as
// BenchmarkEventsApplied, b.N upserts and b.N events, but alternates them in
// batches of ratioBatch on one store, so that both see the same machine load
// and collections of the same size, and reports their ratio (target at least
// 0.7). ns/op is the time of one upsert plus one event.
func BenchmarkEventsAppliedRatio(b *testing.B) {
	b.StopTimer()
	e := newBenchEnv(b)
	var raw, applied time.Duration
	for done := 0; done < b.N; {
		k := min(ratioBatch, b.N-done)
		raw += e.rawUpserts(b, k)
		applied += e.applyEvents(b, k, e.st)
		done += k
	}
	upserts := float64(b.N) / raw.Seconds()
	events := float64(b.N) / applied.Seconds()
	b.ReportMetric(upserts, "upserts/s")
	b.ReportMetric(events, "events/s")
	b.ReportMetric(events/upserts, "ratio")
	b.Logf("%s, %d workers, %d upserts and %d events in batches of %d: %.0f upserts/s, %.0f events/s, ratio %.3f (target >= 0.7)",
		e.backend, e.workers, b.N, b.N, ratioBatch, upserts, events, events/upserts)
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
	b.StartTimer()
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
	b.StopTimer()
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

// sends prepares n sends to distinct users who accepted in WeChat and in the
// ledger, with the requests stored and queued before any send consumer runs,
// then times procs processor instances (each with its own token manager and
// client) from their start until every message is sent and acknowledged.
func (w *benchWeChat) sends(b *testing.B, e *benchEnv, procs, n int) (time.Duration, *timedStore) {
	b.Helper()
	ctx := context.Background()
	us := benchUsers("Send", e.round(), n)
	w.accept(b, us)
	st := e.freshStore(b)
	// The ledger learns of the accepts through the events consumer, as in production.
	setup := startInstance(e.newProcessor(b, st, nil))
	e.waitConsumer(b, processor.ConsumerName, e.publishPopups(b, us))
	ids := make([]string, n)
	for i, u := range us {
		req := &schemas.SendRequest{ToUser: u, TemplateID: tplOnce, Data: map[string]string{"thing1": "Coffee"}}
		m, err := setup.proc.RequestSend(ctx, appID, req, "")
		if err != nil {
			b.Fatalf("RequestSend: %v", err)
		}
		ids[i] = m.ID
	}
	setup.halt(b)
	stream, err := e.js.Stream(ctx, schemas.StreamName)
	if err != nil {
		b.Fatal(err)
	}
	lastSend, err := stream.GetLastMsgForSubject(ctx, schemas.SendSubject(appID))
	if err != nil {
		b.Fatal(err)
	}
	ts := &timedStore{Store: st}
	ps := make([]*processor.Processor, procs)
	for i := range ps {
		ps[i] = e.newProcessor(b, ts, wechat.NewClient(w.apps, w.tokens(b, e.js), &http.Client{Timeout: 5 * time.Second}))
	}
	before := w.sim.Stats().Sends
	ins := make([]*benchInstance, procs)
	b.StartTimer()
	start := time.Now()
	for i, p := range ps {
		ins[i] = startInstance(p)
	}
	e.waitConsumer(b, processor.ConsumerName, lastSend.Sequence)
	d := time.Since(start)
	b.StopTimer()
	for _, in := range ins {
		in.halt(b)
	}
	after := w.sim.Stats().Sends
	for code, c := range after {
		if code != 0 && c != before[code] {
			b.Logf("the simulator answered errcode %d %d times", code, c-before[code])
		}
	}
	if got := after[0] - before[0]; got != int64(n) {
		b.Errorf("the simulator accepted %d sends, want %d", got, n)
	}
	for _, id := range ids {
		m, err := st.Message(ctx, appID, id)
		if err != nil || m.Status != processor.StatusSent {
			b.Fatalf("message %s after the run: %+v (%v), want sent", id, m, err)
		}
	}
	return d, ts
}

// BenchmarkSends measures sends per second end to end, from queued requests to
// messages sent, against the WeChat simulator answering after simLatency, with
// 1 and 4 processor instances sharing one stream and one store. Each is
// preceded by sim_ceiling_lanes_N, the simulator's own rate for direct HTTP
// calls from as many concurrent clients as the processors have lanes (Workers
// × instances); processors_N reports its ratio to that ceiling.
func BenchmarkSends(b *testing.B) {
	e := newBenchEnv(b)
	w := startBenchWeChat(b)
	tokens := w.tokens(b, e.js)
	for _, procs := range []int{1, 4} {
		lanes := procs * e.workers
		var ceiling float64
		b.Run(fmt.Sprintf("sim_ceiling_lanes_%d", lanes), func(b *testing.B) {
			b.StopTimer()
			d := w.ceiling(b, e, tokens, lanes, b.N)
			ceiling = float64(b.N) / d.Seconds()
			b.ReportMetric(ceiling, "sends/s")
		})
		b.Run(fmt.Sprintf("processors_%d", procs), func(b *testing.B) {
			b.StopTimer()
			d, ts := w.sends(b, e, procs, b.N)
			rate := float64(b.N) / d.Seconds()
			b.ReportMetric(rate, "sends/s")
			if ceiling > 0 {
				b.ReportMetric(rate/ceiling, "ratio")
			}
			b.Logf("%s, %d instances × %d workers, %d sends: %s", e.backend, procs, e.workers, b.N, ts.summary(b.N, "send", d, lanes))
		})
	}
}

// timedStore is the store with the time spent in each call added up, to show
// where a handler's time goes. It changes nothing else.
type timedStore struct {
	*store.Store
	mu    sync.Mutex
	calls map[string]*callTime
}

type callTime struct {
	n int
	d time.Duration
}

func (s *timedStore) time(op string, start time.Time) {
	d := time.Since(start)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls == nil {
		s.calls = map[string]*callTime{}
	}
	c := s.calls[op]
	if c == nil {
		c = &callTime{}
		s.calls[op] = c
	}
	c.n++
	c.d += d
}

// summary renders the calls per unit of work with their mean latency, and the
// share of the lanes' time (elapsed × lanes) spent waiting for the store.
func (s *timedStore) summary(units int, unit string, elapsed time.Duration, lanes int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []string
	var total time.Duration
	for _, op := range []string{"InsertEvents", "Consent", "SaveConsent", "Message", "SaveMessage", "Outcome", "SaveOutcome"} {
		c := s.calls[op]
		if c == nil {
			continue
		}
		total += c.d
		parts = append(parts, fmt.Sprintf("%s %.2f/%s %.1fms", op, float64(c.n)/float64(units), unit, float64(c.d.Microseconds())/1000/float64(c.n)))
	}
	busy := 100 * total.Seconds() / (elapsed.Seconds() * float64(lanes))
	return fmt.Sprintf("store calls (per %s, mean latency): %s; lanes waiting on the store %.0f%% of the time", unit, strings.Join(parts, ", "), busy)
}

func (s *timedStore) InsertEvents(ctx context.Context, e []processor.EventRecord) error {
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
