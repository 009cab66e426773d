// Command wxgate is the WeChat callback gateway and event processor.
//
// Usage:
//
//	wxgate serve [--config FILE]        gateway, processor and admin API in one process
//	wxgate gateway --config FILE        the callback gateway alone
//	wxgate processor --config FILE      the processor and admin API alone
//	wxgate sim [--config FILE]          a WeChat platform simulator
//	wxgate send|status|consent|audit|dlq|resend  operator commands over the admin API
//	wxgate config check [--config FILE] validate a configuration, print it redacted
//	wxgate version (or --version)       version and build info
//	wxgate help [COMMAND]               this list, or a command's flags
//
// Exit codes: 0 success (and help), 1 runtime failure, 2 bad usage or invalid
// configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// errUsage marks a command line that cannot be run; main exits 2.
var errUsage = errors.New("usage")

// errHelp marks a command that printed its usage because it was asked to
// (-h, --help); main exits 0.
var errHelp = errors.New("help requested")

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
		{"config", "'config check': validate a configuration and print it with secrets redacted", runConfig},
		{"version", "print version and build info (also --version)", runVersion},
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
	switch {
	case len(args) == 0:
		usage(stderr)
		return 2
	case args[0] == "-h" || args[0] == "-help" || args[0] == "--help":
		usage(stderr)
		return 0
	case args[0] == "help":
		if len(args) == 1 {
			usage(stderr)
			return 0
		}
		// "wxgate help serve" is "wxgate serve --help".
		return run(ctx, []string{args[1], "--help"}, stdout, stderr)
	case args[0] == "-version" || args[0] == "--version":
		args = append([]string{"version"}, args[1:]...)
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil, errors.Is(err, errHelp):
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
	fmt.Fprintln(w, "\nRun 'wxgate help <command>' or 'wxgate <command> --help' for a command's flags.")
}

// parseFlags parses args with fs: -h or --help is errHelp (fs has printed the
// usage), any other failure a usage error.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}
