package wechat

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wxgate/wxgate/internal/broker/natstest"
	"github.com/wxgate/wxgate/internal/sim"
	"github.com/wxgate/wxgate/schemas"
)

const (
	testAppID  = "wx2c2769f8efd9abc2"
	testSecret = "s3cr3t-AppSecret-9f8e7d6c5b4a3210"
	testPushTk = "spamtest"
	testAESKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"

	tplLong = "tpl-long"
	tplOnce = "tpl-once"
	tplEnum = "tpl-enum"
)

// simApp is the simulated mini program every test talks to.
func simApp() sim.AppConfig {
	return sim.AppConfig{
		AppID: testAppID, Secret: testSecret, Token: testPushTk, EncodingAESKey: testAESKey,
		Mode: sim.ModePlaintext,
		Templates: []sim.Template{
			{ID: tplLong, Title: "办理进度", Type: sim.TemplateLongTerm, Content: "状态:{{phrase1.DATA}}\n编号:{{character_string2.DATA}}"},
			{ID: tplOnce, Title: "会议提醒", Type: sim.TemplateOneTime, Content: "会议时间:{{date2.DATA}}\n地点:{{thing3.DATA}}"},
			{ID: tplEnum, Title: "发货通知", Content: "状态:{{enum2.DATA}}", Enums: map[string][]string{"enum2": {"未发货", "已发货"}}},
		},
	}
}

// startSim serves a simulator for the test and closes it at cleanup.
func startSim(t testing.TB, cfg sim.Config) (*sim.Sim, string) {
	t.Helper()
	if len(cfg.Apps) == 0 {
		cfg.Apps = []sim.AppConfig{simApp()}
	}
	cfg.NoSentEvents = true
	s, base, err := sim.Start(cfg, nil)
	if err != nil {
		t.Fatalf("sim.Start: %v", err)
	}
	t.Cleanup(s.Close)
	return s, base
}

// testApp is the App for the simulator at base.
func testApp(base, tokenAPI string) App {
	return App{AppID: testAppID, Secret: testSecret, APIBase: base, TokenAPI: tokenAPI}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newTokens starts a token manager on its own NATS connection, as a separate
// wxgate instance would, and closes it at cleanup.
func newTokens(t testing.TB, srv *natstest.Server, apps []App, opts TokenOptions) *Tokens {
	t.Helper()
	_, js := srv.Connect()
	tk, err := NewTokens(context.Background(), js, apps, nil, discardLogger(), opts)
	if err != nil {
		t.Fatalf("NewTokens: %v", err)
	}
	t.Cleanup(tk.Close)
	return tk
}

// kvOf opens the token bucket directly, for tests that play a crashed instance.
func kvOf(t testing.TB, srv *natstest.Server) jetstream.KeyValue {
	t.Helper()
	_, js := srv.Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := openBucket(ctx, js, DefaultBucket, 1)
	if err != nil {
		t.Fatalf("openBucket: %v", err)
	}
	return kv
}

// sendBody is a valid send of the long-term template to openID.
func sendBody(t testing.TB, openID string) []byte {
	t.Helper()
	req := schemas.SendRequest{ToUser: openID, TemplateID: tplLong, Data: map[string]string{"phrase1": "已受理", "character_string2": "A-1024"}}
	b, err := req.WeChatBody()
	if err != nil {
		t.Fatalf("WeChatBody: %v", err)
	}
	return b
}

// subscribe makes openID accept the long-term template.
func subscribe(t testing.TB, s *sim.Sim, openID string) {
	t.Helper()
	if err := s.Subscribe(testAppID, openID, sim.ActionAccept, tplLong); err != nil {
		t.Fatalf("Subscribe(%q): %v", openID, err)
	}
}

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
