//go:build chaos

package main

import (
	"context"
	"flag"
	"os"
	"testing"
)

// TestMain lets the test binary serve as the cluster's NATS servers, as the
// program does: the cluster re-executes its own binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == natsSubcommand {
		os.Exit(runNATSServer(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// TestChaos runs the chaos experiment with the program's defaults: a few
// minutes of load on a cluster of processes on loopback, a kill -9 of a
// gateway, a processor and a NATS server. Run it with make chaos.
func TestChaos(t *testing.T) {
	t.Chdir("../..")
	o := newFlags(flag.NewFlagSet("cluster", flag.ContinueOnError))
	o.mode = "chaos"
	if err := run(context.Background(), *o, os.Stdout); err != nil {
		t.Fatal(err)
	}
}
