package main

import (
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestHelpExitsZero(t *testing.T) {
	tests := [][]string{
		{"help"}, {"-h"}, {"--help"}, {"help", "serve"}, {"help", "config"},
		{"serve", "--help"}, {"gateway", "-h"}, {"processor", "--help"}, {"sim", "--help"},
		{"version", "--help"}, {"config", "--help"}, {"config", "check", "--help"},
		{"send", "--help"}, {"status", "-h"}, {"consent", "--help"}, {"audit", "--help"},
		{"dlq", "--help"}, {"resend", "--help"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, _, stderr := runOnce(t, args...)
			if code != 0 || !strings.Contains(stderr, "usage: wxgate") {
				t.Errorf("wxgate %s = exit %d, stderr:\n%s\nwant exit 0 with the usage", strings.Join(args, " "), code, stderr)
			}
		})
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	tests := [][]string{{}, {"bogus"}, {"serve", "--bogus"}, {"serve", "extra"}, {"version", "extra"}, {"config"}, {"config", "lint"}, {"config", "check", "--for", "sim"}}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			if code, _, stderr := runOnce(t, args...); code != 2 {
				t.Errorf("wxgate %s = exit %d, want 2; stderr:\n%s", strings.Join(args, " "), code, stderr)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	_, long, _ := runOnce(t, "version")
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		code, stdout, stderr := runOnce(t, args...)
		if code != 0 || stdout != long {
			t.Errorf("wxgate %s = exit %d, %q (stderr %q); want exit 0 and %q", args[0], code, stdout, stderr, long)
		}
	}
	first, _, _ := strings.Cut(long, "\n")
	if !strings.HasPrefix(first, "wxgate ") || first == "wxgate dev" || first == "wxgate " {
		t.Errorf("version line = %q, want the build's version", first)
	}
}

func TestDescribeBuild(t *testing.T) {
	vcs := func(settings ...string) []debug.BuildSetting {
		var out []debug.BuildSetting
		for i := 0; i+1 < len(settings); i += 2 {
			out = append(out, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return out
	}
	tests := []struct {
		name    string
		ldflags string
		bi      *debug.BuildInfo
		want    string
	}{
		{"no build info", "", nil, "(unknown)"},
		{"ldflags only", "v1.2.3", nil, "v1.2.3"},
		{"module version", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.4.0"}}, "v0.4.0"},
		{"checkout with vcs", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
			Settings: vcs("vcs.revision", "0123456789abcdef0123", "vcs.time", "2026-01-02T03:04:05Z", "vcs.modified", "false")},
			"(devel) (0123456789ab, 2026-01-02T03:04:05Z)"},
		{"modified tree", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
			Settings: vcs("vcs.revision", "abc", "vcs.modified", "true")},
			"(devel) (abc, modified)"},
		{"ldflags wins", "v2.0.0", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
			Settings: vcs("vcs.revision", "0123456789abcdef")},
			"v2.0.0 (0123456789ab)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := describeBuild(tt.ldflags, tt.bi); got != tt.want {
				t.Errorf("describeBuild(%q, ...) = %q, want %q", tt.ldflags, got, tt.want)
			}
		})
	}
}

// TestVersionFromLdflags builds wxgate as a release would, with -ldflags
// "-X main.version=...", and checks both spellings of the command.
func TestVersionFromLdflags(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "wxgate")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=v9.8.7-test", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, arg := range []string{"version", "--version"} {
		out, err := exec.Command(bin, arg).Output()
		if err != nil || !strings.HasPrefix(string(out), "wxgate v9.8.7-test") {
			t.Errorf("wxgate %s = %v, %q; want it to start with wxgate v9.8.7-test", arg, err, out)
		}
	}
	if out, err := exec.Command(bin, "serve", "--help").CombinedOutput(); err != nil {
		t.Errorf("wxgate serve --help = %v, %q; want exit 0", err, out)
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := serveConfig(t, dir, filepath.Join(dir, "data"), appAEntry)
	code, stdout, stderr := runOnce(t, "config", "check", "--config", good)
	if code != 0 {
		t.Fatalf("config check (good) = exit %d, stderr:\n%s", code, stderr)
	}
	for _, want := range []string{"appid: " + appA, "secret: REDACTED", "token: REDACTED", "token: REDACTED"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("config check output lacks %q:\n%s", want, stdout)
		}
	}
	for _, secret := range []string{"app-a-secret-0001", tokenA, "serve-test-admin-token"} {
		if strings.Contains(stdout+stderr, secret) {
			t.Errorf("config check shows the secret %q:\n%s%s", secret, stdout, stderr)
		}
	}

	bad := filepath.Join(dir, "bad.yaml")
	writeConfig(t, bad, "listen: nowhere\nadmin:\n  tokens: [REPLACE_ME]\napps:\n  - appid: wxba5fad812f8e6fb9\n    token: AAAAA\n    encodingaeskey: x\n")
	code, stdout, stderr = runOnce(t, "config", "check", "--config", bad)
	if code != 2 || stdout != "" {
		t.Errorf("config check (bad) = exit %d with output %q, want exit 2 and nothing on stdout", code, stdout)
	}
	for _, want := range []string{
		"\n  apps[0].encodingaeskey: unknown key; did you mean apps[0].encoding_aes_key?",
		"\n  listen: must be host:port",
		"\n  admin.tokens[0].token: is a placeholder",
		"\n  apps[0].secret: is required",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("config check (bad) stderr lacks %q:\n%s", want, stderr)
		}
	}

	// A gateway needs no AppSecret but a nats.url.
	noSecret := filepath.Join(dir, "gateway.yaml")
	writeConfig(t, noSecret, "nats:\n  url: nats://127.0.0.1:4222\napps:\n  - appid: wxba5fad812f8e6fb9\n    token: AAAAA\n")
	if code, _, stderr := runOnce(t, "config", "check", "--for", "gateway", "--config", noSecret); code != 0 {
		t.Errorf("config check --for gateway = exit %d, stderr:\n%s", code, stderr)
	}
	if code, _, stderr := runOnce(t, "config", "check", "--config", noSecret); code != 2 || !strings.Contains(stderr, "apps[0].secret") {
		t.Errorf("config check (serve) without a secret = exit %d, stderr:\n%s\nwant exit 2 naming apps[0].secret", code, stderr)
	}
}
