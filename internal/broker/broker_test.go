package broker

import (
	"errors"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStartEmbeddedPortInUse checks that a taken client port is reported as
// such, at once, rather than as a server that never became ready.
func TestStartEmbeddedPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	start := time.Now()
	s, err := StartEmbedded(EmbeddedOptions{Listen: ln.Addr().String(), StoreDir: filepath.Join(t.TempDir(), "nats")})
	if err == nil {
		s.Shutdown()
		t.Fatalf("StartEmbedded(%s) on a taken port = nil error", ln.Addr())
	}
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "listen "+ln.Addr().String()) {
		t.Errorf("StartEmbedded(%s) = %v, want the address named and in use", ln.Addr(), err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("StartEmbedded took %v to fail, want at once", d)
	}
}

func TestStartEmbeddedFreePort(t *testing.T) {
	s, err := StartEmbedded(EmbeddedOptions{Listen: "127.0.0.1:0", StoreDir: filepath.Join(t.TempDir(), "nats")})
	if err != nil {
		t.Fatalf("StartEmbedded(port 0) = %v", err)
	}
	s.Shutdown()
	s.WaitForShutdown()
}
