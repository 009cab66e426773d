// Package natstest runs a real NATS server with JetStream inside a test, on a
// random loopback port with its store in the test's temporary directory.
package natstest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wxgate/wxgate/internal/broker"
	"github.com/wxgate/wxgate/internal/checkfor"
	"github.com/wxgate/wxgate/schemas"
)

// Server is an embedded JetStream server owned by one test. Restart and Stop let a
// test take the broker away and bring it back on the same address and store.
type Server struct {
	t    testing.TB
	dir  string
	addr string
	srv  *server.Server
}

// Start starts a server, declares the WECHAT stream and stops everything when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, dir: t.TempDir()}
	s.start("127.0.0.1:0")
	s.addr = s.srv.Addr().String()
	t.Cleanup(s.Stop)
	nc, js := s.Connect()
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := broker.EnsureStream(ctx, js, broker.StreamOptions{Replicas: 1, MaxAge: time.Hour}); err != nil {
		t.Fatalf("EnsureStream: %v", err)
	}
	return s
}

func (s *Server) start(listen string) {
	s.t.Helper()
	srv, err := broker.StartEmbedded(broker.EmbeddedOptions{Listen: listen, StoreDir: s.dir})
	if err != nil {
		s.t.Fatalf("starting nats: %v", err)
	}
	s.srv = srv
}

// URL is the client URL; it stays the same across Restart.
func (s *Server) URL() string { return "nats://" + s.addr }

// Stop shuts the server down; it is safe to call twice.
func (s *Server) Stop() {
	if s.srv == nil {
		return
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.srv = nil
}

// Restart starts the server again on the same address and store directory.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	// The address the clients know may stay busy briefly after shutdown; wait
	// until it can be bound again, since a server started on a busy port only
	// gives up after its whole start-up timeout.
	checkfor.Eventually(s.t, 10*time.Second, 50*time.Millisecond, func() error {
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			return fmt.Errorf("port %s still busy: %w", s.addr, err)
		}
		return ln.Close()
	})
	s.start(s.addr)
}

// Connect returns a client connection closed at the end of the test.
func (s *Server) Connect() (*nats.Conn, jetstream.JetStream) {
	s.t.Helper()
	nc, js, err := broker.Connect(s.URL(), fmt.Sprintf("test-%s", s.t.Name()), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		s.t.Fatalf("connect: %v", err)
	}
	s.t.Cleanup(nc.Close)
	return nc, js
}

// Messages returns every message on the WECHAT stream whose subject matches filter.
func (s *Server) Messages(filter string) []jetstream.RawStreamMsg {
	s.t.Helper()
	_, js := s.Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "WECHAT")
	if err != nil {
		s.t.Fatalf("stream: %v", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		s.t.Fatalf("stream info: %v", err)
	}
	var out []jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue // deleted
		}
		if subjectMatches(filter, m.Subject) {
			out = append(out, *m)
		}
	}
	return out
}

// subjectMatches reports whether subject matches a NATS filter with * and > wildcards.
func subjectMatches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, tok := range f {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) {
			return false
		}
	}
	return len(f) == len(s)
}

// Push puts a raw WeChat push (plaintext XML or JSON) on the streams exactly as
// the gateway does: parsed for app appID, wrapped as a CloudEvent and published
// with its event id as Nats-Msg-Id on its WECHAT subject and on its work
// subject. It returns the event id and the WECHAT stream sequence (the
// sequence of the first copy when the stream already held it).
func Push(t testing.TB, js jetstream.JetStream, appID, raw string) (id string, seq uint64) {
	t.Helper()
	ev, id, err := schemas.ParseEventWithID(appID, []byte(raw))
	if err != nil {
		t.Fatalf("ParseEventWithID(%q) = %v", raw, err)
	}
	ce, err := schemas.InboundCloudEventWithID(ev, id, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(ce)
	if err != nil {
		t.Fatal(err)
	}
	PublishRaw(t, js, schemas.WorkSubject(ev.AppID, ev.OpenID, schemas.WorkInbound), id, data)
	return id, PublishRaw(t, js, ev.Subject(), id, data)
}

// PublishRaw stores data on subject as it is, with msgID as Nats-Msg-Id, and
// returns its stream sequence.
func PublishRaw(t testing.TB, js jetstream.JetStream, subject, msgID string, data []byte) uint64 {
	t.Helper()
	ack, err := js.Publish(context.Background(), subject, data, jetstream.WithMsgID(msgID))
	if err != nil {
		t.Fatalf("publish to %s: %v", subject, err)
	}
	return ack.Sequence
}

// Drained reports, as an error naming what is left, whether the processors
// have settled every message of the work stream: the stream removes a message
// once it is acknowledged, so it is drained when it holds none.
func Drained(js jetstream.JetStream) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, schemas.WorkStreamName)
	if err != nil {
		return err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs > 0 {
		return fmt.Errorf("stream %s holds %d messages (sequences %d to %d)",
			schemas.WorkStreamName, info.State.Msgs, info.State.FirstSeq, info.State.LastSeq)
	}
	return nil
}
