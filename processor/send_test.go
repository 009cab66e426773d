package processor_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxgate/wxgate/internal/broker/natstest"
	"github.com/wxgate/wxgate/internal/checkfor"
	"github.com/wxgate/wxgate/internal/sim"
	"github.com/wxgate/wxgate/internal/testclock"
	"github.com/wxgate/wxgate/internal/wechat"
	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
)

// withWeChat runs the fixture's processors against the WeChat simulator, with the
// real shared token manager and API client.
func withWeChat(s **sim.Sim) func(*fixture) {
	return func(f *fixture) {
		simulator, base, err := sim.Start(sim.Config{
			Apps: []sim.AppConfig{{
				AppID: appID, Secret: "app-secret-for-tests", Token: "tok", EncodingAESKey: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
				Templates: []sim.Template{
					{ID: tplOnce, Title: "Order", Type: sim.TemplateOneTime, Content: "商品:{{thing1.DATA}}"},
					{ID: tplLong, Title: "Notice", Type: sim.TemplateLongTerm, Content: "内容:{{thing1.DATA}}"},
				},
			}},
			NoSentEvents: true,
		}, nil)
		if err != nil {
			f.t.Fatalf("sim.Start: %v", err)
		}
		f.t.Cleanup(simulator.Close)
		apps := []wechat.App{{AppID: appID, Secret: "app-secret-for-tests", APIBase: base}}
		hc := &http.Client{Timeout: 5 * time.Second}
		tokens, err := wechat.NewTokens(context.Background(), f.js, apps, hc, slog.New(slog.NewTextHandler(io.Discard, nil)), wechat.TokenOptions{})
		if err != nil {
			f.t.Fatalf("NewTokens: %v", err)
		}
		f.t.Cleanup(tokens.Close)
		f.cfg.Sender = wechat.NewClient(apps, tokens, hc)
		f.cfg.SendAttempts = 3
		f.cfg.UnknownAfter = time.Second
		*s = simulator
	}
}

// accept records an accepted popup both in WeChat (the simulator) and in the ledger.
func (f *fixture) accept(s *sim.Sim, openID, templateID string) {
	f.t.Helper()
	if err := s.Subscribe(appID, openID, sim.ActionAccept, templateID); err != nil {
		f.t.Fatalf("sim.Subscribe: %v", err)
	}
	f.publish(popup(openID, f.tick(), templateID, "accept"))
	f.drained()
}

// send requests a send and waits until the message leaves queued and sending.
func (f *fixture) send(openID, templateID, key string) *processor.Message {
	f.t.Helper()
	req := &schemas.SendRequest{ToUser: openID, TemplateID: templateID, Data: map[string]string{"thing1": "Coffee"}}
	m, err := f.proc.RequestSend(context.Background(), appID, req, key)
	if err != nil && !errors.Is(err, processor.ErrDuplicateRequest) {
		f.t.Fatalf("RequestSend: %v", err)
	}
	return f.settled(m.ID)
}

func (f *fixture) settled(id string) *processor.Message {
	f.t.Helper()
	var m *processor.Message
	checkfor.Eventually(f.t, waitTime, waitEvery, func() error {
		var err error
		m, err = f.st.Message(context.Background(), appID, id)
		if err != nil {
			return err
		}
		if m.Status == processor.StatusQueued || m.Status == processor.StatusSending {
			return fmt.Errorf("message %s is %s", id, m.Status)
		}
		return nil
	})
	return m
}

func TestSendUsesOneGrantPerAccept(t *testing.T) {
	var s *sim.Sim
	f := newFixture(t, withWeChat(&s))
	openID := "oSendOnce_xxxxxxxxxxxxxxxxxxx"
	f.accept(s, openID, tplOnce)

	m := f.send(openID, tplOnce, "")
	if m.Status != processor.StatusSent || m.WeChatMsgID == "" || m.Attempts != 1 {
		t.Fatalf("first send = %s msgid %q attempts %d, want sent with a msgid after 1 attempt", m.Status, m.WeChatMsgID, m.Attempts)
	}
	if got, _ := s.Messages(appID); len(got) != 1 || got[0].MsgID != m.WeChatMsgID {
		t.Errorf("WeChat received %+v, want one message with msgid %s", got, m.WeChatMsgID)
	}
	if c := f.consent(openID, tplOnce); c.Grants != 0 {
		t.Errorf("grants after the send = %d, want 0", c.Grants)
	}
	second := f.send(openID, tplOnce, "")
	if second.Status != processor.StatusRejected {
		t.Errorf("second send on one grant = %s, want rejected", second.Status)
	}
	if got := s.Stats().Sends; got[0]+got[43101] != 1 {
		t.Errorf("WeChat saw sends %v, want exactly one call (the rejection is decided locally)", got)
	}
}

func TestSendWithoutConsentIsRejectedLocally(t *testing.T) {
	var s *sim.Sim
	f := newFixture(t, withWeChat(&s))
	m := f.send("oNobody_xxxxxxxxxxxxxxxxxxxxx", tplOnce, "")
	if m.Status != processor.StatusRejected || m.Reason == "" {
		t.Errorf("send without consent = %s (%q), want rejected with a reason", m.Status, m.Reason)
	}
	if len(s.Stats().Sends) != 0 {
		t.Errorf("WeChat saw sends %v, want none", s.Stats().Sends)
	}
}

func TestLongTermConsentIsNotConsumed(t *testing.T) {
	var s *sim.Sim
	f := newFixture(t, withWeChat(&s))
	openID := "oLongTerm_xxxxxxxxxxxxxxxxxxx"
	f.accept(s, openID, tplLong)
	before := f.consent(openID, tplLong)
	for i := range 3 {
		if m := f.send(openID, tplLong, ""); m.Status != processor.StatusSent {
			t.Fatalf("send %d = %s (%s), want sent", i, m.Status, m.Reason)
		}
	}
	c := f.consent(openID, tplLong)
	if c.Status != processor.ConsentAccepted {
		t.Errorf("long-term consent after sends = %s, want accepted", c.Status)
	}
	if len(c.History) != len(before.History) || c.Version != before.Version {
		t.Errorf("long-term consent after 3 sends: %d history entries (version %d), want %d (version %d): a send is no change to it",
			len(c.History), c.Version, len(before.History), before.Version)
	}
	if consumed := f.nats.Messages("wechat." + appID + ".consent.consumed"); len(consumed) != 0 {
		t.Errorf("%d consent.consumed events for long-term sends, want none", len(consumed))
	}
}

// TestUnknownKindIsLearnedLater: while gettemplate fails, an accept is counted
// as one-time (kind pending); once it answers, the next change or send sets
// the kind, and a long-term template is then neither consumed nor counted.
func TestUnknownKindIsLearnedLater(t *testing.T) {
	var s *sim.Sim
	k := &laterKinds{}
	f := newFixture(t, withWeChat(&s), func(f *fixture) { f.cfg.Kinds = k })
	openID := "oKindLater_xxxxxxxxxxxxxxxxxx"
	f.accept(s, openID, tplLong)
	if c := f.consent(openID, tplLong); c.Kind != "" || c.Grants != 1 || c.Status != processor.ConsentAccepted {
		t.Fatalf("consent while the kind is unknown = %q/%s/%d grants, want pending/accepted/1", c.Kind, c.Status, c.Grants)
	}
	k.known.Store(true)
	for i := range 2 {
		if m := f.send(openID, tplLong, ""); m.Status != processor.StatusSent {
			t.Fatalf("send %d = %s (%s), want sent", i, m.Status, m.Reason)
		}
	}
	c := f.consent(openID, tplLong)
	if c.Kind != processor.KindLongTerm || c.Grants != 0 || c.Status != processor.ConsentAccepted {
		t.Errorf("consent once the kind is known = %q/%s/%d grants, want long_term/accepted/0", c.Kind, c.Status, c.Grants)
	}
	if consumed := f.nats.Messages("wechat." + appID + ".consent.consumed"); len(consumed) != 0 {
		t.Errorf("%d consent.consumed events for a template learned to be long-term, want none", len(consumed))
	}
}

// laterKinds cannot tell a template's kind until known is set, as a template
// cache does while gettemplate fails.
type laterKinds struct{ known atomic.Bool }

func (k *laterKinds) Kind(ctx context.Context, appID, templateID string) string {
	if !k.known.Load() {
		return ""
	}
	return kinds{}.Kind(ctx, appID, templateID)
}

func TestErrcodeTable(t *testing.T) {
	var s *sim.Sim
	f := newFixture(t, withWeChat(&s))
	tests := []struct {
		name       string
		faults     sim.Faults
		simConsent bool // false: the ledger believes in a grant WeChat does not have
		wantStatus string
		wantCode   int
		wantGrants int // one-time grants left afterwards
		wantTries  int
	}{
		{"busy then accepted", sim.Faults{SendErrcode: -1, SendErrcodeNext: 2}, true, processor.StatusSent, 0, 0, 3},
		{"concurrent sends then accepted", sim.Faults{SendErrcode: 43108, SendErrcodeNext: 1}, true, processor.StatusSent, 0, 0, 2},
		{"bad data is invalid and gives the grant back", sim.Faults{SendErrcode: 47003, SendErrcodeNext: 1}, true, processor.StatusInvalid, 47003, 1, 1},
		{"sensitive word is invalid", sim.Faults{SendErrcode: 45168, SendErrcodeNext: 1}, true, processor.StatusInvalid, 45168, 1, 1},
		{"43101 rejects and zeroes the ledger", sim.Faults{}, false, processor.StatusRejected, 43101, 0, 1},
		{"busy for ever is dead and gives the grant back", sim.Faults{SendErrcode: -1}, true, processor.StatusDead, -1, 1, 3},
		{"ability banned is dead", sim.Faults{SendErrcode: 43107, SendErrcodeNext: 1}, true, processor.StatusDead, 43107, 1, 1},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			openID := fmt.Sprintf("oErr%02d_xxxxxxxxxxxxxxxxxxxxxxx", i)
			if tt.simConsent {
				f.accept(s, openID, tplOnce)
			} else {
				f.publish(popup(openID, f.tick(), tplOnce, "accept"))
				f.drained()
			}
			if err := s.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			m := f.send(openID, tplOnce, "")
			if err := s.SetFaults(sim.Faults{}); err != nil {
				t.Fatal(err)
			}
			if m.Status != tt.wantStatus || m.ErrCode != tt.wantCode || m.Attempts != tt.wantTries {
				t.Errorf("message = %s errcode %d after %d attempts (%s), want %s errcode %d after %d",
					m.Status, m.ErrCode, m.Attempts, m.Reason, tt.wantStatus, tt.wantCode, tt.wantTries)
			}
			// The grant is given back after the message reached its status.
			checkfor.Eventually(t, waitTime, waitEvery, func() error {
				if c := f.consent(openID, tplOnce); c.Grants != tt.wantGrants {
					return fmt.Errorf("grants = %d, want %d", c.Grants, tt.wantGrants)
				}
				return nil
			})
			if tt.wantCode == 47003 && m.ErrMsg == "" {
				t.Errorf("errmsg of a 47003 was not kept")
			}
		})
	}
}

func TestDeadSendIsRedriven(t *testing.T) {
	var s *sim.Sim
	f := newFixture(t, withWeChat(&s))
	openID := "oRedrive_xxxxxxxxxxxxxxxxxxxx"
	f.accept(s, openID, tplOnce)
	if err := s.SetFaults(sim.Faults{SendErrcode: -1}); err != nil {
		t.Fatal(err)
	}
	m := f.send(openID, tplOnce, "")
	if m.Status != processor.StatusDead {
		t.Fatalf("send while WeChat is busy = %s, want dead", m.Status)
	}
	var dl processor.DeadLetter
	checkfor.Eventually(t, waitTime, waitEvery, func() error {
		dls, _, err := f.st.DeadLetters(context.Background(), processor.DeadLetterQuery{Consumer: processor.ConsumerName})
		if err != nil || len(dls) != 1 {
			return fmt.Errorf("%d dead letters (%v)", len(dls), err)
		}
		dl = dls[0]
		return nil
	})
	if err := s.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.proc.Redrive(context.Background(), dl.ID); err != nil {
		t.Fatalf("Redrive: %v", err)
	}
	checkfor.Eventually(t, waitTime, waitEvery, func() error {
		m, err := f.st.Message(context.Background(), appID, m.ID)
		if err != nil || m.Status != processor.StatusSent {
			return fmt.Errorf("message after redrive: %v (%v)", m.Status, err)
		}
		return nil
	})
	if c := f.consent(openID, tplOnce); c.Grants != 0 {
		t.Errorf("grants after the redriven send = %d, want 0 (one grant, used once)", c.Grants)
	}
}

func TestIdempotencyKeyNamesOneMessage(t *testing.T) {
	var s *sim.Sim
	f := newFixture(t, withWeChat(&s))
	openID := "oIdem_xxxxxxxxxxxxxxxxxxxxxxx"
	f.accept(s, openID, tplOnce)
	f.accept(s, openID, tplOnce)
	first := f.send(openID, tplOnce, "order-42")
	second := f.send(openID, tplOnce, "order-42")
	if first.ID != second.ID || second.Status != processor.StatusSent {
		t.Errorf("same key gave %s and %s (%s), want one sent message", first.ID, second.ID, second.Status)
	}
	if got, _ := s.Messages(appID); len(got) != 1 {
		t.Errorf("WeChat received %d messages, want 1", len(got))
	}
	if c := f.consent(openID, tplOnce); c.Grants != 1 {
		t.Errorf("grants = %d, want 1 (two accepts, one send)", c.Grants)
	}
}

// TestProcessorsShareOneToken runs several processors, each with its own token
// manager and API client as separate instances would have, sharing one stream and
// one store, sending for one app over almost three token lifetimes. With
// /cgi-bin/token, where every fetch invalidates the previous token after a short
// overlap, uncoordinated instances would each fetch when the token runs out and
// kick each other's tokens out; together they must fetch one token per lifetime
// and never be refused a token. Time is a clock the test moves, shared by the
// simulator and the token managers, so the count does not depend on how fast
// the machine is.
func TestProcessorsShareOneToken(t *testing.T) {
	const (
		instances = 3
		ttl       = 2 * time.Hour
		// Every round sends once to each user, waits until all are sent, then
		// moves the clock by step: sends at 0, 35m, ..., 6h25m.
		rounds = 12
		step   = 35 * time.Minute
		// A token lives 2h and is fetched on the first send at or after its
		// end: at 0, 2h20m and 4h40m.
		wantFetches = 3
	)
	clock := testclock.New(time.Unix(1_700_000_000, 0))
	f := newFixture(t)
	// Only the sending instances below consume: they share one durable consumer.
	f.halt()
	s, base, err := sim.Start(sim.Config{
		Apps: []sim.AppConfig{{
			AppID: appID, Secret: "app-secret-for-tests", Token: "tok", EncodingAESKey: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
			Templates: []sim.Template{{ID: tplLong, Title: "Notice", Type: sim.TemplateLongTerm, Content: "内容:{{thing1.DATA}}"}},
		}},
		TokenTTL: ttl, TokenOverlap: time.Minute, NoSentEvents: true, Clock: clock.Now,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	apps := []wechat.App{{AppID: appID, Secret: "app-secret-for-tests", APIBase: base, TokenAPI: wechat.TokenAPIPlain}}
	managers := make([]*wechat.Tokens, instances)
	for i := range managers {
		hc := &http.Client{Timeout: 5 * time.Second}
		tokens, err := wechat.NewTokens(context.Background(), f.js, apps, hc, slog.New(slog.NewTextHandler(io.Discard, nil)), wechat.TokenOptions{Clock: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tokens.Close)
		managers[i] = tokens
		cfg := f.cfg
		cfg.Sender = wechat.NewClient(apps, tokens, hc)
		p, err := processor.New(f.st, f.js, f.pub, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = p.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	users := make([]string, 6)
	for i := range users {
		users[i] = fmt.Sprintf("oShared%02d_xxxxxxxxxxxxxxxxxxxx", i)
		if err := s.Subscribe(appID, users[i], sim.ActionAccept, tplLong); err != nil {
			t.Fatal(err)
		}
		f.publish(popup(users[i], f.tick(), tplLong, "accept"))
	}
	f.drained()

	for round := range rounds {
		var ids []string
		for _, user := range users {
			req := &schemas.SendRequest{ToUser: user, TemplateID: tplLong, Data: map[string]string{"thing1": "Hello"}}
			m, err := f.proc.RequestSend(context.Background(), appID, req, "")
			if err != nil {
				t.Fatalf("RequestSend: %v", err)
			}
			ids = append(ids, m.ID)
		}
		for _, id := range ids {
			if m := f.settled(id); m.Status != processor.StatusSent {
				t.Fatalf("round %d: message %s = %s (%s), want sent", round, id, m.Status, m.Reason)
			}
		}
		clock.Advance(step)
	}
	st := s.Stats()
	if st.Sends[40001] != 0 || st.Sends[40014] != 0 || st.Sends[42001] != 0 {
		t.Errorf("sends refused for their token: %v", st.Sends)
	}
	var fetches int64
	per := make([]int64, instances)
	for i, tokens := range managers {
		per[i] = tokens.Stats(appID).Fetches
		fetches += per[i]
	}
	if app := st.Apps[appID]; app.TokenCalls != wantFetches || app.TokensIssued != wantFetches || fetches != wantFetches {
		t.Errorf("%d processors fetched %d tokens (%v each; WeChat saw %d calls and issued %d) sending for %v with %v tokens, want %d: one per lifetime",
			instances, fetches, per, app.TokenCalls, app.TokensIssued, (rounds-1)*step, ttl, wantFetches)
	}
	t.Logf("%d sends by %d processors; token fetches per processor %v", rounds*len(users), instances, per)
}

// TestAnswerLostOrUnreadableIsNeverResent: WeChat accepts a send and its answer
// is lost (the connection dropped) or cannot be read (a malformed 200). The
// message becomes unknown, WeChat is not called again, the grant stays used,
// and the sent event WeChat pushes for it, which names a msgid wxgate never
// learned, settles it as delivered.
func TestAnswerLostOrUnreadableIsNeverResent(t *testing.T) {
	for i, reply := range []string{sim.ReplyMalformed, sim.ReplyDrop} {
		t.Run(reply, func(t *testing.T) {
			var s *sim.Sim
			f := newFixture(t, withWeChat(&s))
			openID := fmt.Sprintf("oLost%02d_xxxxxxxxxxxxxxxxxxxxx", i)
			f.accept(s, openID, tplOnce)
			if err := s.SetFaults(sim.Faults{SendReply: reply, SendReplyNext: 1}); err != nil {
				t.Fatal(err)
			}
			m := f.send(openID, tplOnce, "")
			if m.Status != processor.StatusUnknown || m.WeChatMsgID != "" {
				t.Fatalf("message = %s msgid %q (%s), want unknown without a msgid", m.Status, m.WeChatMsgID, m.Reason)
			}
			f.drainSends()
			received, err := s.Messages(appID)
			if err != nil {
				t.Fatal(err)
			}
			if len(received) != 1 || s.Stats().Sends[0] != 1 {
				t.Fatalf("WeChat received %d messages (sends %v), want exactly one call", len(received), s.Stats().Sends)
			}
			if c := f.consent(openID, tplOnce); c.Grants != 0 {
				t.Errorf("grants = %d, want 0: the grant stays used", c.Grants)
			}

			f.publish(sent(openID, f.tick(), received[0].MsgID, 0, "success"))
			f.drained()
			got, err := f.st.Message(context.Background(), appID, m.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != processor.StatusDelivered || got.WeChatMsgID != received[0].MsgID {
				t.Errorf("after its sent event the message = %s msgid %q, want delivered with %s", got.Status, got.WeChatMsgID, received[0].MsgID)
			}
			if c := f.consent(openID, tplOnce); len(c.Unsettled) != 0 {
				t.Errorf("unsettled after the sent event = %v, want none", c.Unsettled)
			}
		})
	}
}

// TestAcceptedWithoutMsgIDIsSentOnce: errcode 0 without a msgid is WeChat's
// bug: the message is sent (once), and its sent event settles it by user and template.
func TestAcceptedWithoutMsgIDIsSentOnce(t *testing.T) {
	var s *sim.Sim
	f := newFixture(t, withWeChat(&s))
	openID := "oNoMsgID_xxxxxxxxxxxxxxxxxxxx"
	f.accept(s, openID, tplOnce)
	if err := s.SetFaults(sim.Faults{SendReply: sim.ReplyNoMsgID, SendReplyNext: 1}); err != nil {
		t.Fatal(err)
	}
	m := f.send(openID, tplOnce, "")
	if m.Status != processor.StatusSent || m.WeChatMsgID != "" || m.Attempts != 1 {
		t.Fatalf("message = %s msgid %q after %d attempts (%s), want sent without a msgid after 1", m.Status, m.WeChatMsgID, m.Attempts, m.Reason)
	}
	f.drainSends()
	received, _ := s.Messages(appID)
	if len(received) != 1 {
		t.Fatalf("WeChat received %d messages, want 1", len(received))
	}
	f.publish(sent(openID, f.tick(), received[0].MsgID, 0, "success"))
	f.drained()
	if got, _ := f.st.Message(context.Background(), appID, m.ID); got.Status != processor.StatusDelivered {
		t.Errorf("after its sent event the message = %s, want delivered", got.Status)
	}
}

// drainSends waits until the processor holds no message, pending or
// unacknowledged, so that a retry, if any were made, would have been made.
func (f *fixture) drainSends() {
	f.t.Helper()
	checkfor.Eventually(f.t, waitTime, waitEvery, func() error { return natstest.Drained(f.js) })
}
