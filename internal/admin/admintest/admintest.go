// Package admintest runs the admin API inside a test on a real processor, a real
// embedded JetStream server and the embedded MongoDB-compatible store, behind a
// real HTTP server.
package admintest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxgate/wxgate/internal/admin"
	"github.com/wxgate/wxgate/internal/broker"
	"github.com/wxgate/wxgate/internal/broker/natstest"
	"github.com/wxgate/wxgate/internal/checkfor"
	"github.com/wxgate/wxgate/internal/store"
	"github.com/wxgate/wxgate/internal/store/storetest"
	"github.com/wxgate/wxgate/processor"
)

// Defaults of Options.
const (
	AppID = "wxba5fad812f8e6fb9"
	Token = "test-admin-token"
)

// Every wait for the processor polls every pollEvery for at most waitTime.
const (
	waitTime  = 30 * time.Second
	pollEvery = 25 * time.Millisecond
)

// Options configures Start; zero fields take the defaults above.
type Options struct {
	// Tokens are accepted bearer tokens with the role admin on all apps,
	// named as the configuration names bare tokens (admin.tokens[0], ...);
	// nil means []string{Token}, and an empty non-nil slice configures none.
	Tokens []string
	// Scoped are further accepted tokens, each with its own name and scope.
	Scoped []admin.Token
	// AppIDs are the served apps; nil means []string{AppID}.
	AppIDs []string
	// Templates is passed to admin.New.
	Templates admin.Templates
	// Log receives the API's and the processor's log lines; nil discards them.
	Log io.Writer
}

// Server is the API under test and what stands behind it. It belongs to one
// test; its methods must be called from that test's goroutine.
type Server struct {
	// URL is the HTTP server's base URL, without /v1.
	URL string
	// Store is the processor's store and the API's audit log.
	Store *store.Store
	// DB is the embedded store itself, which a test may stop.
	DB   *storetest.Server
	Proc *processor.Processor
	JS   jetstream.JetStream

	t testing.TB
}

// Start starts everything; it is all stopped when the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Tokens == nil {
		o.Tokens = []string{Token}
	}
	if o.AppIDs == nil {
		o.AppIDs = []string{AppID}
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	ns := natstest.Start(t)
	db := storetest.Start(t)
	st := db.Open("wxgate_admin_test")
	_, js := ns.Connect()
	logger := slog.New(slog.NewTextHandler(o.Log, nil))
	proc, err := processor.New(st, js, broker.NewPublisher(js, 5*time.Second), logger, prometheus.NewRegistry(),
		processor.Config{Workers: 4, MaxDeliver: 3, AckWait: 10 * time.Second})
	if err != nil {
		t.Fatalf("processor.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- proc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processor.Run = %v", err)
		}
	})

	gin.SetMode(gin.ReleaseMode)
	engine := gin.New()
	tokens := make([]admin.Token, 0, len(o.Tokens)+len(o.Scoped))
	for i, tok := range o.Tokens {
		tokens = append(tokens, admin.Token{Name: fmt.Sprintf("admin.tokens[%d]", i), Secret: tok, Role: admin.RoleAdmin, Apps: []string{admin.AllApps}})
	}
	tokens = append(tokens, o.Scoped...)
	admin.New(admin.Config{Tokens: tokens, AppIDs: o.AppIDs}, proc, o.Templates, st, logger).Register(engine)
	hs := httptest.NewServer(engine)
	t.Cleanup(hs.Close)
	return &Server{URL: hs.URL, Store: st, DB: db, Proc: proc, JS: js, t: t}
}

// Push publishes a raw WeChat push for appID the way the gateway does and
// returns its event id.
func (s *Server) Push(appID, raw string) string {
	s.t.Helper()
	id, _ := natstest.Push(s.t, s.JS, appID, raw)
	return id
}

// PublishRaw stores data on the stream as it is, for poison messages.
func (s *Server) PublishRaw(subject, msgID string, data []byte) {
	s.t.Helper()
	natstest.PublishRaw(s.t, s.JS, subject, msgID, data)
}

// Drained waits until the processor has settled every inbound event published so far.
func (s *Server) Drained() {
	s.t.Helper()
	checkfor.Eventually(s.t, waitTime, pollEvery, func() error {
		return natstest.Drained(s.JS)
	})
}

// PopupAccept returns a subscribe_msg_popup_event push in which openID accepts templateID.
func PopupAccept(openID, templateID string, createTime int64) string {
	return fmt.Sprintf(`{"ToUserName":"gh_97417a04a28d","FromUserName":%q,"CreateTime":%d,"MsgType":"event","Event":"subscribe_msg_popup_event","List":[{"TemplateId":%q,"SubscribeStatusString":"accept","PopupScene":0}]}`,
		openID, createTime, templateID)
}

// Message stores a message as the send pipeline would, for the read endpoints.
func (s *Server) Message(m *processor.Message) {
	s.t.Helper()
	if m.Version == 0 {
		m.Version = 1
	}
	if err := s.Store.SaveMessage(context.Background(), m); err != nil {
		s.t.Fatalf("SaveMessage: %v", err)
	}
}
