package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/wxgate/wxgate/gateway"
	"github.com/wxgate/wxgate/internal/admin"
	"github.com/wxgate/wxgate/internal/broker"
	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/console"
	"github.com/wxgate/wxgate/internal/store"
	"github.com/wxgate/wxgate/internal/wechat"
	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
)

// The processor shares its pauses through the broker's KV bucket.
var _ processor.PauseBoard = (*broker.Pauses)(nil)

// shutdownGrace bounds how long in-flight requests may take to finish on shutdown.
const shutdownGrace = 10 * time.Second

// roles says which parts one process runs.
type roles struct {
	gateway   bool
	processor bool
}

// nodeSpec is what runNode runs: a loaded configuration, where it came from (to
// load it again on SIGHUP), and the parts.
type nodeSpec struct {
	cfg   config.Config
	path  string // the --config file; "" for none
	needs config.Needs
	roles roles
}

// commandNeeds says what each server command needs of its configuration, so
// that a missing key is found with every other problem, before anything starts.
func commandNeeds(name string) config.Needs {
	switch name {
	case "gateway":
		return config.Needs{NATSURL: "is required for 'wxgate gateway' (use 'wxgate serve' for the embedded default)"}
	case "processor":
		return config.Needs{
			AppSecrets: true,
			NATSURL:    "is required for 'wxgate processor' (use 'wxgate serve' for the embedded default)",
			MongoURI:   "is required for 'wxgate processor' (use 'wxgate serve' for the embedded default)",
		}
	default: // serve
		n := config.Needs{AppSecrets: true}
		if !store.EmbeddedBuilt {
			n.MongoURI = "is required: this build of wxgate has no embedded store (built with the tag noembedded)"
		}
		return n
	}
}

// serverSummary is the first paragraph of a server command's usage.
func serverSummary(name string) string {
	for _, c := range commands() {
		if c.name == name {
			return "Runs " + strings.TrimPrefix(c.summary, "run ") + "."
		}
	}
	return ""
}

func runServe(ctx context.Context, args []string, _, stderr io.Writer) error {
	n, err := loadNode("serve", args, stderr)
	if err != nil {
		return err
	}
	n.roles = roles{gateway: true, processor: true}
	if n.cfg.NATS.URL == "" || n.cfg.Mongo.URI == "" {
		// The embedded servers keep their files under data_dir: one process at a time.
		lock, err := lockDataDir(n.cfg.DataDir)
		if err != nil {
			return err
		}
		defer lock.Close()
	}
	return runNode(ctx, n, stderr)
}

func runProcessor(ctx context.Context, args []string, _, stderr io.Writer) error {
	n, err := loadNode("processor", args, stderr)
	if err != nil {
		return err
	}
	n.roles = roles{processor: true}
	return runNode(ctx, n, stderr)
}

func runGateway(ctx context.Context, args []string, _, stderr io.Writer) error {
	n, err := loadNode("gateway", args, stderr)
	if err != nil {
		return err
	}
	n.roles = roles{gateway: true}
	return runNode(ctx, n, stderr)
}

// loadNode parses a server command's flags and loads the configuration they
// name, with everything the command needs.
func loadNode(name string, args []string, stderr io.Writer) (nodeSpec, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		hup := "SIGHUP reloads the apps from the file and environment"
		if name == "processor" {
			hup = "SIGHUP checks the file again; the processor applies a change on a restart"
		}
		fmt.Fprintf(stderr, "usage: wxgate %s [--config FILE]\n\n%s\n%s; SIGINT and SIGTERM shut down gracefully.\n\nflags:\n", name, serverSummary(name), hup)
		fs.PrintDefaults()
	}
	path := fs.String("config", "", "YAML configuration `file` (environment variables WXGATE_* override it)")
	if err := parseFlags(fs, args); err != nil {
		return nodeSpec{}, err
	}
	if fs.NArg() > 0 {
		return nodeSpec{}, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	needs := commandNeeds(name)
	cfg, err := config.LoadFor(*path, os.Environ(), needs)
	if err != nil {
		return nodeSpec{}, err
	}
	return nodeSpec{cfg: cfg, path: *path, needs: needs}, nil
}

func isConfigError(err error) bool { return errors.Is(err, config.ErrInvalid) }

func newLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// runNode runs the parts of n until ctx is cancelled and logs that it stopped,
// once everything it started has stopped.
func runNode(ctx context.Context, n nodeSpec, logw io.Writer) error {
	log := newLogger(n.cfg.LogLevel, logw)
	log.Info("starting", "version", buildVersion(), "gateway", n.roles.gateway, "processor", n.roles.processor)
	err := serveNode(ctx, n, log, logw)
	if err != nil {
		log.Error("stopped", "err", err)
	} else {
		log.Info("stopped")
	}
	return err
}

// serveNode wires and runs the parts of n until ctx is cancelled, then shuts
// down in reverse order: stop taking requests, finish in-flight work, drain
// NATS, stop the embedded servers.
func serveNode(ctx context.Context, n nodeSpec, log *slog.Logger, logw io.Writer) error {
	cfg, r := n.cfg, n.roles
	log.Debug("configuration", "config", cfg.String())
	if len(cfg.Apps) == 0 {
		hint := "add apps to the configuration file"
		if n.path == "" {
			hint = "no --config was given: pass one with apps (examples/wxgate.yaml)"
		}
		log.Warn("no apps configured: every callback is answered 404 and every send is refused", "hint", hint)
	}
	gin.SetMode(gin.ReleaseMode)
	// SIGHUP is taken from here on, so it never ends the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	// The HTTP port is bound first: if it is taken, nothing else starts. It
	// answers at once, /healthz 200 and /readyz 503, so that an orchestrator
	// sees a live process while it waits for NATS, and takes the full routes
	// once everything is wired.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	front := &swapHandler{}
	front.set(gateway.Starting(startingReasons(r)))
	srv := &http.Server{
		Handler:           front,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       90 * time.Second,
	}
	served := make(chan struct{})
	var serveErr error
	// "listening" comes once every route is served; until then the port
	// answers only probes.
	log.Info("answering health probes", "addr", ln.Addr().String())
	go func() { // ended by stopHTTP, which waits for it
		defer close(served)
		serveErr = srv.Serve(ln)
	}()
	stopHTTP := sync.OnceValue(func() error {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer cancel()
		err := srv.Shutdown(sctx)
		<-served
		return err
	})
	defer stopHTTP()

	natsURL := cfg.NATS.URL
	if natsURL == "" {
		ns, err := broker.StartEmbedded(broker.EmbeddedOptions{
			Listen:   cfg.NATS.Listen,
			StoreDir: filepath.Join(cfg.DataDir, "nats"),
		})
		if err != nil {
			return err
		}
		defer func() {
			ns.Shutdown()
			ns.WaitForShutdown()
		}()
		natsURL = ns.ClientURL()
		log.Info("embedded nats started", "url", natsURL, "dir", filepath.Join(cfg.DataDir, "nats"))
	}
	nc, js, err := broker.Connect(natsURL, "wxgate", log)
	if err != nil {
		return err
	}
	defer func() {
		if err := nc.Drain(); err != nil {
			log.Warn("draining nats", "err", err)
		}
	}()
	// NATS may come up after this process (a cluster starting together, an
	// outage): wait for it, and let a signal end the wait with exit 0.
	streamOpts := broker.StreamOptions{Replicas: cfg.NATS.Replicas, MaxAge: cfg.NATS.MaxAge.D()}
	if _, err := broker.AwaitStream(ctx, nc, js, streamOpts, broker.DefaultStartBackoff, log); err != nil {
		if ctx.Err() != nil {
			log.Info("stopped waiting for nats: shutting down")
			return nil
		}
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	engine := gin.New()
	engine.Use(gin.Recovery())
	checks := map[string]gateway.Check{
		// Ready only while both streams would take a publish: a node that lost
		// its JetStream quorum still answers, but stores nothing.
		"nats": func(ctx context.Context) error {
			for _, stream := range []string{schemas.StreamName, schemas.WorkStreamName} {
				if err := broker.StreamWritable(ctx, nc, js, stream); err != nil {
					return gateway.Unready(broker.WritableReason(err), err)
				}
			}
			return nil
		},
	}

	pub := broker.NewPublisher(js, cfg.NATS.PublishTimeout.D())
	var gw *gateway.Server
	if r.gateway {
		gw, err = gateway.New(gatewayConfig(cfg), pub, log, reg)
		if err != nil {
			return err
		}
		gw.Register(engine)
	}
	var proc *processor.Processor
	if r.processor {
		// The embedded store logs every command it does not implement as a warning;
		// only its errors are worth an operator's attention.
		storeLog := newLogger("error", logw).With("component", "embedded-store")
		st, closeStore, err := openStore(ctx, cfg, log, storeLog)
		if err != nil {
			return err
		}
		defer closeStore()
		apps := wechatApps(cfg)
		httpClient := &http.Client{Timeout: 10 * time.Second}
		tokens, err := wechat.NewTokens(ctx, js, apps, httpClient, log, wechat.TokenOptions{Replicas: cfg.NATS.Replicas})
		if err != nil {
			return err
		}
		defer tokens.Close()
		reg.MustRegister(tokens)
		client := wechat.NewClient(apps, tokens, httpClient)
		templates := wechat.NewTemplateCache(client, templateTTL)
		appIDs := make([]string, 0, len(cfg.Apps))
		for _, a := range cfg.Apps {
			appIDs = append(appIDs, a.AppID)
		}
		proc, err = processor.New(st, js, pub, log, reg, processor.Config{
			Workers:      cfg.Processor.Workers,
			Replicas:     cfg.NATS.Replicas,
			MaxDeliver:   cfg.Processor.MaxDeliver,
			SendAttempts: cfg.Processor.SendAttempts,
			SendRetry:    durations(cfg.Processor.SendRetry),
			UnknownAfter: cfg.Processor.UnknownAfter.D(),
			Kinds:        templates,
			Sender:       client,
			AppIDs:       appIDs,
		})
		if err != nil {
			return err
		}
		// An app whose daily quota is spent (45009) is paused for every
		// processor at once, until Beijing midnight.
		board, err := broker.OpenPauses(ctx, js, log, broker.PauseOptions{Replicas: cfg.NATS.Replicas})
		if err != nil {
			return err
		}
		defer board.Close()
		proc.SharePauses(board)
		// The stream's storage and every durable consumer's backlog, read from
		// JetStream at scrape time. Processors report them and gateways do not,
		// so that a scrape does not cost a JetStream request per gateway.
		streams := []string{schemas.StreamName, schemas.WorkStreamName}
		reg.MustRegister(broker.NewStreamCollector(js, streams, broker.DefaultInfoTimeout, log))
		checks["store"] = func(ctx context.Context) error {
			if err := st.Ping(ctx); err != nil {
				return gateway.Unready("unreachable", err)
			}
			return nil
		}
		adminToks, err := adminTokens(cfg.Admin.Tokens)
		if err != nil {
			return err
		}
		api := admin.New(admin.Config{Tokens: adminToks, AppIDs: appIDs}, proc, templates, st, log)
		api.Register(engine)
		// The console takes the API's tokens and scopes, and records its
		// actions in the same audit log.
		con, err := console.New(console.Config{AppIDs: appIDs}, proc, templates, st, api, st, log)
		if err != nil {
			return err
		}
		con.Register(engine)
	}
	gateway.RegisterHealth(engine, checks, reg, log)
	front.set(engine)
	log.Info("listening", "addr", ln.Addr().String(), "gateway", r.gateway, "processor", r.processor)

	g, gctx := errgroup.WithContext(ctx)
	if proc != nil {
		g.Go(func() error { return proc.Run(gctx) })
	}
	g.Go(func() error {
		rl := reloader{node: n, gw: gw, log: log}
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-hup:
				rl.reload()
			}
		}
	})
	g.Go(func() error {
		select {
		case <-served:
			if !errors.Is(serveErr, http.ErrServerClosed) {
				return serveErr
			}
		case <-gctx.Done():
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down")
		return stopHTTP()
	})
	return g.Wait()
}

// swapHandler serves every request with the handler last set, so that the
// HTTP port answers while the process is still starting.
type swapHandler struct{ h atomic.Pointer[http.Handler] }

func (s *swapHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

// startingReasons is the /readyz body of a process still starting: each of
// its checks, none passed yet.
func startingReasons(r roles) map[string]string {
	reasons := map[string]string{"nats": "unavailable: starting"}
	if r.processor {
		reasons["store"] = "unavailable: starting"
	}
	return reasons
}

// templateTTL is how long an app's template list from gettemplate is trusted.
const templateTTL = 10 * time.Minute

// openStore connects to mongo.uri, or starts the embedded store under data_dir
// when it is empty. The returned func closes both.
func openStore(ctx context.Context, cfg config.Config, log, storeLog *slog.Logger) (*store.Store, func(), error) {
	uri := cfg.Mongo.URI
	var emb *store.Embedded
	var opts store.Options
	if uri == "" {
		dir := filepath.Join(cfg.DataDir, "store")
		var err error
		emb, err = store.StartEmbedded(store.EmbeddedOptions{
			Listen:        cfg.Mongo.Listen,
			Dir:           dir,
			PostgreSQLURL: cfg.Mongo.PostgreSQLURL,
			Logger:        storeLog,
		})
		if err != nil {
			return nil, nil, err
		}
		uri = emb.URI()
		// This process is the embedded store's only writer: the Guard makes its
		// compare-and-set hold, and Open refuses other processes.
		opts.Guard, opts.Embedded = store.NewGuard(), emb
		log.Info("embedded store started", "uri", uri, "dir", dir)
	}
	st, err := store.Open(ctx, uri, cfg.Mongo.Database, opts)
	if err != nil {
		if emb != nil {
			emb.Close()
		}
		return nil, nil, err
	}
	return st, func() {
		if err := st.Close(context.Background()); err != nil {
			log.Warn("closing store", "err", err)
		}
		if emb != nil {
			emb.Close()
		}
	}, nil
}

// durations converts configured durations.
func durations(ds []config.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.D()
	}
	return out
}

// adminTokens turns the configured admin tokens into the API's.
func adminTokens(cts []config.AdminToken) ([]admin.Token, error) {
	out := make([]admin.Token, 0, len(cts))
	for i, t := range cts {
		role, err := admin.ParseRole(t.Role)
		if err != nil {
			return nil, fmt.Errorf("%w: admin.tokens[%d].role: %v", config.ErrInvalid, i, err)
		}
		out = append(out, admin.Token{Name: t.Name, Secret: t.Token, Role: role, Apps: t.Apps})
	}
	return out, nil
}

func wechatApps(cfg config.Config) []wechat.App {
	apps := make([]wechat.App, 0, len(cfg.Apps))
	for _, a := range cfg.Apps {
		apps = append(apps, wechat.App{AppID: a.AppID, Secret: a.Secret, APIBase: a.APIBase, TokenAPI: a.TokenAPI})
	}
	return apps
}

func gatewayConfig(cfg config.Config) gateway.Config {
	return gateway.Config{
		Apps:           gatewayApps(cfg),
		MaxSkew:        cfg.Callback.MaxSkew.D(),
		MaxBody:        int64(cfg.Callback.MaxBody),
		PublishTimeout: cfg.NATS.PublishTimeout.D(),
	}
}

func gatewayApps(cfg config.Config) []gateway.App {
	apps := make([]gateway.App, 0, len(cfg.Apps))
	for _, a := range cfg.Apps {
		apps = append(apps, gateway.App{
			AppID:                  a.AppID,
			Token:                  a.Token,
			EncodingAESKey:         a.EncodingAESKey,
			PreviousEncodingAESKey: a.PreviousEncodingAESKey,
		})
	}
	return apps
}
