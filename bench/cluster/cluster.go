package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wxgate/wxgate/bench/internal/proc"
	"github.com/wxgate/wxgate/internal/sim"
	"github.com/wxgate/wxgate/internal/store"
)

// The app the cluster serves: compatible mode with JSON pushes, so that the
// balancer can tell which event each push carries, and one one-time template.
const (
	appID      = "wxba5fad812f8e6fb9"
	appSecret  = "cluster-secret"
	appToken   = "AAAAA"
	aesKey     = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	templateID = "ORDER_SHIPPED_00000000000000000000000000000"
	adminToken = "cluster-admin-token"
	database   = "wxgate"
)

// startAttempts is how many ports a child is tried on: a port picked free
// may be taken before the child binds it, and then the child fails to start.
const startAttempts = 3

// clusterOptions say what to start.
type clusterOptions struct {
	bin        string // wxgate binary
	exe        string // this program, re-executed as the NATS servers
	dir        string // everything's files and logs
	gateways   int
	processors int
	workers    int           // processor.workers; 0 for the default
	latency    time.Duration // the simulator's latency on every send
	sqlite     bool          // the store on SQLite even when PostgreSQL is installed
}

// cluster is everything `make cluster` runs.
type cluster struct {
	o          clusterOptions
	nats       *natsCluster
	pg         *postgres // nil on SQLite
	storeKind  string
	emb        *store.Embedded
	gateways   []*node
	processors []*node
	wc         *sim.Sim
	simSrv     *http.Server
	simURL     string
	lb         *balancer
	lbSrv      *http.Server
	lbURL      string
}

// node is one wxgate gateway or processor process.
type node struct {
	name, role, listen, cfgPath string
	p                           *proc.Proc
	starts                      int // how many times it was started
}

// url is the node's base URL.
func (n *node) url() string { return "http://" + n.listen }

// startCluster starts the NATS cluster, the store, the simulator and the
// balancer in front of the gateways, then the gateways and the processors.
// On an error it stops what it started.
func startCluster(ctx context.Context, o clusterOptions) (_ *cluster, err error) {
	c := &cluster{o: o}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	if c.nats, err = newNATSCluster(o.exe, o.dir); err != nil {
		return nil, err
	}
	if err := c.nats.start(ctx); err != nil {
		return nil, err
	}
	if err := c.startStore(ctx); err != nil {
		return nil, err
	}
	if err := c.startSim(); err != nil {
		return nil, err
	}
	for i := range o.gateways {
		if _, err := c.addNode(ctx, "gateway", fmt.Sprintf("gateway-%d", i+1)); err != nil {
			return nil, err
		}
	}
	c.lb.setBackends(c.gatewayURLs())
	for i := range o.processors {
		if _, err := c.addNode(ctx, "processor", fmt.Sprintf("processor-%d", i+1)); err != nil {
			return nil, err
		}
	}
	// The first processor has created the collections; their lookups by _id
	// use an index from now on, as in wxgate serve.
	if err := c.emb.IndexIDs(ctx, database, store.Collections()); err != nil {
		return nil, err
	}
	return c, nil
}

// startStore starts the embedded FerretDB in this process, on a throwaway
// PostgreSQL cluster when Debian's PostgreSQL is installed, else on SQLite.
// Every processor reaches it over the wire protocol; no process holds a
// Guard, so the store's compare-and-set is FerretDB's own.
func (c *cluster) startStore(ctx context.Context) error {
	var pgURL string
	c.storeKind = "FerretDB on SQLite (" + filepath.Join(c.o.dir, "store") + ")"
	if bin := pgBinDir(); bin != "" && !c.o.sqlite {
		pg, u, err := startPostgres(ctx, bin)
		if err != nil {
			return err
		}
		c.pg, pgURL = pg, u
		c.storeKind = "FerretDB on PostgreSQL (" + filepath.Dir(bin) + ", socket in " + pg.dir + ")"
	}
	logf, err := os.Create(filepath.Join(c.o.dir, "store.log"))
	if err != nil {
		return err
	}
	emb, err := store.StartEmbedded(store.EmbeddedOptions{
		Listen:        "127.0.0.1:0",
		Dir:           filepath.Join(c.o.dir, "store"),
		PostgreSQLURL: pgURL,
		Logger:        slog.New(slog.NewJSONHandler(logf, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		return err
	}
	c.emb = emb
	return nil
}

// startSim starts the WeChat simulator on its own port, pushing to the
// balancer, which alternates between the gateways.
func (c *cluster) startSim() error {
	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	lbLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		simLn.Close()
		return err
	}
	c.simURL, c.lbURL = "http://"+simLn.Addr().String(), "http://"+lbLn.Addr().String()
	c.wc, err = sim.New(sim.Config{
		Apps: []sim.AppConfig{{
			AppID: appID, Secret: appSecret, Token: appToken, EncodingAESKey: aesKey,
			Mode: sim.ModeCompatible, Format: sim.FormatJSON, PushURL: c.lbURL + "/wechat/" + appID,
			Templates: []sim.Template{{ID: templateID, Title: "Order shipped", Type: sim.TemplateOneTime,
				Content: "商品名称:{{thing1.DATA}}\n发货时间:{{time2.DATA}}"}},
		}},
		// Pushes that fail while a gateway or NATS node is down are retried
		// for about a minute, not WeChat's three times, so that every event
		// arrives and the counts can be compared.
		PushRetries:       240,
		PushRetryInterval: 250 * time.Millisecond,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		simLn.Close()
		lbLn.Close()
		return err
	}
	if err := c.wc.SetFaults(sim.Faults{LatencyMS: int(c.o.latency.Milliseconds())}); err != nil {
		return err
	}
	h := c.wc.Handler()
	c.simSrv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// WeChat carries out a send whose caller has hung up (a killed
		// processor); only the answer is lost.
		h.ServeHTTP(w, r.WithContext(context.WithoutCancel(r.Context())))
	})}
	go func() { _ = c.simSrv.Serve(simLn) }()
	c.lb = newBalancer()
	c.lbSrv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: c.lb}
	go func() { _ = c.lbSrv.Serve(lbLn) }()
	return nil
}

// addNode starts a new gateway or processor named name and waits until it is ready.
func (c *cluster) addNode(ctx context.Context, role, name string) (*node, error) {
	n := &node{name: name, role: role, cfgPath: filepath.Join(c.o.dir, name+".yaml")}
	var err error
	for range startAttempts {
		if n.listen, err = proc.FreeLoopbackAddr(); err != nil {
			return nil, err
		}
		if err = c.startNode(ctx, n); err == nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if role == "gateway" {
		c.gateways = append(c.gateways, n)
	} else {
		c.processors = append(c.processors, n)
	}
	return n, nil
}

// startNode writes n's configuration and starts it on n.listen.
func (c *cluster) startNode(ctx context.Context, n *node) error {
	cfg := "listen: " + n.listen + "\n" +
		"data_dir: " + filepath.Join(c.o.dir, n.name) + "\n" +
		"log_level: info\n" +
		"nats:\n  url: " + c.nats.url() + "\n  replicas: 3\n" +
		"mongo:\n  uri: " + c.emb.URI() + "\n  database: " + database + "\n" +
		"admin:\n  tokens: [" + adminToken + "]\n" +
		"apps:\n" +
		"  - appid: " + appID + "\n" +
		"    secret: " + appSecret + "\n" +
		"    token: " + appToken + "\n" +
		"    encoding_aes_key: " + aesKey + "\n" +
		"    api_base: " + c.simURL + "\n"
	if c.o.workers > 0 {
		cfg += fmt.Sprintf("processor:\n  workers: %d\n", c.o.workers)
	}
	if err := os.WriteFile(n.cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	cmd := exec.Command(c.o.bin, n.role, "--config", n.cfgPath)
	// WXGATE_* variables in the caller's environment would override the file.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WXGATE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	n.starts++
	p, err := proc.New(logName(n.name, n.starts), cmd, c.o.dir)
	if err != nil {
		return err
	}
	ownGroup(cmd)
	cmd.Stdout = p.Log
	p.Addr = n.url()
	if err := p.Start(); err != nil {
		return err
	}
	n.p = p
	return p.WaitReady(ctx, p.Addr+"/readyz")
}

// restart starts a killed or stopped node again on its address.
func (c *cluster) restart(ctx context.Context, n *node) error {
	return c.startNode(ctx, n)
}

// logName names the log of a process's start-th start: name.log, then
// name.2.log, ..., so that a restart keeps the killed process's log.
func logName(name string, start int) string {
	if start == 1 {
		return name
	}
	return fmt.Sprintf("%s.%d", name, start)
}

// ownGroup puts a child in a process group of its own: Ctrl-C reaches this
// program alone, which then stops the children in order.
func ownGroup(cmd *exec.Cmd) { cmd.SysProcAttr.Setpgid = true }

func (c *cluster) gatewayURLs() []string {
	var us []string
	for _, g := range c.gateways {
		us = append(us, g.url())
	}
	return us
}

// allReady reports whether every NATS node's health check and every wxgate
// process's /readyz answer 200.
func (c *cluster) allReady(ctx context.Context) bool {
	for _, n := range c.nats.nodes {
		if !proc.Ready(ctx, c.nats.healthURL(n)) {
			return false
		}
	}
	for _, n := range append(append([]*node(nil), c.gateways...), c.processors...) {
		if !proc.Ready(ctx, n.url()+"/readyz") {
			return false
		}
	}
	return true
}

// stop stops everything, in the reverse order of the start: the simulator's
// pushes, the gateways and processors (SIGTERM), the NATS servers, the store
// and PostgreSQL.
func (c *cluster) stop() {
	if c.wc != nil {
		c.wc.Close()
	}
	if c.lbSrv != nil {
		_ = c.lbSrv.Close()
	}
	if c.simSrv != nil {
		_ = c.simSrv.Close()
	}
	for _, n := range append(append([]*node(nil), c.gateways...), c.processors...) {
		if n.p != nil {
			n.p.Stop()
		}
	}
	if c.nats != nil {
		c.nats.stop()
	}
	if c.emb != nil {
		c.emb.Close()
	}
	if c.pg != nil {
		c.pg.stop()
	}
}

// print writes where everything listens.
func (c *cluster) print(out io.Writer) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tPID\tLISTENS\tLOG")
	for _, n := range c.nats.nodes {
		fmt.Fprintf(tw, "%s\t%d\tnats://%s (routes %s, monitoring http://%s)\t%s\n", n.name, n.p.Pid(), n.client, n.routes, n.monitor, n.p.LogPath)
	}
	for _, n := range c.gateways {
		fmt.Fprintf(tw, "%s\t%d\t%s/wechat/%s\t%s\n", n.name, n.p.Pid(), n.url(), appID, n.p.LogPath)
	}
	for _, n := range c.processors {
		fmt.Fprintf(tw, "%s\t%d\t%s/v1 (admin API)\t%s\n", n.name, n.p.Pid(), n.url(), n.p.LogPath)
	}
	fmt.Fprintf(tw, "store\t%d\t%s\t%s\n", os.Getpid(), c.emb.URI(), filepath.Join(c.o.dir, "store.log"))
	fmt.Fprintf(tw, "simulator\t%d\t%s (WeChat API, /sim control API)\t-\n", os.Getpid(), c.simURL)
	fmt.Fprintf(tw, "balancer\t%d\t%s/wechat/%s (alternates between the gateways)\t-\n", os.Getpid(), c.lbURL, appID)
	_ = tw.Flush()
	fmt.Fprintf(out, "\nstore: %s, database %s\n", c.storeKind, database)
	fmt.Fprintf(out, "NATS: %s, stream and KV at R3; wxgate user's URL: %s\n", natsConfig, c.nats.url())
	fmt.Fprintf(out, "admin token: %s (Authorization: Bearer %s); app %s, template %s\n", adminToken, adminToken, appID, templateID)
	fmt.Fprintf(out, "files and logs: %s\n", c.o.dir)
}
