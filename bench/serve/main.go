// Command serve measures `wxgate serve` end to end: it pushes popup events
// through the real gateway over HTTP, waits until the processor has applied
// and acknowledged every one, and reports events per second and the process's
// peak resident memory.
//
// It builds wxgate (or runs -bin), starts `wxgate serve` as a child process on
// a temporary data_dir with one plaintext-mode app, its embedded NATS and its
// embedded store (SQLite files; FerretDB's postgresql handler with
// -postgresql-url), and the WeChat simulator in this process as the app's
// api_base, so that nothing leaves the machine. Every push is a signed
// subscribe_msg_popup_event from its own openid: a new event and a new
// consent. Completion is read from the processor's durable consumer over the
// embedded server's client port (nats.listen). Run it from the repository
// root:
//
//	go run ./bench/serve -n 100000
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wxgate/wxgate/bench/internal/proc"
	"github.com/wxgate/wxgate/crypto"
	"github.com/wxgate/wxgate/internal/broker"
	"github.com/wxgate/wxgate/internal/sim"
	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
)

// The app of the run: plaintext mode, JSON pushes.
const (
	appID      = "wxba5fad812f8e6fb9"
	appSecret  = "bench-secret"
	appToken   = "AAAAA"
	toUser     = "gh_97417a04a28d"
	templateID = "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc"
)

const (
	// targetPeakRSS is the bound on wxgate serve's peak resident memory after the run.
	targetPeakRSS = 300 << 20
	// requestTimeout is longer than any answer the gateway gives (its publish
	// timeout is 2 s): a request that takes this long is an error.
	requestTimeout = 10 * time.Second
	// pollEvery is how often the consumer's state and the memory are read.
	pollEvery = 250 * time.Millisecond
	// progressEvery is how often a progress line is printed.
	progressEvery = 10 * time.Second
	// database is the store's database, mongo.database's default.
	database = "wxgate"
)

type flags struct {
	n, c, workers int
	timeout       time.Duration
	bin           string
	postgreSQLURL string
	keep          bool
	env           []string
}

func main() {
	var o flags
	flag.IntVar(&o.n, "n", 100_000, "popup events to push, each from its own openid")
	flag.IntVar(&o.c, "c", 16, "concurrent keep-alive connections to the gateway")
	flag.IntVar(&o.workers, "workers", 0, "processor.workers (0: the default, 8)")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Minute, "give up when the events are not all applied by then")
	flag.StringVar(&o.bin, "bin", "", "wxgate binary to run (default: build ./cmd/wxgate into a temporary directory)")
	flag.StringVar(&o.postgreSQLURL, "postgresql-url", "", "keep the embedded store's data in this PostgreSQL database (mongo.postgresql_url) instead of SQLite files")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (config, log, data)")
	proc.EnvFlag(&o.env, "GOGC=50")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func (o flags) validate() error {
	switch {
	case o.n < 1 || o.n > 10_000_000:
		return errors.New("-n must be between 1 and 10000000")
	case o.c < 1 || o.c > 1024:
		return errors.New("-c must be between 1 and 1024")
	case o.workers < 0 || o.workers > 1024:
		return errors.New("-workers must be between 0 and 1024")
	case o.timeout <= 0:
		return errors.New("-timeout must be positive")
	}
	return nil
}

func run(ctx context.Context, o flags, out io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	tmp, err := os.MkdirTemp("", "wxgate-bench-serve-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(out, "temporary directory:", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	if o.bin == "" {
		if o.bin, err = proc.BuildWxgate(ctx, tmp); err != nil {
			return err
		}
	}
	wechat, apiBase, err := sim.Start(sim.Config{
		Apps: []sim.AppConfig{{
			AppID: appID, Secret: appSecret, Token: appToken, Mode: sim.ModePlaintext, Format: sim.FormatJSON,
			Templates: []sim.Template{{ID: templateID, Title: "Order", Type: sim.TemplateOneTime, Content: "商品:{{thing1.DATA}}"}},
		}},
		NoSentEvents: true,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer wechat.Close()

	loadBefore := proc.LoadAvg()
	s, err := startServe(ctx, o, tmp, apiBase)
	if err != nil {
		return err
	}
	defer s.p.Stop()
	fmt.Fprintf(out, "wxgate serve: pid %d at %s, nats %s, store %s (log %s)\n", s.p.Pid(), s.p.Addr, s.natsURL, s.storeDesc, s.p.LogPath)
	fmt.Fprintf(out, "after start-up: VmRSS %s, VmHWM %s\n", proc.MiB(s.p.RSS()), proc.MiB(s.p.PeakRSS()))

	_, js, err := broker.Connect(s.natsURL, "wxgate-bench-serve", slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}

	fmt.Fprintf(out, "pushing %d popup events (plaintext JSON, each from its own openid) over %d connections\n", o.n, o.c)
	cpuBefore := s.p.CPU()
	start := time.Now()
	var pushed pushResult
	pushDone := make(chan struct{})
	go func() {
		defer close(pushDone)
		pushed = push(ctx, s.p.Addr, o.n, o.c)
	}()
	applied, maxRSS, err := wait(ctx, out, js, s.p, o.n, start, pushDone)
	<-pushDone
	if err != nil {
		return fmt.Errorf("%w (log: %s)", err, s.p.LogPath)
	}
	elapsed := applied.Sub(start)
	cpu := s.p.CPU() - cpuBefore
	hwm, rss := s.p.PeakRSS(), s.p.RSS()
	loadAfter := proc.LoadAvg()
	if pushed.errors > 0 {
		return fmt.Errorf("%d pushes failed: %s (log: %s)", pushed.errors, pushed.firstErr, s.p.LogPath)
	}
	checked, err := checkSample(ctx, s.mongoURI, pushed.createTimes)
	if err != nil {
		return fmt.Errorf("%w (log: %s)", err, s.p.LogPath)
	}

	fmt.Fprintf(out, "\n%s/%s, %d CPUs, %s; load average before %s, after %s; store %s; processor.workers %s\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), loadBefore, loadAfter, s.backend, workersDesc(o.workers))
	if len(o.env) > 0 {
		fmt.Fprintf(out, "wxgate environment: %s\n", strings.Join(o.env, " "))
	}
	fmt.Fprintf(out, "pushed:  %d events answered success in %v: %.0f pushes/s\n", pushed.ok, pushed.elapsed.Round(time.Millisecond), float64(pushed.ok)/pushed.elapsed.Seconds())
	fmt.Fprintf(out, "applied: %d events acknowledged by the processors %v after the first push: %.0f events/s\n", o.n, elapsed.Round(time.Millisecond), float64(o.n)/elapsed.Seconds())
	fmt.Fprintf(out, "store:   a sample of %d users checked: each has its event in the audit trail and one grant in the ledger\n", checked)
	fmt.Fprintf(out, "wxgate serve CPU: %v (%.0fµs per event)\n", cpu.Round(time.Millisecond), float64(cpu.Microseconds())/float64(o.n))
	fmt.Fprintf(out, "memory:  VmHWM %s, VmRSS %s now, largest VmRSS sampled %s\n", proc.MiB(hwm), proc.MiB(rss), proc.MiB(maxRSS))
	fmt.Fprintf(out, "peak RSS %s (target < %s): %s\n", proc.MiB(hwm), proc.MiB(targetPeakRSS), verdict(hwm > 0 && hwm < targetPeakRSS))
	return nil
}

// serve is the running `wxgate serve`.
type serve struct {
	p         *proc.Proc
	natsURL   string
	mongoURI  string
	backend   string
	storeDesc string
}

// startServe writes the configuration and starts `wxgate serve`, returning
// once /readyz answers 200.
func startServe(ctx context.Context, o flags, dir, apiBase string) (*serve, error) {
	var addrs [3]string
	for i := range addrs {
		a, err := proc.FreeLoopbackAddr()
		if err != nil {
			return nil, err
		}
		addrs[i] = a
	}
	listen, natsListen, mongoListen := addrs[0], addrs[1], addrs[2]
	s := &serve{natsURL: "nats://" + natsListen, mongoURI: "mongodb://" + mongoListen + "/", backend: "sqlite"}
	s.storeDesc = s.mongoURI + " on SQLite files"
	mongoLines := "mongo:\n  listen: " + mongoListen + "\n"
	var env []string
	if o.postgreSQLURL != "" {
		s.backend, s.storeDesc = "postgresql", s.mongoURI+" on PostgreSQL"
		// Through the environment rather than the file: the URL carries a password.
		env = append(env, "WXGATE_MONGO_POSTGRESQL_URL="+o.postgreSQLURL)
	}
	cfg := "listen: " + listen + "\n" +
		"data_dir: " + filepath.Join(dir, "data") + "\n" +
		"log_level: warn\n" +
		"nats:\n  listen: " + natsListen + "\n  max_age: 1h\n  publish_timeout: 2s\n" +
		mongoLines +
		"callback:\n  max_skew: 5m\n" +
		"apps:\n" +
		"  - appid: " + appID + "\n" +
		"    secret: " + appSecret + "\n" +
		"    token: " + appToken + "\n" +
		"    api_base: " + apiBase + "\n"
	if o.workers > 0 {
		cfg += "processor:\n  workers: " + strconv.Itoa(o.workers) + "\n"
	}
	cfgPath := filepath.Join(dir, "wxgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(o.bin, "serve", "--config", cfgPath)
	// WXGATE_* variables in the caller's environment would override the file.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WXGATE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(append(cmd.Env, env...), o.env...)
	p, err := proc.New("wxgate", cmd, dir)
	if err != nil {
		return nil, err
	}
	cmd.Stdout = p.Log
	if err := p.Start(); err != nil {
		return nil, err
	}
	p.Addr = "http://" + listen
	if err := p.WaitReady(ctx, p.Addr+"/readyz"); err != nil {
		return nil, err
	}
	s.p = p
	return s, nil
}

func workersDesc(n int) string {
	if n == 0 {
		return "8 (default)"
	}
	return strconv.Itoa(n)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// pushResult is what the gateway answered.
type pushResult struct {
	ok, errors int
	firstErr   string
	elapsed    time.Duration
	// createTimes holds each push's CreateTime, which its event id depends on.
	createTimes []int64
}

// push sends n signed plaintext popup pushes, each from its own openid, to the
// gateway at base over c keep-alive connections. Each is signed when it is
// sent, so its timestamp stays inside the gateway's window however long the
// run. Only 200 "success" counts as a success.
func push(ctx context.Context, base string, n, c int) pushResult {
	client := &http.Client{Timeout: requestTimeout, Transport: &http.Transport{
		MaxConnsPerHost: c, MaxIdleConnsPerHost: c, MaxIdleConns: c, DisableCompression: true,
	}}
	defer client.CloseIdleConnections()
	var (
		next, ok, failed atomic.Int64
		firstErr         sync.Once
		errText          string
		wg               sync.WaitGroup
	)
	fail := func(s string) {
		failed.Add(1)
		firstErr.Do(func() { errText = s })
	}
	createTimes := make([]int64, n)
	start := time.Now()
	for range c {
		wg.Go(func() {
			buf := make([]byte, 64)
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				now := time.Now().Unix()
				createTimes[i] = now
				openid, body := popup(i, now)
				ts := strconv.FormatInt(now, 10)
				nonce := strconv.Itoa(100_000_000 + i)
				q := url.Values{"signature": {crypto.Signature(appToken, ts, nonce)}, "timestamp": {ts}, "nonce": {nonce}, "openid": {openid}}
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/wechat/"+appID+"?"+q.Encode(), bytes.NewReader([]byte(body)))
				if err != nil {
					fail(err.Error())
					continue
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					fail("transport error")
					continue
				}
				k, _ := io.ReadFull(resp.Body, buf)
				_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK && string(buf[:k]) == "success" {
					ok.Add(1)
				} else {
					fail(fmt.Sprintf("%d %q", resp.StatusCode, buf[:k]))
				}
			}
		})
	}
	wg.Wait()
	return pushResult{ok: int(ok.Load()), errors: int(failed.Load()), firstErr: errText, elapsed: time.Since(start), createTimes: createTimes}
}

// popup is the i-th push: a popup accept from its own openid.
func popup(i int, createTime int64) (openid, body string) {
	openid = fmt.Sprintf("oServe%0*d", 22, i) // 28 characters, as a real openid
	body = fmt.Sprintf(`{"ToUserName":%q,"FromUserName":%q,"CreateTime":%d,"MsgType":"event","Event":"subscribe_msg_popup_event","List":[{"TemplateId":%q,"SubscribeStatusString":"accept","PopupScene":0}]}`,
		toUser, openid, createTime, templateID)
	return openid, body
}

// wait polls the stream and the processor's consumer until the stream holds
// n inbound events and the consumer has none pending or unacknowledged, and
// returns when that was first seen and the largest VmRSS sampled meanwhile.
// It prints a progress line every progressEvery.
func wait(ctx context.Context, out io.Writer, js jetstream.JetStream, p *proc.Proc, n int, start time.Time, pushDone <-chan struct{}) (time.Time, uint64, error) {
	var maxRSS uint64
	nextProgress := start.Add(progressEvery)
	for {
		maxRSS = max(maxRSS, p.RSS())
		stored, pending, err := consumerState(ctx, js)
		now := time.Now()
		pushing := true
		select {
		case <-pushDone:
			pushing = false
		default:
		}
		if err == nil && stored >= uint64(n) && pending == 0 {
			return now, maxRSS, nil
		}
		if err == nil && !pushing && stored < uint64(n) {
			return now, maxRSS, fmt.Errorf("the stream holds %d inbound events after the last push, want %d", stored, n)
		}
		if now.After(nextProgress) {
			state := fmt.Sprintf("%d stored, %d applied", stored, stored-min(stored, pending))
			if err != nil {
				state = err.Error()
			}
			fmt.Fprintf(out, "  %4.0fs: %s; VmRSS %s\n", now.Sub(start).Seconds(), state, proc.MiB(p.RSS()))
			nextProgress = nextProgress.Add(progressEvery)
		}
		if p.Exited() {
			return now, maxRSS, errors.New("wxgate serve exited")
		}
		select {
		case <-ctx.Done():
			return now, maxRSS, fmt.Errorf("events not all applied: %w", ctx.Err())
		case <-time.After(pollEvery):
		}
	}
}

// consumerState returns the inbound events the stream holds and the messages
// the processor's consumer has not yet acknowledged (pending or in flight).
func consumerState(ctx context.Context, js jetstream.JetStream) (stored, pending uint64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, schemas.StreamName)
	if err != nil {
		return 0, 0, err
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter("wechat.*.in.>"))
	if err != nil {
		return 0, 0, err
	}
	for _, c := range info.State.Subjects {
		stored += c
	}
	pending, held, err := processor.Backlog(ctx, js)
	if err != nil {
		return stored, 0, err
	}
	return stored, pending + held, nil
}

// samples is how many users checkSample looks up.
const samples = 100

// checkSample looks up, for users spread over the run, the event's audit
// record and the consent it granted: the figures are for events applied, not
// only acknowledged. (Counting the documents takes minutes on the embedded
// store, which scans for anything but _id.) It returns how many it checked.
func checkSample(ctx context.Context, uri string, createTimes []int64) (int, error) {
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetTimeout(time.Minute))
	if err != nil {
		return 0, err
	}
	defer client.Disconnect(context.WithoutCancel(ctx))
	db := client.Database(database)
	n := len(createTimes)
	checked := 0
	for i := 0; i < n; i += max(1, n/samples) {
		openid, body := popup(i, createTimes[i])
		_, id, err := schemas.ParseEventWithID(appID, []byte(body))
		if err != nil {
			return checked, err
		}
		if err := db.Collection("events").FindOne(ctx, bson.M{"_id": id}).Err(); err != nil {
			return checked, fmt.Errorf("the event of %s (%s): %w", openid, id, err)
		}
		var c processor.Consent
		key := processor.ConsentKey(appID, openid, templateID)
		if err := db.Collection("consents").FindOne(ctx, bson.M{"_id": key}).Decode(&c); err != nil {
			return checked, fmt.Errorf("the consent of %s: %w", openid, err)
		}
		if c.Status != processor.ConsentAccepted || c.Grants != 1 {
			return checked, fmt.Errorf("the consent of %s is %s with %d grants, want accepted with 1", openid, c.Status, c.Grants)
		}
		checked++
	}
	return checked, nil
}
