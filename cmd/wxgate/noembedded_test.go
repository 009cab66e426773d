package main

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildWithoutEmbeddedStore builds wxgate as the container image does, with
// the build tag noembedded, and checks that the binary leaves FerretDB out and
// that 'serve' without mongo.uri refuses to start, naming the key (exit 2).
func TestBuildWithoutEmbeddedStore(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "wxgate")
	build := exec.Command("go", "build", "-tags", "noembedded", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags noembedded: %v\n%s", err, out)
	}
	deps, err := exec.Command("go", "list", "-tags", "noembedded", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(deps), "FerretDB") {
		t.Errorf("the noembedded build still links FerretDB")
	}
	out, err := exec.Command(bin, "serve").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "mongo.uri") {
		t.Errorf("serve without mongo.uri = %v, output %q; want exit 2 naming mongo.uri", err, out)
	}
}
