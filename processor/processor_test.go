package processor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxgate/wxgate/internal/broker"
	"github.com/wxgate/wxgate/internal/broker/natstest"
	"github.com/wxgate/wxgate/internal/checkfor"
	"github.com/wxgate/wxgate/internal/store"
	"github.com/wxgate/wxgate/internal/store/storetest"
	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
)

const (
	appID   = "wxba5fad812f8e6fb9"
	tplOnce = "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc"
	tplLong = "LONGTERM0000000000000000000000000000000000a"
	// Every wait polls every waitEvery for at most waitTime.
	waitTime  = 30 * time.Second
	waitEvery = 25 * time.Millisecond
)

// kinds marks tplLong as a long-term template.
type kinds struct{}

func (kinds) Kind(_ context.Context, _, templateID string) string {
	if templateID == tplLong {
		return processor.KindLongTerm
	}
	return processor.KindOneTime
}

// fixture is a processor running against a real embedded JetStream and a real
// embedded MongoDB-compatible store.
type fixture struct {
	t     *testing.T
	nats  *natstest.Server
	db    *storetest.Server
	st    *store.Store
	js    jetstream.JetStream
	pub   *broker.Publisher
	proc  *processor.Processor
	reg   *prometheus.Registry // the running processor's metrics
	stop  context.CancelFunc
	done  chan error
	clock time.Time
	// cfg configures every processor instance the fixture starts.
	cfg processor.Config
	// publisher, when set, is what the processors publish through instead of pub.
	publisher processor.Publisher
}

func newFixture(t *testing.T, options ...func(*fixture)) *fixture {
	t.Helper()
	f := &fixture{t: t, nats: natstest.Start(t), db: storetest.Start(t), clock: time.Unix(1_700_000_000, 0)}
	f.st = f.db.Open("wxgate_test")
	_, f.js = f.nats.Connect()
	f.pub = broker.NewPublisher(f.js, 5*time.Second)
	f.cfg = processor.Config{Workers: 4, MaxDeliver: 5, AckWait: 10 * time.Second, Kinds: kinds{}}
	for _, o := range options {
		o(f)
	}
	f.start()
	t.Cleanup(f.halt)
	return f
}

// start runs a fresh processor instance, as a restarted process would.
func (f *fixture) start() {
	f.t.Helper()
	reg := prometheus.NewRegistry()
	var pub processor.Publisher = f.pub
	if f.publisher != nil {
		pub = f.publisher
	}
	p, err := processor.New(f.st, f.js, pub, slog.New(slog.NewTextHandler(io.Discard, nil)), reg, f.cfg)
	if err != nil {
		f.t.Fatalf("processor.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.proc, f.reg, f.stop, f.done = p, reg, cancel, make(chan error, 1)
	go func() { f.done <- p.Run(ctx) }()
}

// halt stops the processor and waits for it to settle what it holds.
func (f *fixture) halt() {
	if f.stop == nil {
		return
	}
	f.stop()
	if err := <-f.done; err != nil {
		f.t.Errorf("processor.Run = %v", err)
	}
	f.stop = nil
}

// tick returns a new CreateTime, one second after the previous one.
func (f *fixture) tick() int64 {
	f.clock = f.clock.Add(time.Second)
	return f.clock.Unix()
}

// publish sends a raw push through the same path as the gateway and returns the event id.
func (f *fixture) publish(raw string) string {
	f.t.Helper()
	id, _ := natstest.Push(f.t, f.js, appID, raw)
	return id
}

// publishRaw stores data on the stream and remembers its sequence for drained.
func (f *fixture) publishRaw(subject, msgID string, data []byte) {
	f.t.Helper()
	natstest.PublishRaw(f.t, f.js, subject, msgID, data)
}

// redeliver publishes raw again under a new Nats-Msg-Id, as if the stream's
// duplicate window had passed: the processor itself must not count it twice.
func (f *fixture) redeliver(raw string) {
	f.t.Helper()
	ev, _ := schemas.ParseEvent(appID, []byte(raw))
	ce, _ := schemas.InboundCloudEvent(ev, time.Now())
	b, _ := json.Marshal(ce)
	f.publishRaw(schemas.WorkSubject(appID, ev.OpenID, schemas.WorkInbound), ce.ID+"-again", b)
}

// drained waits until the events consumer has settled every message on the stream.
func (f *fixture) drained() {
	f.t.Helper()
	checkfor.Eventually(f.t, waitTime, waitEvery, func() error {
		return natstest.Drained(f.js)
	})
}

// settledAs returns how many stream messages the running processor has settled
// with decision (ack, nak or dead_letter), from its metrics.
func (f *fixture) settledAs(decision string) (float64, error) {
	families, err := f.reg.Gather()
	if err != nil {
		return 0, err
	}
	var n float64
	for _, mf := range families {
		if mf.GetName() != "wxgate_processor_messages_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "decision" && l.GetValue() == decision {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n, nil
}

func (f *fixture) consent(openID, templateID string) *processor.Consent {
	f.t.Helper()
	c, err := f.st.Consent(context.Background(), processor.ConsentKey(appID, openID, templateID))
	if errors.Is(err, processor.ErrNotFound) {
		return nil
	}
	if err != nil {
		f.t.Fatalf("Consent: %v", err)
	}
	return c
}

func popup(openID string, ts int64, answers ...string) string {
	var items []string
	for i := 0; i+1 < len(answers); i += 2 {
		items = append(items, fmt.Sprintf(`{"TemplateId":%q,"SubscribeStatusString":%q,"PopupScene":0}`, answers[i], answers[i+1]))
	}
	return fmt.Sprintf(`{"ToUserName":"gh_97417a04a28d","FromUserName":%q,"CreateTime":%d,"MsgType":"event","Event":"subscribe_msg_popup_event","List":[%s]}`,
		openID, ts, strings.Join(items, ","))
}

func change(openID string, ts int64, templateID string) string {
	return fmt.Sprintf(`<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName><FromUserName><![CDATA[%s]]></FromUserName><CreateTime>%d</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe_msg_change_event]]></Event><SubscribeMsgChangeEvent><List><TemplateId><![CDATA[%s]]></TemplateId><SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString></List></SubscribeMsgChangeEvent></xml>`, openID, ts, templateID)
}

func sent(openID string, ts int64, msgID string, code int, status string) string {
	return fmt.Sprintf(`{"ToUserName":"gh_97417a04a28d","FromUserName":%q,"CreateTime":"%d","MsgType":"event","Event":"subscribe_msg_sent_event","List":{"TemplateId":%q,"MsgID":%q,"ErrorCode":"%d","ErrorStatus":%q}}`,
		openID, ts, tplOnce, msgID, code, status)
}

// step is one input to the ledger: a push through the stream or a backend report.
type step struct {
	kind   string // "popup", "change", "report"
	answer string
	// request identifies a report's wx.requestSubscribeMessage call.
	request string
}

func TestConsentRules(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name       string
		template   string
		steps      []step
		wantKind   string
		wantStatus string
		wantGrants int
	}{
		{"one accept grants one send", tplOnce, []step{{kind: "popup", answer: "accept"}}, processor.KindOneTime, processor.ConsentAccepted, 1},
		{"accepts accumulate", tplOnce, []step{{kind: "popup", answer: "accept"}, {kind: "popup", answer: "accept"}, {kind: "popup", answer: "accept"}}, processor.KindOneTime, processor.ConsentAccepted, 3},
		{"popup reject", tplOnce, []step{{kind: "popup", answer: "reject"}}, processor.KindOneTime, processor.ConsentRejected, 0},
		{"reject clears grants", tplOnce, []step{{kind: "popup", answer: "accept"}, {kind: "popup", answer: "accept"}, {kind: "popup", answer: "reject"}}, processor.KindOneTime, processor.ConsentRejected, 0},
		{"change event rejects", tplOnce, []step{{kind: "popup", answer: "accept"}, {kind: "change"}}, processor.KindOneTime, processor.ConsentRejected, 0},
		{"accept after reject accepts again", tplOnce, []step{{kind: "popup", answer: "accept"}, {kind: "change"}, {kind: "popup", answer: "accept"}}, processor.KindOneTime, processor.ConsentAccepted, 1},
		{"push and report of one popup count once", tplOnce, []step{{kind: "popup", answer: "accept"}, {kind: "report", answer: "accept", request: "r1"}}, processor.KindOneTime, processor.ConsentAccepted, 1},
		{"report before push counts once", tplOnce, []step{{kind: "report", answer: "accept", request: "r1"}, {kind: "popup", answer: "accept"}}, processor.KindOneTime, processor.ConsentAccepted, 1},
		{"two popups both reported count twice", tplOnce, []step{{kind: "popup", answer: "accept"}, {kind: "report", answer: "accept", request: "r1"}, {kind: "popup", answer: "accept"}, {kind: "report", answer: "accept", request: "r2"}}, processor.KindOneTime, processor.ConsentAccepted, 2},
		{"report only", tplOnce, []step{{kind: "report", answer: "accept", request: "r1"}, {kind: "report", answer: "accept", request: "r2"}}, processor.KindOneTime, processor.ConsentAccepted, 2},
		{"same report twice counts once", tplOnce, []step{{kind: "report", answer: "accept", request: "r1"}, {kind: "report", answer: "accept", request: "r1"}}, processor.KindOneTime, processor.ConsentAccepted, 1},
		{"late report after reject stays rejected", tplOnce, []step{{kind: "popup", answer: "accept"}, {kind: "change"}, {kind: "report", answer: "accept", request: "r-late"}}, processor.KindOneTime, processor.ConsentAccepted, 0},
		{"report ban", tplOnce, []step{{kind: "popup", answer: "accept"}, {kind: "report", answer: "ban", request: "r1"}}, processor.KindOneTime, processor.ConsentBanned, 0},
		{"long-term accept", tplLong, []step{{kind: "popup", answer: "accept"}, {kind: "popup", answer: "accept"}}, processor.KindLongTerm, processor.ConsentAccepted, 0},
		{"long-term reject", tplLong, []step{{kind: "popup", answer: "accept"}, {kind: "change"}}, processor.KindLongTerm, processor.ConsentRejected, 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			openID := fmt.Sprintf("oRules%02d_xxxxxxxxxxxxxxxxxxxxx", i)
			for _, s := range tt.steps {
				switch s.kind {
				case "popup":
					f.publish(popup(openID, f.tick(), tt.template, s.answer))
				case "change":
					f.publish(change(openID, f.tick(), tt.template))
				case "report":
					f.drained() // a report is applied at once; keep the order of the table
					if _, err := f.proc.ReportConsent(context.Background(), appID, openID, s.request, map[string]string{tt.template: s.answer}); err != nil {
						t.Fatalf("ReportConsent: %v", err)
					}
				}
				f.drained()
			}
			c := f.consent(openID, tt.template)
			if c == nil {
				t.Fatal("no ledger entry")
			}
			if c.Kind != tt.wantKind || c.Status != tt.wantStatus || c.Grants != tt.wantGrants {
				t.Errorf("consent = %s/%s/%d grants, want %s/%s/%d", c.Kind, c.Status, c.Grants, tt.wantKind, tt.wantStatus, tt.wantGrants)
			}
			// A report repeated with the same request id is a no-op and leaves no history.
			reports, wantHistory := map[string]bool{}, 0
			for _, s := range tt.steps {
				if s.kind != "report" || !reports[s.request] {
					wantHistory++
				}
				reports[s.request] = s.kind == "report"
			}
			if len(c.History) != wantHistory {
				t.Errorf("history has %d entries, want %d", len(c.History), wantHistory)
			}
		})
	}
}

func TestOnePopupManyTemplates(t *testing.T) {
	f := newFixture(t)
	openID := "oMany_xxxxxxxxxxxxxxxxxxxxxxx"
	f.publish(popup(openID, f.tick(), tplOnce, "accept", tplLong, "reject"))
	f.drained()
	if c := f.consent(openID, tplOnce); c == nil || c.Status != processor.ConsentAccepted || c.Grants != 1 {
		t.Errorf("one-time consent = %+v, want accepted with 1 grant", c)
	}
	if c := f.consent(openID, tplLong); c == nil || c.Status != processor.ConsentRejected {
		t.Errorf("long-term consent = %+v, want rejected", c)
	}
}

func TestRedeliveryChangesNothing(t *testing.T) {
	f := newFixture(t)
	openID := "oRedeliver_xxxxxxxxxxxxxxxxxx"
	accept := popup(openID, f.tick(), tplOnce, "accept")
	f.publish(accept)
	f.drained()
	reject := change(openID, f.tick(), tplLong)
	f.publish(popup(openID, f.tick(), tplLong, "accept"))
	f.publish(reject)
	f.drained()
	msg := f.sendingMessage(openID, "m-redeliver")
	if _, err := f.proc.MarkSent(context.Background(), appID, msg.ID, "3248682510344192008"); err != nil {
		t.Fatal(err)
	}
	outcome := sent(openID, f.tick(), "3248682510344192008", 0, "success")
	f.publish(outcome)
	f.drained()

	before := snapshot(t, f, openID, msg.ID)
	for _, raw := range []string{accept, reject, outcome} {
		f.redeliver(raw)
	}
	f.drained()
	if after := snapshot(t, f, openID, msg.ID); after != before {
		t.Errorf("state after redelivery:\n%s\nwant unchanged:\n%s", after, before)
	}
	evs, _, err := f.st.Events(context.Background(), processor.EventQuery{AppID: appID, OpenID: openID})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 4 {
		t.Errorf("events audit holds %d events, want 4 (each stored once)", len(evs))
	}
}

// snapshot renders the state a redelivery must not change.
func snapshot(t *testing.T, f *fixture, openID, msgID string) string {
	t.Helper()
	var b strings.Builder
	for _, tpl := range []string{tplOnce, tplLong} {
		c := f.consent(openID, tpl)
		fmt.Fprintf(&b, "%s: %s %s grants=%d history=%d version=%d\n", tpl, c.Kind, c.Status, c.Grants, len(c.History), c.Version)
	}
	m, err := f.st.Message(context.Background(), appID, msgID)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "message: %s history=%d version=%d\n", m.Status, len(m.History), m.Version)
	return b.String()
}

// sendingMessage stores a message in status sending, as the send pipeline does
// just before calling WeChat.
func (f *fixture) sendingMessage(openID, id string) *processor.Message {
	f.t.Helper()
	now := time.Now().UTC().Truncate(time.Millisecond)
	m := &processor.Message{
		ID: id, AppID: appID, ToUser: openID, TemplateID: tplOnce, Data: map[string]string{"thing1": "hi"},
		Status: processor.StatusQueued, CreatedAt: now, UpdatedAt: now, Version: 1,
	}
	if err := m.Transition(processor.StatusSending, "test", now); err != nil {
		f.t.Fatal(err)
	}
	if err := f.st.SaveMessage(context.Background(), m); err != nil {
		f.t.Fatalf("SaveMessage: %v", err)
	}
	return m
}

func TestSentEventBeforeTheMessageKnowsItsMsgID(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name       string
		code       int
		pushFirst  bool
		wantStatus string
	}{
		{"push after reply, delivered", 0, false, processor.StatusDelivered},
		{"push before reply, delivered", 0, true, processor.StatusDelivered},
		{"push before reply, failed", 10001, true, processor.StatusFailed},
		{"push after reply, failed", 10002, false, processor.StatusFailed},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			openID := fmt.Sprintf("oSent%02d_xxxxxxxxxxxxxxxxxxxxxx", i)
			msgID := fmt.Sprintf("18446744073709551%03d", i)
			m := f.sendingMessage(openID, "m-"+msgID)
			if tt.pushFirst {
				f.publish(sent(openID, f.tick(), msgID, tt.code, "failed_or_success"))
				f.drained()
			}
			if _, err := f.proc.MarkSent(context.Background(), appID, m.ID, msgID); err != nil {
				t.Fatalf("MarkSent: %v", err)
			}
			if !tt.pushFirst {
				f.publish(sent(openID, f.tick(), msgID, tt.code, "failed_or_success"))
				f.drained()
			}
			got, err := f.st.Message(context.Background(), appID, m.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.wantStatus || got.WeChatMsgID != msgID {
				t.Errorf("message = %s msgid %q, want %s msgid %q", got.Status, got.WeChatMsgID, tt.wantStatus, msgID)
			}
			// Stamped when wxgate learned it, WeChat's time beside it, never before the entry it follows.
			last := got.History[len(got.History)-1]
			if !last.WeChatTime.Equal(f.clock) {
				t.Errorf("%s entry's wechat_time = %v, want the push's CreateTime %v", last.Status, last.WeChatTime, f.clock)
			}
			for i := 1; i < len(got.History); i++ {
				if got.History[i].At.Before(got.History[i-1].At) {
					t.Errorf("history entry %d (%s at %v) sorts before entry %d (%s at %v)", i, got.History[i].Status, got.History[i].At, i-1, got.History[i-1].Status, got.History[i-1].At)
				}
			}
			if tt.code != 0 && got.ErrCode != tt.code {
				t.Errorf("errcode = %d, want %d", got.ErrCode, tt.code)
			}
		})
	}
}

func TestRestartMidBatchLosesNothingAndCountsOnce(t *testing.T) {
	f := newFixture(t)
	f.halt()
	const users = 40
	for i := range users {
		f.publish(popup(fmt.Sprintf("oBatch%03d_xxxxxxxxxxxxxxxxxxxx", i), f.tick(), tplOnce, "accept"))
	}
	// Stop the processor part-way through the batch, then start a new one.
	f.start()
	checkfor.Eventually(t, waitTime, waitEvery, func() error {
		evs, _, err := f.st.Events(context.Background(), processor.EventQuery{AppID: appID, Page: processor.Page{Limit: users}})
		if err != nil || len(evs) < users/4 {
			return fmt.Errorf("%d events applied (%v)", len(evs), err)
		}
		return nil
	})
	f.halt()
	f.start()
	f.drained()
	for i := range users {
		openID := fmt.Sprintf("oBatch%03d_xxxxxxxxxxxxxxxxxxxx", i)
		if c := f.consent(openID, tplOnce); c == nil || c.Grants != 1 {
			t.Errorf("%s: consent = %+v, want exactly 1 grant", openID, c)
		}
	}
}

func TestStoreOutageEventsWaitInTheStream(t *testing.T) {
	f := newFixture(t)
	openID := "oOutage_xxxxxxxxxxxxxxxxxxxxx"
	f.db.Stop()
	f.publish(popup(openID, f.tick(), tplOnce, "accept"))
	f.publish(popup(openID, f.tick(), tplOnce, "accept"))
	// The processor fails transiently and naks; nothing is dead-lettered.
	checkfor.Eventually(t, waitTime, waitEvery, func() error {
		naks, err := f.settledAs("nak")
		if err != nil || naks == 0 {
			return fmt.Errorf("%v messages nakked while the store is down (%v), want some", naks, err)
		}
		return nil
	})
	f.db.Restart()
	f.drained()
	if c := f.consent(openID, tplOnce); c == nil || c.Grants != 2 {
		t.Errorf("consent after the outage = %+v, want 2 grants", c)
	}
	dls, _, err := f.st.DeadLetters(context.Background(), processor.DeadLetterQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 0 {
		t.Errorf("%d dead letters after a store outage, want 0", len(dls))
	}
}

func TestPoisonMessageIsDeadLetteredAndDoesNotBlock(t *testing.T) {
	f := newFixture(t)
	f.publishRaw(schemas.WorkSubject(appID, "oPoison", schemas.WorkInbound), "poison-1", []byte(`{"not":"a cloudevent"}`))
	openID := "oAfterPoison_xxxxxxxxxxxxxxxx"
	f.publish(popup(openID, f.tick(), tplOnce, "accept"))
	f.drained()
	if c := f.consent(openID, tplOnce); c == nil || c.Grants != 1 {
		t.Errorf("consent behind a poison message = %+v, want 1 grant", c)
	}
	dls, _, err := f.st.DeadLetters(context.Background(), processor.DeadLetterQuery{AppID: appID})
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 1 || dls[0].MsgID != "poison-1" || !strings.Contains(dls[0].Reason, "permanent") || dls[0].Data != `{"not":"a cloudevent"}` {
		t.Errorf("dead letters = %+v, want the poison message with its reason and data", dls)
	}
}

func TestChangesArePublished(t *testing.T) {
	f := newFixture(t)
	_, js := f.nats.Connect()
	var mu sync.Mutex
	got := map[string][]string{}
	ctx := context.Background()
	cons, err := js.OrderedConsumer(ctx, schemas.StreamName, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"wechat.*.consent.>", "wechat.*.delivery.>"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		ce, err := schemas.DecodeCloudEvent(m.Data())
		if err != nil {
			t.Errorf("invalid CloudEvent on %s: %v", m.Subject(), err)
			return
		}
		mu.Lock()
		got[m.Subject()] = append(got[m.Subject()], ce.Type)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()

	openID := "oPublished_xxxxxxxxxxxxxxxxxx"
	f.publish(popup(openID, f.tick(), tplOnce, "accept"))
	f.drained()
	f.publish(change(openID, f.tick(), tplOnce))
	f.drained()
	m := f.sendingMessage(openID, "m-published")
	if _, err := f.proc.MarkSent(ctx, appID, m.ID, "42"); err != nil {
		t.Fatal(err)
	}
	f.publish(sent(openID, f.tick(), "42", 0, "success"))
	f.drained()

	want := map[string]string{
		"wechat." + appID + ".consent.accepted":   "wxgate.consent.accepted",
		"wechat." + appID + ".consent.rejected":   "wxgate.consent.rejected",
		"wechat." + appID + ".delivery.sent":      "wxgate.delivery.sent",
		"wechat." + appID + ".delivery.delivered": "wxgate.delivery.delivered",
	}
	checkfor.Eventually(t, waitTime, waitEvery, func() error {
		mu.Lock()
		defer mu.Unlock()
		for subject, typ := range want {
			if len(got[subject]) != 1 || got[subject][0] != typ {
				return fmt.Errorf("%s: got %v, want one %s", subject, got[subject], typ)
			}
		}
		return nil
	})
}
