package natstest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/wxgate/wxgate/internal/checkfor"
)

// Cluster is a JetStream cluster of real NATS servers in the test's process,
// each on random loopback ports with its store in the test's temporary
// directory, as a deployment of three nodes runs them.
type Cluster struct {
	t     testing.TB
	nodes []*server.Server
}

// StartCluster starts n clustered JetStream servers, waits until they have
// elected a JetStream meta leader, and stops them when the test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t, nodes: make([]*server.Server, n)}
	// The store directories are made before the servers' cleanup is
	// registered, so that they are removed after the servers stopped.
	dirs := make([]string, n)
	for i := range dirs {
		dirs[i] = t.TempDir()
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.Stop(i)
		}
	})
	// Each node binds a free route port and routes to the nodes started
	// before it; the cluster shares the rest (implicit routes).
	var routes []string
	for i := range n {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       server.RANDOM_PORT,
			JetStream:  true,
			StoreDir:   dirs[i],
			NoSigs:     true,
			NoLog:      true,
			Cluster:    server.ClusterOpts{Name: "wxgate-test", Host: "127.0.0.1", Port: server.RANDOM_PORT},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),
		}
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
		go s.Start() // Shutdown (in Stop) ends it
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("node %d not ready after 10s", i+1)
		}
		c.nodes[i] = s
		routes = append(routes, "nats-route://"+s.ClusterAddr().String())
	}
	checkfor.Eventually(t, 30*time.Second, 50*time.Millisecond, func() error {
		for i, s := range c.nodes {
			if !s.JetStreamIsClustered() || !s.JetStreamIsCurrent() {
				return fmt.Errorf("node %d: JetStream not current with the cluster", i+1)
			}
		}
		return nil
	})
	return c
}

// URL is node i's client URL (i counts from 0).
func (c *Cluster) URL(i int) string { return c.nodes[i].ClientURL() }

// URLs is every node's client URL, comma-separated, as a client is given them.
func (c *Cluster) URLs() string {
	urls := make([]string, 0, len(c.nodes))
	for _, s := range c.nodes {
		if s != nil {
			urls = append(urls, s.ClientURL())
		}
	}
	return strings.Join(urls, ",")
}

// Stop shuts node i down; it is safe to call twice.
func (c *Cluster) Stop(i int) {
	if s := c.nodes[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.nodes[i] = nil
	}
}
