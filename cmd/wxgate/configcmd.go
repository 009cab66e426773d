package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/wxgate/wxgate/internal/config"
)

// runConfig is 'wxgate config check': load a configuration as a server
// command would, and print it with its secrets redacted, or every problem.
func runConfig(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: wxgate config check [--config FILE] [--for serve|gateway|processor]")
		fmt.Fprintln(stderr, "\nValidates the configuration (the file and WXGATE_* variables) as the command")
		fmt.Fprintln(stderr, "would load it, then prints it with every secret redacted. Exit 2 names every problem.\n\nflags:")
		fs.PrintDefaults()
	}
	path := fs.String("config", "", "YAML configuration `file` (environment variables WXGATE_* override it)")
	command := fs.String("for", "serve", "check what this `command` needs: serve, gateway or processor")
	if len(args) == 0 || args[0] != "check" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			fs.Usage()
			return errHelp
		}
		fs.Usage()
		return usagef("config: want the subcommand check")
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("config check: unexpected argument %q", shorten(fs.Arg(0), 40))
	}
	switch *command {
	case "serve", "gateway", "processor":
	default:
		return usagef("config check: --for %q: want serve, gateway or processor", shorten(*command, 40))
	}
	cfg, err := config.LoadFor(*path, os.Environ(), commandNeeds(*command))
	if err != nil {
		return err
	}
	if len(cfg.Apps) == 0 {
		fmt.Fprintln(stderr, "wxgate: warning: no apps configured: every callback would be answered 404")
	}
	_, err = io.WriteString(stdout, cfg.String())
	return err
}
