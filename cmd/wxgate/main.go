// Command wxgate is the WeChat callback gateway and event processor.
//
// Usage:
//
//	wxgate serve [--config FILE]        gateway, processor and admin API in one process
//	wxgate gateway --config FILE        the callback gateway alone
//	wxgate processor --config FILE      the processor and admin API alone
//	wxgate sim [--config FILE]          a WeChat platform simulator
//	wxgate send|status|consent|audit|dlq  operator commands over the admin API
//	wxgate version                      version and build info
//
// Exit codes: 0 success, 1 runtime failure, 2 bad usage or invalid configuration.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// errUsage marks a command line that cannot be run; main exits 2.
var errUsage = errors.New("usage")

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return append([]command{
		{"serve", "run gateway, processor and admin API in one process (embedded NATS and store by default)", runServe},
		{"gateway", "run the callback gateway alone (needs nats.url)", runGateway},
		{"processor", "run the processor and admin API alone (needs nats.url and mongo.uri)", runProcessor},
		{"sim", "run a WeChat platform simulator for the configured apps", runSim},
		{"version", "print version and build info", runVersion},
	}, opsCommands()...)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and turns its error into an exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, errUsage), isConfigError(err):
			fmt.Fprintln(stderr, "wxgate:", err)
			return 2
		default:
			fmt.Fprintln(stderr, "wxgate:", err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "wxgate: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: wxgate <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'wxgate <command> -h' for a command's flags.")
}
