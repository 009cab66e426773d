package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3"; left
// empty, the version comes from the build information Go records.
var version string

// buildVersion is this binary's version with the commit it was built from,
// when the build recorded them: "v1.2.3 (0123456789ab, 2026-01-02T03:04:05Z)".
func buildVersion() string {
	bi, _ := debug.ReadBuildInfo()
	return describeBuild(version, bi)
}

// describeBuild names a build: the -ldflags version if set, else the main
// module's version ("(devel)" for a build from a checkout), then the VCS
// revision and time and whether the tree was modified. bi may be nil.
func describeBuild(ldflagsVersion string, bi *debug.BuildInfo) string {
	v := ldflagsVersion
	if v == "" && bi != nil {
		v = bi.Main.Version
	}
	if v == "" {
		v = "(unknown)"
	}
	if bi == nil {
		return v
	}
	var details []string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			details = append(details, s.Value[:min(12, len(s.Value))])
		case "vcs.time":
			details = append(details, s.Value)
		case "vcs.modified":
			if s.Value == "true" {
				details = append(details, "modified")
			}
		}
	}
	if len(details) == 0 {
		return v
	}
	return v + " (" + strings.Join(details, ", ") + ")"
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: wxgate version (or wxgate --version)\n\nPrints the version, the commit it was built from when known, and the Go toolchain.")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("version: unexpected argument %q", shorten(fs.Arg(0), 40))
	}
	fmt.Fprintf(stdout, "wxgate %s\n", buildVersion())
	if bi, ok := debug.ReadBuildInfo(); ok {
		fmt.Fprintf(stdout, "go %s\n", bi.GoVersion)
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision", "vcs.time", "vcs.modified", "GOOS", "GOARCH", "-tags":
				fmt.Fprintf(stdout, "%s %s\n", s.Key, s.Value)
			}
		}
	}
	return nil
}
