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
	"path/filepath"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/wxgate/wxgate/gateway"
	"github.com/wxgate/wxgate/internal/admin"
	"github.com/wxgate/wxgate/internal/broker"
	"github.com/wxgate/wxgate/internal/config"
	"github.com/wxgate/wxgate/internal/store"
	"github.com/wxgate/wxgate/internal/wechat"
	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
)

// shutdownGrace bounds how long in-flight requests may take to finish on shutdown.
const shutdownGrace = 10 * time.Second

// roles says which parts one process runs.
type roles struct {
	gateway   bool
	processor bool
}

func runServe(ctx context.Context, args []string, _, stderr io.Writer) error {
	cfg, err := loadConfig("serve", args, stderr)
	if err != nil {
		return err
	}
	if cfg.Mongo.URI == "" && !store.EmbeddedBuilt {
		return fmt.Errorf("%w: mongo.uri: is required: this build of wxgate has no embedded store (built with the tag noembedded)", config.ErrInvalid)
	}
	return runNode(ctx, cfg, roles{gateway: true, processor: true}, stderr)
}

func runProcessor(ctx context.Context, args []string, _, stderr io.Writer) error {
	cfg, err := loadConfig("processor", args, stderr)
	if err != nil {
		return err
	}
	switch {
	case cfg.NATS.URL == "":
		return fmt.Errorf("%w: nats.url: is required for 'wxgate processor' (use 'wxgate serve' for the embedded default)", config.ErrInvalid)
	case cfg.Mongo.URI == "":
		return fmt.Errorf("%w: mongo.uri: is required for 'wxgate processor' (use 'wxgate serve' for the embedded default)", config.ErrInvalid)
	}
	return runNode(ctx, cfg, roles{processor: true}, stderr)
}

func runGateway(ctx context.Context, args []string, _, stderr io.Writer) error {
	cfg, err := loadConfig("gateway", args, stderr)
	if err != nil {
		return err
	}
	if cfg.NATS.URL == "" {
		return fmt.Errorf("%w: nats.url: is required for 'wxgate gateway' (use 'wxgate serve' for the embedded default)", config.ErrInvalid)
	}
	return runNode(ctx, cfg, roles{gateway: true}, stderr)
}

// loadConfig parses the command's flags and loads the configuration they name.
func loadConfig(name string, args []string, stderr io.Writer) (config.Config, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML configuration `file` (environment variables WXGATE_* override it)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config.Config{}, fmt.Errorf("%w: see the flags above", errUsage)
		}
		return config.Config{}, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return config.Config{}, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return config.Load(*path, os.Environ())
}

func isConfigError(err error) bool { return errors.Is(err, config.ErrInvalid) }

func newLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// runNode wires and runs the parts named by r until ctx is cancelled, then shuts
// down in reverse order: stop taking requests, finish in-flight work, drain NATS,
// stop the embedded servers.
func runNode(ctx context.Context, cfg config.Config, r roles, logw io.Writer) error {
	log := newLogger(cfg.LogLevel, logw)
	log.Debug("configuration", "config", cfg.String())
	gin.SetMode(gin.ReleaseMode)

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
	if _, err := broker.EnsureStream(ctx, js, broker.StreamOptions{Replicas: cfg.NATS.Replicas, MaxAge: cfg.NATS.MaxAge.D()}); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	engine := gin.New()
	engine.Use(gin.Recovery())
	checks := map[string]gateway.Check{
		"nats": func(ctx context.Context) error {
			_, err := js.Stream(ctx, schemas.StreamName)
			return err
		},
	}

	pub := broker.NewPublisher(js, cfg.NATS.PublishTimeout.D())
	if r.gateway {
		gw, err := gateway.New(gatewayConfig(cfg), pub, log, reg)
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
			MaxDeliver:   cfg.Processor.MaxDeliver,
			SendAttempts: cfg.Processor.SendAttempts,
			Kinds:        templates,
			Sender:       client,
			AppIDs:       appIDs,
		})
		if err != nil {
			return err
		}
		// The stream's storage and every durable consumer's backlog, read from
		// JetStream at scrape time. Processors report them and gateways do not,
		// so that a scrape does not cost a JetStream request per gateway.
		reg.MustRegister(broker.NewStreamCollector(js, schemas.StreamName, broker.DefaultInfoTimeout, log))
		checks["store"] = st.Ping
		admin.New(admin.Config{Tokens: cfg.Admin.Tokens, AppIDs: appIDs}, proc, templates, log).Register(engine)
	}
	gateway.RegisterHealth(engine, checks, reg)

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{
		Handler:           engine,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       90 * time.Second,
	}
	g, gctx := errgroup.WithContext(ctx)
	if proc != nil {
		g.Go(func() error { return proc.Run(gctx) })
	}
	g.Go(func() error {
		log.Info("listening", "addr", ln.Addr().String(), "gateway", r.gateway, "processor", r.processor)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	return g.Wait()
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

func wechatApps(cfg config.Config) []wechat.App {
	apps := make([]wechat.App, 0, len(cfg.Apps))
	for _, a := range cfg.Apps {
		apps = append(apps, wechat.App{AppID: a.AppID, Secret: a.Secret, APIBase: a.APIBase, TokenAPI: a.TokenAPI})
	}
	return apps
}

func gatewayConfig(cfg config.Config) gateway.Config {
	gc := gateway.Config{
		MaxSkew:        cfg.Callback.MaxSkew.D(),
		MaxBody:        int64(cfg.Callback.MaxBody),
		PublishTimeout: cfg.NATS.PublishTimeout.D(),
	}
	for _, a := range cfg.Apps {
		gc.Apps = append(gc.Apps, gateway.App{
			AppID:                  a.AppID,
			Token:                  a.Token,
			EncodingAESKey:         a.EncodingAESKey,
			PreviousEncodingAESKey: a.PreviousEncodingAESKey,
		})
	}
	return gc
}
