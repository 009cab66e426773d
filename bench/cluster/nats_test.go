package main

import (
	"flag"
	"strconv"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// TestNATSArgs checks that the deployments' NATS configuration, with the
// arguments the cluster gives each node, is a loopback node of a three-node
// JetStream cluster: the file is used as it is and the flags override only
// the addresses, the routes and the store directory.
func TestNATSArgs(t *testing.T) {
	for _, k := range []string{"NATS_WXGATE_PASSWORD", "NATS_DOWNSTREAM_PASSWORD", "NATS_SYS_PASSWORD"} {
		t.Setenv(k, "test-only")
	}
	t.Setenv("NATS_SERVER_NAME", "nats-2")
	c, err := newNATSCluster("unused", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	n := c.nodes[1]
	args := c.args(n, "../../"+natsConfig)
	if args[0] != storeDirFlag {
		t.Fatalf("args start with %q, want %q", args[0], storeDirFlag)
	}
	fs := flag.NewFlagSet("nats-server", flag.ContinueOnError)
	opts, err := server.ConfigureOptions(fs, args[2:], nil, nil, nil)
	if err != nil {
		t.Fatalf("ConfigureOptions(%q) = %v", args[2:], err)
	}
	host, port := splitHostPort(n.client)
	tests := []struct {
		name      string
		got, want any
	}{
		{"server name", opts.ServerName, "nats-2"},
		{"host", opts.Host, host},
		{"port", strconv.Itoa(opts.Port), port},
		{"jetstream", opts.JetStream, true},
		{"cluster name", opts.Cluster.Name, "wxgate"},
		{"routes", len(opts.Routes), 3},
		{"store dir from the file, replaced after", opts.StoreDir, "/data/jetstream"},
		{"accounts", len(opts.Accounts) >= 2, true},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}
