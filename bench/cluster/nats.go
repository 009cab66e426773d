package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/wxgate/wxgate/bench/internal/proc"
)

// natsConfig is the NATS configuration the deployments use; the cluster runs
// it as it is, with nats-server's own command-line flags for what differs on
// loopback: the listen addresses, the store directory and the routes.
const natsConfig = "deployments/nats/nats-server.conf"

// natsSubcommand is the first argument that makes this program a NATS server:
// the cluster re-executes itself, so nothing but Go needs installing.
const natsSubcommand = "nats-server"

// storeDirFlag replaces the configuration file's jetstream.store_dir:
// nats-server refuses its own -sd flag next to a store_dir in the file
// ("Duplicate 'store_dir' configuration"), so it must come first and is
// applied after the file is read.
const storeDirFlag = "-store-dir-override"

// runNATSServer is nats-server's main: the same flags, the same configuration
// file handling, the same signals (SIGTERM stops it, SIGUSR2 enters lame duck
// mode), plus storeDirFlag DIR as the first two arguments.
func runNATSServer(args []string) int {
	var storeDir string
	if len(args) >= 2 && args[0] == storeDirFlag {
		storeDir, args = args[1], args[2:]
	}
	fs := flag.NewFlagSet(natsSubcommand, flag.ExitOnError)
	opts, err := server.ConfigureOptions(fs, args, server.PrintServerAndExit, fs.Usage, server.PrintTLSHelpAndDie)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nats-server:", err)
		return 1
	}
	if storeDir != "" {
		opts.StoreDir = storeDir
	}
	s, err := server.NewServer(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "nats-server:", err)
		return 1
	}
	s.ConfigureLogger()
	if err := server.Run(s); err != nil {
		fmt.Fprintln(os.Stderr, "nats-server:", err)
		return 1
	}
	s.WaitForShutdown()
	return 0
}

// natsNode is one of the three NATS servers.
type natsNode struct {
	name                    string // server_name, nats-1..3
	client, monitor, routes string // host:port each
	storeDir                string
	p                       *proc.Proc
	starts                  int
}

// natsCluster is three NATS servers with JetStream, routed to each other.
type natsCluster struct {
	nodes     []*natsNode
	passwords map[string]string // env var -> value
	exe, dir  string
}

// newNATSCluster picks the ports of three nodes. A port taken between the
// pick and the start makes that node fail to start, and start says so.
func newNATSCluster(exe, dir string) (*natsCluster, error) {
	c := &natsCluster{exe: exe, dir: dir, passwords: map[string]string{}}
	for _, k := range []string{"NATS_WXGATE_PASSWORD", "NATS_DOWNSTREAM_PASSWORD", "NATS_SYS_PASSWORD"} {
		c.passwords[k] = randomSecret()
	}
	for i := 1; i <= 3; i++ {
		n := &natsNode{name: "nats-" + strconv.Itoa(i), storeDir: filepath.Join(dir, "nats-"+strconv.Itoa(i))}
		for _, p := range []*string{&n.client, &n.monitor, &n.routes} {
			a, err := proc.FreeLoopbackAddr()
			if err != nil {
				return nil, err
			}
			*p = a
		}
		c.nodes = append(c.nodes, n)
	}
	return c, nil
}

// start starts every node and waits until each reports JetStream healthy.
func (c *natsCluster) start(ctx context.Context) error {
	for _, n := range c.nodes {
		if err := c.startNode(n); err != nil {
			return err
		}
	}
	for _, n := range c.nodes {
		if err := n.p.WaitReady(ctx, c.healthURL(n)); err != nil {
			return err
		}
	}
	return nil
}

// healthURL is the node's JetStream health check: 200 once it has caught up
// with the cluster's meta leader and its streams.
func (c *natsCluster) healthURL(n *natsNode) string {
	return "http://" + n.monitor + "/healthz"
}

// startNode starts n with the deployments' configuration file.
func (c *natsCluster) startNode(n *natsNode) error {
	cmd := exec.Command(c.exe, append([]string{natsSubcommand}, c.args(n, natsConfig)...)...)
	cmd.Env = append(os.Environ(), "NATS_SERVER_NAME="+n.name)
	for k, v := range c.passwords {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	n.starts++
	p, err := proc.New(logName(n.name, n.starts), cmd, c.dir)
	if err != nil {
		return err
	}
	ownGroup(cmd)
	cmd.Stdout = p.Log
	p.Addr = "nats://" + n.client
	if err := p.Start(); err != nil {
		return err
	}
	n.p = p
	return nil
}

// args are the arguments of n's NATS server: the configuration file at
// config, and what differs on loopback.
func (c *natsCluster) args(n *natsNode, config string) []string {
	var routes []string
	for _, o := range c.nodes {
		routes = append(routes, "nats-route://"+o.routes)
	}
	host, port := splitHostPort(n.client)
	_, mport := splitHostPort(n.monitor)
	return []string{storeDirFlag, n.storeDir,
		"-c", config,
		"-a", host, "-p", port, "-m", mport,
		"--cluster", "nats://" + n.routes,
		"--routes", strings.Join(routes, ","),
	}
}

// restart starts a node that was stopped or killed, on its ports and files.
func (c *natsCluster) restart(ctx context.Context, n *natsNode) error {
	if err := c.startNode(n); err != nil {
		return err
	}
	return n.p.WaitReady(ctx, c.healthURL(n))
}

// url is wxgate's nats.url: every node, with the wxgate user's credentials.
func (c *natsCluster) url() string {
	return c.userURL("wxgate", c.passwords["NATS_WXGATE_PASSWORD"])
}

func (c *natsCluster) userURL(user, password string) string {
	var us []string
	for _, n := range c.nodes {
		us = append(us, "nats://"+user+":"+password+"@"+n.client)
	}
	return strings.Join(us, ",")
}

// stop stops every node that runs, gracefully.
func (c *natsCluster) stop() {
	for _, n := range c.nodes {
		if n.p != nil {
			n.p.Stop()
		}
	}
}

// kill sends SIGKILL to p and waits until it has gone.
func kill(p *proc.Proc) error {
	if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	deadline := time.Now().Add(proc.StopTimeout)
	for !p.Exited() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not die after SIGKILL", p.Name)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

func splitHostPort(a string) (string, string) {
	i := strings.LastIndexByte(a, ':')
	return a[:i], a[i+1:]
}

// randomSecret is a password for one run.
func randomSecret() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
